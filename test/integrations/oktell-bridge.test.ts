// The telephony workstation bridge end to end, on the real daemon and both stores: two simulated
// workstations (A and B) poll for commands; a TMInterfaceConfirm from A reaches a plugin that
// answers "skip", and A's bridge, not B's, performs TM_SetConfirmResult with result 1; when the
// plugin crashes instead, the confirm guard answers with the configured default.
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OktellSimulator, type SimulatedCommand } from "../../core/integrations/oktell/simulator.ts";
import { BIN, TestDaemon, TestProject } from "../helpers/daemon.ts";
import { waitUntil } from "../helpers/wait.ts";
import { dropSchema, postgresUnavailable, schemaUrl, testSchemaName } from "../store/stores.ts";
import { seed002Events, seed002NotEvents } from "./seed-samples.ts";

const CONFIG = `
import { defineConfig } from "hookd/config";
import { catalog } from "hookd/catalog";
export default defineConfig({
  events: catalog,
  server: { token: "bridge-token" },
  oktell: { confirm: { answerAfterMs: 5000, result: "ok" }, commandTtlMs: 6000, commandLeaseMs: 1000 },
  delivery: { backoffMs: 50, maxBackoffMs: 200, maxAttempts: 1 },
});
`;
const TOKEN = "bridge-token";
const AUTH = { authorization: `Bearer ${TOKEN}` };
const CONFIRM_67 = seed002Events.tminterfaceconfirm;
const CONFIRM_666 = seed002Events.tminterfaceconfirm.replace('<property_simple key="idinlist" value="67" />', '<property_simple key="idinlist" value="666" />');

const pgDown = await postgresUnavailable();

const confirmResults = (sim: OktellSimulator) => sim.received.filter((c) => c.method === "TM_SetConfirmResult");
const resultValue = (command: SimulatedCommand) => /<property_simple key="result" value="(\d)" \/>/.exec(command.xml ?? "")?.[1];

describe.each([
  { name: "sqlite", skip: false },
  { name: "postgres", skip: pgDown !== null },
])("workstation bridge and confirm guard ($name)", ({ name, skip }) => {
  const schema = testSchemaName();
  const project = new TestProject({ fixtures: ["oktell-bridge"], config: CONFIG });
  const daemon = new TestDaemon(project);
  let simA: OktellSimulator;
  let simB: OktellSimulator;

  beforeAll(async () => {
    if (skip) return;
    await daemon.start({ env: name === "postgres" ? { HOOKD_STORE_URL: schemaUrl(schema) } : {} });
    simA = new OktellSimulator({ url: daemon.url, token: TOKEN, user: "A", waitSeconds: 2 });
    simB = new OktellSimulator({ url: daemon.url, token: TOKEN, user: "B", waitSeconds: 2 });
    // One poll each first: both bridges count as connected before anything asks for them.
    await Promise.all([simA.pollOnce(true, 0), simB.pollOnce(true, 0)]);
    simA.start();
    simB.start();
  });
  afterAll(async () => {
    await simA?.stop();
    await simB?.stop();
    await daemon.stop();
    project.remove();
    if (name === "postgres" && !skip) await dropSchema(schema);
  });

  const commands = async (query: string) => (await daemon.getJson(`/api/oktell/commands?${query}`, AUTH)).commands as Array<Record<string, any>>;

  it.skipIf(skip)("a 121 from A, answered 'skip' by a plugin, reaches A's bridge (not B's) as TM_SetConfirmResult 1, and the plugin's promise resolves", async () => {
    const sent = await simA.sendEvents(CONFIRM_67);
    expect(sent.status, JSON.stringify(sent.body)).toBe(202);
    const [eventId] = (sent.body as { ids: string[] }).ids;

    const answered = await daemon.waitForLog((l) => l.msg === "confirm answered" && l.idinlist === 67, 30_000);
    expect(answered).toMatchObject({ user: "A", accepted: true, source: { channel: "oktell", user: "A" } });
    expect(confirmResults(simA).map(resultValue)).toEqual(["1"]);
    expect(confirmResults(simB)).toEqual([]);

    // The plugin's own answer took the guard's place: cancelled, never sent.
    const ofA = await commands("user=A");
    expect(ofA.filter((c) => c.method === "TM_SetConfirmResult").map((c) => [c.requestedBy, c.state])).toEqual(
      expect.arrayContaining([["confirm-answerer", "answered"], ["$confirm-guard", "cancelled"]]),
    );
    expect(ofA.find((c) => c.requestedBy === "confirm-answerer")).toMatchObject({ answer: true, attempts: 1 });

    // The event and its run carry the workstation's user, in both lists.
    const { event } = await daemon.getJson(`/api/events/${eventId}`, AUTH);
    expect(event.origin).toEqual({ channel: "oktell", user: "A" });
    // The run's finish commits after the plugin's answer went out: waited for, not assumed.
    const run = await waitUntil(async () => (await daemon.getJson(`/api/runs?eventId=${eventId}`, AUTH)).runs.find((r: { status: string }) => r.status === "done"), {
      what: "the answering run to be recorded done",
    });
    expect(run).toMatchObject({ status: "done", eventSource: { channel: "oktell", user: "A" } });
  });

  it.skipIf(skip)("when the plugin crashes, the guard answers A's confirm with the default result after answerAfterMs", async () => {
    const before = confirmResults(simA).length;
    const sent = await simA.sendEvents(CONFIRM_666);
    expect(sent.status).toBe(202);
    const [eventId] = (sent.body as { ids: string[] }).ids;
    await waitUntil(async () => (await daemon.getJson(`/api/runs?eventId=${eventId}`, AUTH)).runs[0]?.status === "dead", { what: "the crashing run to be dead" });

    const guard = await waitUntil(async () => (await commands("user=A")).find((c) => c.requestedBy === "$confirm-guard" && c.state === "answered"), {
      what: "the guard's TM_SetConfirmResult answered by A",
    });
    expect(guard).toMatchObject({ user: "A", answer: true, guardTask: "0f398eb4-5d78-446c-84f4-6892ab72751b" });
    expect(guard.sentAt - guard.createdAt).toBeGreaterThanOrEqual(5000);
    expect(confirmResults(simA).slice(before).map(resultValue)).toEqual(["0"]);
    expect(confirmResults(simB)).toEqual([]);
  });

  it.skipIf(skip)("a TMInterfaceClose of the task cancels the pending guard", async () => {
    const before = confirmResults(simA).length;
    // Straight from a workstation with no plugin answer in time: the guard is held...
    expect((await simA.sendEvents(CONFIRM_666)).status).toBe(202);
    await waitUntil(async () => (await commands("user=A&state=queued")).some((c) => c.requestedBy === "$confirm-guard"), { what: "a held guard" });
    // ...until the server closes the task's window.
    expect((await simA.sendEvents(seed002Events.tminterfaceclose)).status).toBe(202);
    await waitUntil(async () => !(await commands("user=A&state=queued")).some((c) => c.requestedBy === "$confirm-guard"), { what: "the guard cancelled" });
    expect((await commands("user=A&state=cancelled")).filter((c) => c.requestedBy === "$confirm-guard").length).toBeGreaterThanOrEqual(2);
    expect(confirmResults(simA).length).toBe(before);
  });
});

describe("workstation commands: the methods, bad input and expiry (sqlite)", () => {
  const project = new TestProject({ fixtures: ["oktell-bridge"], config: CONFIG });
  const daemon = new TestDaemon(project);
  /** C polls by hand: commands wait for it, answered as each test says. */
  let simC: OktellSimulator;

  beforeAll(async () => {
    await daemon.start();
    simC = new OktellSimulator({
      url: daemon.url,
      token: TOKEN,
      user: "C",
      waitSeconds: 10,
      answers: { GetUserState: { xml: seed002NotEvents.userstate }, GetLineState: { xml: seed002NotEvents.linestate }, GetCurrentUserFullInfo: { xml: seed002NotEvents.userinfo } },
    });
    await simC.pollOnce(true, 0);
  });
  afterAll(async () => {
    await daemon.stop();
    project.remove();
  });

  const ask = async (tag: string, method: string, user: string, arg?: unknown) => {
    const response = await daemon.fetch("/actions/ask", { method: "POST", headers: { ...AUTH, "content-type": "application/json" }, body: JSON.stringify({ tag, method, user, arg }) });
    expect(response.status).toBe(202);
  };
  const outcome = (tag: string) => daemon.waitForLog((l) => (l.msg === "asked" || l.msg === "ask failed") && l.tag === tag, 30_000);
  const api = (path: string, init: RequestInit = {}) => daemon.fetch(path, { ...init, headers: { ...AUTH, ...(init.headers as Record<string, string>) } });
  /** Polls as C until the command comes (the run queues it a moment after the action is accepted). */
  const nextCommand = (answer: boolean) => waitUntil(async () => (await simC.pollOnce(answer, 2))[0], { what: "a command for C" });

  it("decodes the seed's answer documents: GetUserState, GetLineState, GetCurrentUserFullInfo (no password), TM_SetTaskActive", async () => {
    await ask("state", "getUserState", "C");
    expect((await nextCommand(true)).method).toBe("GetUserState");
    expect((await outcome("state")).result).toEqual({ state: "usReady", stateCode: 1, redirect: false });

    await ask("line", "getLineState", "C");
    await nextCommand(true);
    expect((await outcome("line")).result).toEqual({ state: "lsReady", stateCode: 4 });

    await ask("info", "getCurrentUserFullInfo", "C");
    await nextCommand(true);
    const info = (await outcome("info")).result as Record<string, unknown>;
    expect(info).toMatchObject({ id: "da803f01-ea77-40fa-bc9d-e2efb36fd5a8", type: "utUser", typeCode: 1, name: "Петр", isoperator: true, login: "Peter", role: "Администратор" });
    expect(info).not.toHaveProperty("password");

    await ask("task", "setTaskActive", "C", { tasktype: "call", idtask: "0f398eb4-5d78-446c-84f4-6892ab72751b", active: false });
    const command = await nextCommand(true);
    expect(command.xml).toContain('<data name="settaskactive">');
    expect(command.xml).toContain('<property_simple key="active" value="2" />');
    expect((await outcome("task")).result).toEqual({ success: false, errormessage: "Задачу монопольно редактирует Сидоров Иван" });

    await ask("lunch", "setUserState", "C", { state: "usLunch", description: "Ушел на обед", redirect: false });
    const lunch = await nextCommand(true);
    expect(lunch.method).toBe("SetUserState");
    expect(lunch.xml).toContain('<property_simple key="state" value="2" />');
    expect(lunch.xml).toContain("<![CDATA[Ушел на обед]]>");
    expect((await outcome("lunch")).result).toBeNull();

    await ask("usage", "setConfirmUsage", "C", true);
    expect(await nextCommand(true)).toMatchObject({ method: "TM_SetConfirmUsage", xml: null, arg: true });
    await outcome("usage");
    await ask("inside", "callCenterIsInside", "C");
    expect((await nextCommand(true)).method).toBe("CallCenter_IsInside");
    expect((await outcome("inside")).result).toBe(true);
  });

  it("describes the protocol at GET /api/oktell: every method, its argument and the result it takes", async () => {
    const body = (await (await api("/api/oktell")).json()) as { methods: Array<{ api: string; method: string; result: string }>; states: string[] };
    expect(body.methods.map((m) => m.api).sort()).toEqual([
      "callCenterEnter", "callCenterExit", "callCenterIsInside", "checkBusyInExternalTask", "confirmResult", "freeBusyInExternalTask",
      "getCurrentUserFullInfo", "getLineState", "getUserState", "setBusyInExternalTask", "setConfirmUsage", "setTaskActive", "setUserState",
    ]);
    expect(body.methods.find((m) => m.api === "setTaskActive")).toMatchObject({ method: "TM_SetTaskActive", result: expect.stringContaining('<data name="settaskactiveresult">') });
    expect(body.states).toEqual(["queued", "sent", "answered", "failed", "expired", "cancelled"]);
  });

  it("refuses a bad enum, an undeclared plugin and a user with no bridge before anything is queued", async () => {
    const before = ((await (await api("/api/oktell/commands?limit=1000")).json()) as { commands: unknown[] }).commands.length;
    await ask("nap", "setUserState", "C", { state: "usNap" });
    expect((await outcome("nap")).code).toBe("HOOKD_OKTELL_BAD_ARGUMENT");
    await ask("confirm-bad", "confirmResult", "C", "maybe");
    expect((await outcome("confirm-bad")).code).toBe("HOOKD_OKTELL_BAD_ARGUMENT");
    await ask("nobody", "getUserState", "nobody");
    expect((await outcome("nobody")).code).toBe("HOOKD_OKTELL_USER_NOT_CONNECTED");
    expect((await api("/actions/ask-undeclared", { method: "POST", headers: { "content-type": "application/json" }, body: "{}" })).status).toBe(202);
    expect((await daemon.waitForLog((l) => l.msg === "undeclared refused")).code).toBe("HOOKD_OKTELL_NOT_DECLARED");
    expect(((await (await api("/api/oktell/commands?limit=1000")).json()) as { commands: unknown[] }).commands.length).toBe(before);
  });

  it("answers bad results with 4xx HOOKD_OKTELL_* and keeps the command waiting for a good one", async () => {
    await ask("bad-results", "getUserState", "C");
    const command = await nextCommand(false);
    const post = (body: string | Buffer, headers: Record<string, string> = {}, user = "C") =>
      api(`/oktell/commands/${command.id}/result?user=${user}`, { method: "POST", headers: { "content-type": "text/xml", ...headers }, body });
    const code = async (response: Response) => ({ status: response.status, code: ((await response.json()) as { error: { code: string } }).error.code });

    expect(await code(await post("<oktellcommapper><data name="))).toEqual({ status: 400, code: "HOOKD_OKTELL_MALFORMED" });
    expect(await code(await post(seed002NotEvents.linestate))).toEqual({ status: 400, code: "HOOKD_OKTELL_ANSWER_MISMATCH" });
    const badEnum = seed002NotEvents.userstate.replace('value="1" name="usReady"', 'value="9"');
    expect(await code(await post(badEnum))).toEqual({ status: 400, code: "HOOKD_OKTELL_ANSWER_INVALID" });
    expect(await code(await post(JSON.stringify({ returned: true }), { "content-type": "application/json" }))).toEqual({ status: 400, code: "HOOKD_OKTELL_ANSWER_MISMATCH" });
    expect(await code(await post(JSON.stringify({ nothing: 1 }), { "content-type": "application/json" }))).toEqual({ status: 400, code: "HOOKD_OKTELL_RESULT_INVALID" });
    expect(await code(await post(seed002NotEvents.userstate, {}, "B"))).toEqual({ status: 403, code: "HOOKD_OKTELL_WRONG_USER" });
    expect(await code(await api("/oktell/commands/okc_nope/result", { method: "POST", headers: { "content-type": "application/json" }, body: '{"returned":true}' }))).toEqual({
      status: 404,
      code: "HOOKD_OKTELL_COMMAND_UNKNOWN",
    });
    expect(await code(await api("/oktell/commands?wait=0"))).toEqual({ status: 400, code: "HOOKD_OKTELL_USER_MISSING" });
    expect((await api("/oktell/commands?user=C&wait=0", { headers: { authorization: "Bearer wrong" } })).status).toBe(401);

    // Nothing was half stored: still sent, no answer; the seed's document then answers it.
    const stored = ((await (await api(`/api/oktell/commands/${command.id}`)).json()) as { command: unknown }).command;
    expect(stored).toMatchObject({ state: "sent", answer: null });
    expect((await post(Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(seed002NotEvents.userstate, "utf16le")]))).status).toBe(200);
    expect((await outcome("bad-results")).result).toEqual({ state: "usReady", stateCode: 1, redirect: false });
    expect(await code(await post(seed002NotEvents.userstate))).toEqual({ status: 409, code: "HOOKD_OKTELL_COMMAND_NOT_PENDING" });
  });

  it("takes the workstation's user from the x-oktell-user header, refuses a user that is no login, and bounds the polls of one user", async () => {
    const ingest = (headers: Record<string, string>, query = "") =>
      api(`/ingest/oktell${query}`, { method: "POST", headers: { "content-type": "text/xml", ...headers }, body: seed002Events.tminterfaceclose });
    const viaHeader = await ingest({ "x-oktell-user": "Peter" });
    expect(viaHeader.status).toBe(202);
    const [id] = ((await viaHeader.json()) as { ids: string[] }).ids;
    expect(((await (await api(`/api/events/${id}`)).json()) as { event: { origin: unknown } }).event.origin).toEqual({ channel: "oktell", user: "Peter" });
    const bad = await ingest({}, "?user=a%0Ab");
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe("HOOKD_OKTELL_USER_INVALID");

    // Four polls of one user may wait at once; the fifth is refused, and the four end in 204 at their wait.
    const polls = Array.from({ length: 4 }, () => api("/oktell/commands?user=D&wait=3"));
    await waitUntil(async () => {
      const fifth = await api("/oktell/commands?user=D&wait=0");
      return fifth.status === 429 && ((await fifth.json()) as { error: { code: string } }).error.code === "HOOKD_OKTELL_TOO_MANY_POLLS";
    }, { what: "a fifth poll of user D refused while four wait", timeoutMs: 3000 });
    expect((await Promise.all(polls)).map((r) => r.status)).toEqual([204, 204, 204, 204]);
  });

  it("hookd oktell-sim posts a file as the workstation's events and answers its commands with the seed's documents", async () => {
    const file = path.join(project.dir, "tminterfaceclose.xml");
    writeFileSync(file, seed002Events.tminterfaceclose);
    const child = spawn(process.execPath, [BIN, "oktell-sim", "--user", "E", "--url", daemon.url, "--token", TOKEN, "--send", file], { stdio: ["ignore", "pipe", "pipe"] });
    const lines: Array<Record<string, any>> = [];
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      for (const line of chunk.split("\n")) if (line.trim()) lines.push(JSON.parse(line));
    });
    try {
      const sent = await waitUntil(() => lines.find((l) => l.sent === file), { what: "the simulator's sent line" });
      expect(sent.status).toBe(202);
      // Its poll makes E a connected bridge; a command for E reaches it and is answered.
      let tries = 0;
      const answered = await waitUntil(async () => {
        const tag = `sim-${++tries}`;
        await ask(tag, "getUserState", "E");
        const result = await outcome(tag);
        return result.code !== "HOOKD_OKTELL_USER_NOT_CONNECTED" && result;
      }, { what: "a getUserState for E answered", intervalMs: 200 });
      expect(answered.result).toEqual({ state: "usReady", stateCode: 1, redirect: false });
      expect(lines.some((l) => l.received?.method === "GetUserState")).toBe(true);
    } finally {
      child.kill("SIGTERM");
      await new Promise((resolve) => child.once("exit", resolve));
    }
  });

  it("re-sends a command not answered within its lease, expires it at its TTL, and the plugin's call rejects with its own code", async () => {
    await ask("ttl", "getLineState", "C");
    const first = await nextCommand(false);
    // Sent, not answered: after the lease (1 s) the next poll gets it again.
    const again = await waitUntil(async () => (await simC.pollOnce(false, 2)).find((c) => c.id === first.id), { what: "the command re-sent after its lease" });
    expect(again.method).toBe("GetLineState");
    expect((await outcome("ttl")).code).toBe("HOOKD_OKTELL_COMMAND_TIMEOUT");
    const expired = await waitUntil(async () => {
      const { command } = (await (await api(`/api/oktell/commands/${first.id}`)).json()) as { command: Record<string, any> };
      return command.state === "expired" && command;
    }, { what: "the command expired" });
    expect(expired.attempts).toBeGreaterThanOrEqual(2);
    const late = await api(`/oktell/commands/${first.id}/result?user=C`, { method: "POST", headers: { "content-type": "text/xml" }, body: seed002NotEvents.linestate });
    expect(late.status).toBe(410);
    expect(((await late.json()) as { error: { code: string } }).error.code).toBe("HOOKD_OKTELL_COMMAND_EXPIRED");
  });

  it("keeps a pending confirm guard across a daemon restart: it is a stored command, not a timer", async () => {
    const simF = new OktellSimulator({ url: daemon.url, token: TOKEN, user: "F", waitSeconds: 1 });
    expect((await simF.sendEvents(CONFIRM_666)).status).toBe(202);
    await waitUntil(async () => ((await (await api("/api/oktell/commands?user=F&state=queued")).json()) as { commands: unknown[] }).commands.length === 1, { what: "F's held guard" });
    await daemon.stop();
    // The same project and data folder, a new process (and port).
    const again = new TestDaemon(project);
    await again.start();
    try {
      const restarted = new OktellSimulator({ url: again.url, token: TOKEN, user: "F", waitSeconds: 1 });
      const guard = await waitUntil(async () => (await restarted.pollOnce(true, 1)).find((c) => c.method === "TM_SetConfirmResult"), { what: "the guard's answer after the restart" });
      expect(resultValue(guard)).toBe("0");
      const { command } = await again.getJson(`/api/oktell/commands/${guard.id}`, AUTH);
      expect(command).toMatchObject({ state: "answered", requestedBy: "$confirm-guard", answer: true });
    } finally {
      await again.stop();
    }
  });
});
