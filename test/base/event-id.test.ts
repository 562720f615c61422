// Event ids: version 7 UUIDs from a pooled random source, unique and in creation order.
import { describe, expect, it } from "vitest";
import { newEventId } from "../../core/base/event-id.ts";

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe("event ids", () => {
  it("are version 7 UUIDs, unique, and sort in the order they were made (many within one millisecond)", () => {
    const ids = Array.from({ length: 20_000 }, () => newEventId());
    for (const id of ids) expect(id).toMatch(UUID_V7);
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(ids);
    // More ids than the random pool holds (4 KB, 256 ids): it was refilled, not reused.
    const tails = new Set(ids.map((id) => id.slice(-12)));
    expect(tails.size).toBeGreaterThan(ids.length * 0.99);
  });

  it("carry the time they were made in their first 48 bits", () => {
    const before = Date.now();
    const id = newEventId();
    const after = Date.now();
    const ms = Number.parseInt(id.replace(/-/g, "").slice(0, 12), 16);
    expect(ms).toBeGreaterThanOrEqual(before);
    expect(ms).toBeLessThanOrEqual(after + 1);
  });
});
