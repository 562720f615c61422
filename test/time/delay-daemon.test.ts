// Delayed events through the real daemon: the `hookd-delay` / `hookd-deliver-at` headers and
// ctx.emit's `{ delay }` / `{ at }`, the scheduled list, cancelling, and a delay that spans a
// restart delivered once, on SQLite and on PostgreSQL.
import { afterAll, describe, expect, it } from "vitest";
import { parseCalendar, addOpenTime, nextOpen } from "../../core/time/calendar.ts";
import { DEFAULT_CONFIG, storedEventCount, TestDaemon, TestProject, useDaemon, type LogLine } from "../helpers/daemon.ts";
import { waitUntil } from "../helpers/wait.ts";
import { dropSchema, postgresUnavailable, schemaUrl, testSchemaName } from "../store/stores.ts";

const handled = (n: number) => (line: LogLine) => line.msg === "ping handled" && line.n === n;

async function runsOf(daemon: TestDaemon, id: string): Promise<Array<{ status: string; attempts: number; nextAt: number; finishedAt: number | null }>> {
  return (await daemon.getJson(`/api/events/${id}`)).runs;
}

async function doneRuns(daemon: TestDaemon, id: string) {
  return waitUntil(
    async () => {
      const runs = await runsOf(daemon, id);
      return runs.length > 0 && runs.every((run) => run.status === "done") && runs;
    },
    { timeoutMs: 60_000, what: `the runs of ${id} done (now ${JSON.stringify(await runsOf(daemon, id).catch(() => "?"))})` },
  );
}

const OFFICE = { tz: "Europe/Moscow", hours: "Mon-Fri 09:00-18:00", holidays: ["2026-12-31"] };
const CONFIG = DEFAULT_CONFIG.replace("  delivery: {", `  calendars: { office: ${JSON.stringify(OFFICE)} },\n  delivery: {`);

describe("delayed events over HTTP and ctx.emit", () => {
  const { daemon } = useDaemon({ fixtures: ["delayed"], config: CONFIG });

  it("stores a hookd-delay event at once, lists it as scheduled, and runs it once at its time", async () => {
    const sent = Date.now();
    const { status, body } = await daemon.post("test.ping", { n: 1 }, { "hookd-delay": "2s" });
    expect(status).toBe(202);
    const deliverAt = Date.parse(body.deliverAt);
    expect(deliverAt).toBeGreaterThanOrEqual(sent + 2000);
    expect(deliverAt).toBeLessThan(Date.now() + 2000 + 1);
    const scheduled = await daemon.getJson("/api/events?scheduled=true");
    expect(scheduled.events.map((e: { id: string; state: string; deliverAt: number }) => [e.id, e.state, e.deliverAt])).toContainEqual([body.id, "scheduled", deliverAt]);
    const [waiting] = await runsOf(daemon, body.id);
    expect(waiting).toMatchObject({ status: "pending", attempts: 0, nextAt: deliverAt });
    const [run] = await doneRuns(daemon, body.id);
    expect(run!.attempts).toBe(1);
    expect(run!.finishedAt!).toBeGreaterThanOrEqual(deliverAt);
    // The run's log line may reach stdout after its finish is recorded.
    await daemon.waitForLog(handled(1));
    expect(daemon.logs.filter(handled(1))).toHaveLength(1);
    expect((await daemon.getJson("/api/events?scheduled=true")).events.map((e: { id: string }) => e.id)).not.toContain(body.id);
  });

  it("takes hookd-deliver-at as an ISO 8601 time, and a time already past as now", async () => {
    const at = new Date(Date.now() + 1500).toISOString();
    const timed = await daemon.post("test.ping", { n: 2 }, { "hookd-deliver-at": at });
    expect(timed).toMatchObject({ status: 202, body: { deliverAt: at } });
    const past = await daemon.post("test.ping", { n: 3 }, { "hookd-deliver-at": "2020-01-01T00:00:00Z" });
    expect(past.status).toBe(202);
    expect(past.body.deliverAt).toBeUndefined();
    await doneRuns(daemon, past.body.id);
    const [run] = await doneRuns(daemon, timed.body.id);
    expect(run!.finishedAt!).toBeGreaterThanOrEqual(Date.parse(at));
  });

  it("answers 400 HOOKD_EVENT_DELAY_INVALID to a bad delay or time and stores nothing", async () => {
    const before = await storedEventCount(daemon);
    const cases: Array<Record<string, string>> = [
      { "hookd-delay": "soon" },
      { "hookd-delay": "10" },
      { "hookd-delay": "-5m" },
      { "hookd-delay": "400d" },
      { "hookd-deliver-at": "2026-12-01 09:00" },
      { "hookd-deliver-at": "not a time" },
      { "hookd-delay": "1h", "hookd-deliver-at": new Date(Date.now() + 3600_000).toISOString() },
    ];
    for (const headers of cases) {
      const { status, body } = await daemon.post("test.ping", { n: 4 }, headers);
      expect({ headers, status, code: body?.error?.code }).toEqual({ headers, status: 400, code: "HOOKD_EVENT_DELAY_INVALID" });
    }
    expect(await storedEventCount(daemon)).toBe(before);
    const badList = await daemon.fetch("/api/events?scheduled=maybe");
    expect([badList.status, ((await badList.json()) as { error: { code: string } }).error.code]).toEqual([400, "HOOKD_HTTP_BAD_REQUEST"]);
  });

  it("counts a delay within a calendar's open hours, and takes next-open; an unknown calendar is a 400", async () => {
    const office = parseCalendar("office", OFFICE);
    const sent = Date.now();
    const within = await daemon.post("test.ping", { n: 8 }, { "hookd-delay": "3h", "hookd-within": "office" });
    const opening = await daemon.post("test.ping", { n: 9 }, { "hookd-deliver-at": "next-open", "hookd-within": "office" });
    const answered = Date.now();
    expect(within.status).toBe(202);
    // Computed for the moment of sending and of the answer: the daemon's lies between (or on) them.
    const bounds = (f: (at: number) => number) => [f(sent), f(answered)];
    const [low, high] = bounds((at) => addOpenTime(office, at, 3 * 3600_000));
    expect(Date.parse(within.body.deliverAt)).toBeGreaterThanOrEqual(low!);
    expect(Date.parse(within.body.deliverAt)).toBeLessThanOrEqual(high!);
    expect(opening.status).toBe(202);
    const [openLow, openHigh] = bounds((at) => nextOpen(office, at));
    // Open now: delivered at once (no deliverAt); closed: at the next opening.
    if (openHigh! > answered) expect(Date.parse(opening.body.deliverAt)).toBeGreaterThanOrEqual(openLow!);
    else expect(opening.body.deliverAt).toBeUndefined();
    const unknown = await daemon.post("test.ping", { n: 10 }, { "hookd-delay": "1h", "hookd-within": "warehouse" });
    expect([unknown.status, unknown.body.error.code]).toEqual([400, "HOOKD_EVENT_DELAY_INVALID"]);
    for (const { body } of [within, opening]) if (body.deliverAt) await daemon.fetch(`/api/events/${body.id}/cancel`, { method: "POST" });
  });

  it("cancels a delayed event by id; a second cancel, an event not delayed and an unknown id are refused", async () => {
    const { body } = await daemon.post("test.ping", { n: 5 }, { "hookd-delay": "1h" });
    const cancel = (id: string) => daemon.fetch(`/api/events/${id}/cancel`, { method: "POST" }).then(async (r) => ({ status: r.status, body: (await r.json()) as any }));
    expect(await cancel(body.id)).toEqual({ status: 200, body: { id: body.id, cancelled: 1 } });
    expect((await runsOf(daemon, body.id)).map((r) => r.status)).toEqual(["cancelled"]);
    expect((await daemon.getJson("/api/events?scheduled=true")).events.map((e: { id: string }) => e.id)).not.toContain(body.id);
    expect((await daemon.getJson(`/api/runs?status=cancelled&eventId=${body.id}`)).runs).toHaveLength(1);
    const again = await cancel(body.id);
    expect([again.status, again.body.error.code]).toEqual([409, "HOOKD_EVENT_NOT_SCHEDULED"]);
    const immediate = await daemon.post("test.ping", { n: 6 });
    const notDelayed = await cancel(immediate.body.id);
    expect([notDelayed.status, notDelayed.body.error.code]).toEqual([409, "HOOKD_EVENT_NOT_SCHEDULED"]);
    const unknown = await cancel("no-such-event");
    expect([unknown.status, unknown.body.error.code]).toEqual([404, "HOOKD_EVENT_NOT_FOUND"]);
  });

  it("delays ctx.emit by { delay } and { at }, and refuses unknown options to the emitting handler", async () => {
    await daemon.post("test.ping", { n: 1000 });
    await daemon.post("test.ping", { n: 2000 });
    await daemon.post("test.ping", { n: 3000 });
    const stored = await daemon.waitForLog((l) => l.msg === "delayed emit stored");
    const timed = await daemon.waitForLog((l) => l.msg === "timed emit stored");
    const refused = await daemon.waitForLog((l) => l.msg === "emit refused");
    expect(refused.code).toBe("HOOKD_EVENT_DELAY_INVALID");
    for (const line of [stored, timed]) {
      const { event } = await daemon.getJson(`/api/events/${String(line.child)}`);
      expect(event.source).toBe("emit");
      expect(event.deliverAt).toBeGreaterThan(event.receivedAt + 500);
      const [run] = await doneRuns(daemon, String(line.child));
      expect(run!.finishedAt!).toBeGreaterThanOrEqual(event.deliverAt);
    }
    await daemon.waitForLog(handled(1001));
    await daemon.waitForLog(handled(2001));
    expect(daemon.logs.filter(handled(1001))).toHaveLength(1);
    expect(daemon.logs.filter(handled(2001))).toHaveLength(1);
    expect(daemon.logs.filter(handled(3001))).toHaveLength(0);
  });
});

const postgresDown = await postgresUnavailable();

describe.each([
  { store: "sqlite", skip: false },
  { store: "postgres", skip: postgresDown !== null },
])("a delay across a daemon restart ($store)", ({ store, skip }) => {
  const project = new TestProject({ fixtures: ["delayed"] });
  const schema = testSchemaName();
  const env: Record<string, string> = store === "postgres" ? { HOOKD_STORE_URL: schemaUrl(schema) } : {};
  afterAll(async () => {
    project.remove();
    if (store === "postgres" && !skip) await dropSchema(schema);
  });

  it.skipIf(skip)("is delivered once, by the daemon running at its time", { timeout: 120_000 }, async () => {
    const first = await new TestDaemon(project).start({ env });
    const { status, body } = await first.post("test.ping", { n: 7 }, { "hookd-delay": "4s" });
    expect(status).toBe(202);
    expect(await first.stop()).toBe(0);
    // Stopped before its time: the first daemon never ran it.
    expect(first.logs.filter(handled(7))).toHaveLength(0);
    expect(Date.now()).toBeLessThan(Date.parse(body.deliverAt));
    const second = await new TestDaemon(project).start({ env });
    try {
      const [run] = await doneRuns(second, body.id);
      expect(run!.attempts).toBe(1);
      expect(run!.finishedAt!).toBeGreaterThanOrEqual(Date.parse(body.deliverAt));
      await second.waitForLog(handled(7));
      expect(second.logs.filter(handled(7))).toHaveLength(1);
    } finally {
      await second.stop();
    }
  });
});
