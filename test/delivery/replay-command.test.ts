// `hookd replay` reads times the way an operator types them.
import { describe, expect, it } from "vitest";
import { parseCliTime } from "../../core/delivery/replay-command.ts";
import { catalogOrderBy, orderKeyFor } from "../../core/routing/order-key.ts";

const NOW = Date.parse("2026-11-21T12:00:00Z");

describe("replay times", () => {
  it("takes a time ago, an ISO-8601 time or epoch milliseconds", () => {
    expect(parseCliTime("30m", "--since", NOW)).toBe("2026-11-21T11:30:00.000Z");
    expect(parseCliTime("2h", "--since", NOW)).toBe("2026-11-21T10:00:00.000Z");
    expect(parseCliTime("7d", "--since", NOW)).toBe("2026-11-14T12:00:00.000Z");
    expect(parseCliTime("2026-11-01T00:00:00+03:00", "--since", NOW)).toBe("2026-11-01T00:00:00+03:00");
    expect(parseCliTime("1795255200000", "--since", NOW)).toBe("1795255200000");
  });

  it("refuses anything else with a usage error", () => {
    expect(() => parseCliTime("yesterday", "--since", NOW)).toThrow(expect.objectContaining({ code: "HOOKD_CLI_USAGE" }));
  });
});

describe("order keys", () => {
  it("keys an event by its pattern's field, an exact name before the longest prefix", () => {
    expect(orderKeyFor(catalogOrderBy, "deal.close", { did: 12 })).toBe("deal.*=12");
    expect(orderKeyFor(catalogOrderBy, "deal.change.step", { did: "12" })).toBe("deal.*=12");
    expect(orderKeyFor({ ...catalogOrderBy, "deal.change.*": "autor" }, "deal.change.step", { did: 1, autor: 7 })).toBe("deal.change.*=7");
    expect(orderKeyFor({ ...catalogOrderBy, "deal.close": false }, "deal.close", { did: 12 })).toBeUndefined();
    expect(orderKeyFor(catalogOrderBy, "user.operator_status.changed", { userId: "op-1" })).toBe("user.operator_status.changed=op-1");
  });

  it("gives no key when the field is missing, empty or not a scalar", () => {
    expect(orderKeyFor(catalogOrderBy, "client.import", { clids: [1, 2] })).toBeUndefined();
    expect(orderKeyFor(catalogOrderBy, "client.expressadd", { clid: null })).toBeUndefined();
    expect(orderKeyFor(catalogOrderBy, "shop.order.paid", { orderId: "A1" })).toBeUndefined();
    expect(orderKeyFor({ "shop.order.*": "order.id" }, "shop.order.paid", { order: { id: "A1" } })).toBe("shop.order.*=A1");
  });
});
