// The real daemon: the telephony server's XML samples in over POST /ingest/oktell as UTF-16,
// typed events out to handlers; a route into an action; manual starts checked before storing.
import { describe, expect, it } from "vitest";
import { useDaemon } from "../helpers/daemon.ts";
import { runHookd } from "../helpers/run.ts";
import { seed002Events, seed002NotEvents, seed003, TMINTERFACECONFIRM_TEXT_START, tminterfacereserve, utf16be, utf16le } from "./seed-samples.ts";

const CONFIG = `
import { defineConfig } from "hookd/config";
import { catalog } from "hookd/catalog";
export default defineConfig({
  events: catalog,
  // The seed-000 pattern: event fields mapped into an action's input, a constant, one field left out.
  routes: [{ on: "oktell.userstatechanged", run: "page-operator",
             input: { operator: { value: "line-16016" }, state: "newstate", redirect: "redirect" } },
           // Leaves out redirect, which page-operator requires: HOOKD_ROUTE_INPUT_MISSING at plugin load.
           { on: "oktell.halsrvregsuccess", run: "page-operator", input: { operator: { value: "x" }, state: "state" } }],
  oktell: { timezone: "Europe/Moscow" },
  delivery: { backoffMs: 50, maxBackoffMs: 200, maxAttempts: 3 },
});
`;

describe("POST /ingest/oktell", () => {
  const { daemon } = useDaemon({ fixtures: ["integrations"], config: CONFIG });

  const ingest = (body: Buffer | string, headers: Record<string, string> = { "content-type": "text/xml; charset=utf-16" }) =>
    daemon.fetch("/ingest/oktell", { method: "POST", headers, body });

  async function accepted(response: Response): Promise<string[]> {
    const body = (await response.json()) as { ids?: string[]; error?: unknown };
    expect(response.status, JSON.stringify(body)).toBe(202);
    return body.ids!;
  }

  async function storedEvent(id: string): Promise<{ name: string; payload: Record<string, unknown>; source: string }> {
    const { events } = await daemon.getJson("/api/events?limit=1000");
    const event = events.find((e: { id: string }) => e.id === id);
    expect(event, `event ${id} is stored`).toBeDefined();
    return event;
  }

  async function storedCount(): Promise<number> {
    return (await daemon.getJson("/api/events?limit=1000")).events.length;
  }

  it("stores the seed 003 samples, sent as UTF-16 LE with BOM, as typed oktell.* events that handlers receive", async () => {
    const [notifyId] = await accepted(await ingest(utf16le(seed003.notify)));
    const notify = await storedEvent(notifyId!);
    expect(notify).toMatchObject({ name: "oktell.notify", source: "oktell" });
    expect(notify.payload).toEqual({
      guid: "00000000-0000-0000-0000-000000000000",
      autohide: true,
      backcolor_argb: 0,
      type: "nltPBXinfo",
      typeCode: 8,
      // The server's local time, in the configured zone (Moscow summer time in 2008).
      datetime: "2008-07-12T18:35:06+04:00",
      dbsaved: true,
      sender: "Системная АТС",
      text: "Зарегистрирована линия 16016",
    });
    const seen = await daemon.waitForLog((l) => l.msg === "oktell seen" && l.eventId === notifyId);
    expect(seen.payload).toEqual(notify.payload);

    for (const name of ["shutdownrequested", "restartrequested", "connectionlost", "voicemail"] as const) {
      const [id] = await accepted(await ingest(utf16le(seed003[name])));
      expect(await storedEvent(id!)).toMatchObject({ name: `oktell.${name}`, payload: {} });
    }
  });

  it("stores 115 and 242 with their states decoded and 111 with its unlisted userid kept", async () => {
    const xml = (id: number, name: string, props: string) =>
      `<?xml version="1.0" encoding="utf-16"?><oktellcommapper><data><event id="${id}" name="${name}">${props}</event></data></oktellcommapper>`;
    const [personal, line, user] = await accepted(await ingest(Buffer.concat([
      utf16le(xml(115, "personalstatechanged", '<property_simple key="newstate" value="2" />')),
      utf16le(xml(242, "linestatechange", '<property_simple key="state" value="4" />')),
      utf16le(xml(111, "userstatechanged", '<property_simple key="newstate" value="1" /><property_simple key="redirect" value="0" /><property_simple key="userid" value="u-1" />')),
    ])));
    expect((await storedEvent(personal!)).payload).toEqual({ newstate: "usLunch", newstateCode: 2 });
    expect((await storedEvent(line!)).payload).toEqual({ state: "lsReady", stateCode: 4 });
    expect((await storedEvent(user!)).payload).toEqual({ newstate: "usReady", newstateCode: 1, redirect: false, userid: "u-1" });
  });

  it("a route that leaves out a field the action requires is a route error at plugin load, in /api/plugins and the log", async () => {
    const { plugins } = await daemon.getJson("/api/plugins");
    const pager = plugins.find((p: { actions: string[] }) => p.actions.includes("page-operator"));
    expect(pager.state).toBe("loaded");
    expect(pager.routeErrors).toEqual([
      expect.objectContaining({ code: "HOOKD_ROUTE_INPUT_MISSING", route: 1, action: "page-operator", message: expect.stringContaining("redirect") }),
    ]);
    await daemon.waitForLogs((line) => line.code === "HOOKD_ROUTE_INPUT_MISSING", 1);
  });

  it("takes usermessage by its name although its id says 112, and logs a warning", async () => {
    const [id] = await accepted(await ingest(utf16le(seed003.usermessage)));
    expect(await storedEvent(id!)).toMatchObject({
      name: "oktell.usermessage",
      payload: { sendername: "Бочкарев Евгений", text: "Зайди плиз как освободишься..", datetime: "2008-07-12T20:29:11+04:00" },
    });
    const warning = await daemon.waitForLog((l) => l.component === "ingest" && l.id === "112" && l.name === "usermessage");
    expect(warning.level).toBe(40);
    expect(warning.idName).toBe("notify");
  });

  it("stores the seed 002 task events, in either byte order, with textb64 decoded", async () => {
    const [confirmId] = await accepted(await ingest(utf16be(seed002Events.tminterfaceconfirm, false)));
    const confirm = await storedEvent(confirmId!);
    expect(confirm.name).toBe("oktell.tminterfaceconfirm");
    expect(confirm.payload).toMatchObject({ idtask: "0f398eb4-5d78-446c-84f4-6892ab72751b", taskname: "Прозвон клиентов", idinlist: 67, number: "120151112" });
    expect(String(confirm.payload.text).startsWith(TMINTERFACECONFIRM_TEXT_START)).toBe(true);
    const seen = await daemon.waitForLog((l) => l.msg === "oktell seen" && l.eventId === confirmId);
    expect(String((seen.payload as { text: string }).text)).toContain("Звонок на номер: 120151112");

    const ids = await accepted(await ingest(Buffer.concat([utf16le(tminterfacereserve), utf16le(seed002Events.tminterfaceclose)])));
    expect((await storedEvent(ids[0]!)).name).toBe("oktell.tminterfacereserve");
    expect(await storedEvent(ids[1]!)).toMatchObject({ name: "oktell.tminterfaceclose", payload: { idtask: "0f398eb4-5d78-446c-84f4-6892ab72751b" } });
  });

  it("starts the routed action with the event's fields mapped into its input", async () => {
    const [id] = await accepted(await ingest(utf16le(seed003.userstatechanged)));
    expect((await storedEvent(id!)).payload).toEqual({ newstate: "usWOphone", newstateCode: 7, redirect: false });
    const ran = await daemon.waitForLog((l) => l.msg === "page-operator ran" && l.eventId === id);
    // supervisor and priority were left out of the mapping: the action gets no value for them.
    expect(ran.input).toEqual({ operator: "line-16016", state: "usWOphone", redirect: false });
  });

  it("reads the body whatever the content type says (XML, none, text/plain)", async () => {
    for (const headers of [{ "content-type": "application/xml" }, {}, { "content-type": "text/plain" }] as Array<Record<string, string>>) {
      expect(await accepted(await ingest(utf16le(seed003.voicemail), headers))).toHaveLength(1);
    }
  });

  it("returns the same ids for a repeated Idempotency-Key", async () => {
    const body = Buffer.concat([utf16le(seed003.voicemail), utf16le(seed003.connectionlost)]);
    const first = await accepted(await ingest(body, { "idempotency-key": "pbx-batch-1" }));
    const again = await ingest(body, { "idempotency-key": "pbx-batch-1" });
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(await accepted(again)).toEqual(first);
  });

  it("stores nothing when one event of the request is invalid, and names it", async () => {
    const before = await storedCount();
    const bad = seed003.notify.replace('value="8" name="nltPBXinfo"', 'value="8" name="nltBogus"');
    const response = await ingest(Buffer.concat([utf16le(seed003.userstatechanged), utf16le(bad)]));
    expect(response.status).toBe(400);
    const { error } = (await response.json()) as { error: { code: string; issues: Array<{ event: number; name: string; path: string[] }> } };
    expect(error.code).toBe("HOOKD_EVENT_INVALID");
    expect(error.issues).toEqual(expect.arrayContaining([expect.objectContaining({ event: 1, name: "oktell.notify", path: ["type"] })]));
    expect(await storedCount()).toBe(before);
  });

  it("answers 400 for malformed XML, an unknown encoding or no event, and 404 for an unknown event; stores nothing", async () => {
    const before = await storedCount();
    const cases: Array<[Buffer, number, string]> = [
      [utf16le(seed003.notify.replace("</data>", "")), 400, "HOOKD_OKTELL_MALFORMED"],
      [Buffer.from('<?xml version="1.0" encoding="windows-1251"?><oktellcommapper><data><event id="113" name="voicemail"/></data></oktellcommapper>'), 400, "HOOKD_OKTELL_ENCODING"],
      [utf16le(seed002NotEvents.userstate), 400, "HOOKD_OKTELL_NO_EVENT"],
      [Buffer.alloc(0), 400, "HOOKD_OKTELL_NO_EVENT"],
      [utf16le('<oktellcommapper><data><event id="111" name="nosuchevent" /></data></oktellcommapper>'), 404, "HOOKD_EVENT_UNKNOWN"],
    ];
    for (const [body, status, code] of cases) {
      const response = await ingest(body);
      const answer = (await response.json()) as { error: { code: string; message: string } };
      expect([response.status, answer.error.code]).toEqual([status, code]);
      expect(answer.error.message.length).toBeGreaterThan(10);
    }
    expect(await storedCount()).toBe(before);
    expect((await daemon.fetch("/healthz")).status).toBe(200);
  });
});

describe("manual starts are checked against the action's input schema", () => {
  const { daemon } = useDaemon({ fixtures: ["integrations"], config: CONFIG });

  const start = (input: unknown) =>
    daemon.fetch("/actions/page-operator", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(input) });

  it("answers 400 naming each bad field, before storing anything", async () => {
    const before = (await daemon.getJson("/api/events?limit=1000")).events.length;
    const response = await start({ operator: "", state: "usBogus" });
    expect(response.status).toBe(400);
    const { error } = (await response.json()) as { error: { code: string; message: string; issues: Array<{ path: string[]; code: string }> } };
    expect(error.code).toBe("HOOKD_RUN_INPUT_INVALID");
    expect(error.issues.map((i) => i.path.join("."))).toEqual(expect.arrayContaining(["operator", "state", "redirect"]));
    expect(error.issues.find((i) => i.path[0] === "redirect")!.code).toBe("required");
    expect(error.message).toContain("state");
    expect((await daemon.getJson("/api/events?limit=1000")).events.length).toBe(before);
  });

  it("accepts what the isolate accepts (a coerced number sent as text) and runs the action", async () => {
    const response = await start({ operator: "op-3", state: "usReady", redirect: true, priority: "3" });
    expect(response.status).toBe(202);
    const { id } = (await response.json()) as { id: string };
    const ran = await daemon.waitForLog((l) => l.msg === "page-operator ran" && l.eventId === id);
    expect(ran.input).toEqual({ operator: "op-3", state: "usReady", redirect: true, priority: 3 });
    expect(ran.types).toEqual({ priority: "number" });
  });

  it("hookd run with a bad input exits 1 naming the field", async () => {
    const { code, stderr } = await runCli(["run", "page-operator", '{"operator":"op-4","state":"usReady"}', "--url", daemon.url]);
    expect(code).toBe(1);
    expect(stderr).toContain("HOOKD_RUN_INPUT_INVALID");
    expect(stderr).toContain("redirect");
  });
});

function runCli(args: string[]) {
  return runHookd(args, { timeoutMs: 20_000 });
}
