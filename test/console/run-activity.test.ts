// The run detail's recorder keeps each attempt bounded: log lines by the plugin's line limit,
// strings by log.maxFieldChars, the attempt by MAX_ACTIVITY_BYTES, and nothing for a run with
// no open attempt; URLs lose their user info and query values.
import { describe, expect, it } from "vitest";
import { MAX_ACTIVITY_BYTES, redactUrl, RunActivityRecorder } from "../../core/runs/activity.ts";

describe("run activity recorder", () => {
  const recorder = () => new RunActivityRecorder(() => ({ maxLogLines: 5, maxEmits: 2, maxFieldChars: 300 }));

  it("keeps the first lines up to the limit and counts the rest", () => {
    const r = recorder();
    r.begin("1", "p");
    for (let i = 0; i < 20; i++) r.log("1", "info", `line ${i}`, { i });
    for (let i = 0; i < 4; i++) r.emit("1", "x", `ev-${i}`);
    const activity = r.take("1");
    expect(activity.logs.map((l) => l.msg)).toEqual(["line 0", "line 1", "line 2", "line 3", "line 4"]);
    expect(activity.emits.map((e) => e.eventId)).toEqual(["ev-0", "ev-1"]);
    expect(activity.dropped).toBe(17);
    expect(r.openAttempts).toBe(0);
  });

  it("cuts long strings and stops at the byte bound", () => {
    const r = new RunActivityRecorder(() => ({ maxLogLines: 1_000_000, maxEmits: 0, maxFieldChars: 10_000 }));
    r.begin("2", "p");
    const big = "x".repeat(50_000);
    for (let i = 0; i < 200; i++) r.log("2", "warn", big, { big });
    const activity = r.take("2");
    expect(activity.logs[0]!.msg!.length).toBeLessThan(10_100);
    expect(activity.logs[0]!.msg).toContain("[truncated, 50000 bytes]");
    expect(Buffer.byteLength(JSON.stringify(activity))).toBeLessThanOrEqual(MAX_ACTIVITY_BYTES + 1024);
    expect(activity.dropped).toBeGreaterThan(150);
  });

  it("ignores calls of a run with no open attempt", () => {
    const r = recorder();
    r.log("9", "info", "stray", undefined);
    r.kvWrite("9", "set", "k", 1);
    expect(r.openAttempts).toBe(0);
    expect(r.take("9").logs).toEqual([]);
  });

  it("drops user info and query values from URLs", () => {
    expect(redactUrl("https://user:pw@api.example.com/v1/x?token=abc&token=def&q=1#frag")).toBe("https://api.example.com/v1/x?token=…&q=…");
    expect(redactUrl("https://api.example.com/plain")).toBe("https://api.example.com/plain");
    expect(redactUrl("not a url?secret=1")).toBe("not a url?…");
  });
});
