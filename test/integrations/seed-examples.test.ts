// The shipped events.config.ts and plugins/ reproduce each seed's own example, run as shipped:
// seed 000 (supervisor told of a status change and why), seed 001 (a lead per chat session,
// also started by hand), seed 004 (a closed deal forwarded by webhook).
import { createHmac } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import qs from "qs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO, TestDaemon, TestProject } from "../helpers/daemon.ts";
import { readBody, startLocalServer, type LocalServer } from "../helpers/http.ts";
import { waitUntil } from "../helpers/wait.ts";

const SECRET = "shipped-example-secret";

describe("the shipped examples", () => {
  let receiver: LocalServer;
  let origin = "";
  const received: Array<{ path: string; headers: Record<string, unknown>; body: string }> = [];
  const plugins = Object.fromEntries(
    readdirSync(path.join(REPO, "plugins"))
      .filter((file) => file.endsWith(".ts"))
      .map((file) => [file, readFileSync(path.join(REPO, "plugins", file), "utf8")]),
  );
  const project = new TestProject({ config: readFileSync(path.join(REPO, "events.config.ts"), "utf8"), files: plugins });
  const daemon = new TestDaemon(project);

  beforeAll(async () => {
    receiver = await startLocalServer(async (request, response) => {
      const body = await readBody(request);
      received.push({ path: request.url ?? "", headers: request.headers, body });
      response.end("ok");
    });
    origin = receiver.origin;
    await daemon.start({ env: { DEAL_WEBHOOK_URL: `${origin}/hook.php`, HOOKD_WEBHOOK_SECRET: SECRET } });
  });
  afterAll(async () => {
    await daemon.stop();
    project.remove();
    await receiver.close();
  });

  it("seed 000: the supervisor is told of an operator's status change, with the reason", async () => {
    const reasons = { manual: "changed it by hand", logout: "logged out", inactivity: "was inactive too long", license_expired: "lost their licence" };
    for (const [reason, words] of Object.entries(reasons)) {
      const { status, body } = await daemon.post("user.operator_status.changed", { userId: `op-${reason}`, status: "offline", reason, changedAt: "2026-11-21T10:00:00Z" });
      expect(status).toBe(202);
      const told = await daemon.waitForLog((l) => l.plugin === "notify-supervisor" && l.eventId === body.id && typeof l.msg === "string");
      // The route left `supervisor` out: the action looked it up itself.
      expect(told).toMatchObject({ operator: `op-${reason}`, supervisor: "duty-supervisor", reason });
      expect(told.msg).toBe(`Operator op-${reason} ${words}: now offline`);
    }
  });

  it("seed 001: a lead is created when a chat session is created, and by hand from a session", async () => {
    const { body } = await daemon.post("session.created", { sessionId: "s-1", channel: "telegram", createdAt: "2026-11-21T10:00:00Z" });
    const created = await daemon.waitForLog((l) => l.msg === "lead created" && l.eventId === body.id);
    expect(created).toMatchObject({ sessionId: "s-1", channel: "telegram", by: "session" });

    const bad = await daemon.fetch("/actions/create-lead", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ channel: "web" }) });
    expect(bad.status).toBe(400);
    const { error } = (await bad.json()) as { error: { code: string; issues: Array<{ path: string[] }> } };
    expect(error.code).toBe("HOOKD_RUN_INPUT_INVALID");
    expect(error.issues.map((i) => i.path.join("."))).toEqual(["sessionId"]);

    const manual = await daemon.fetch("/actions/create-lead", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ sessionId: "s-2" }) });
    expect(manual.status).toBe(202);
    const { id } = (await manual.json()) as { id: string };
    expect(await daemon.waitForLog((l) => l.msg === "lead created" && l.eventId === id)).toMatchObject({ sessionId: "s-2", by: "operator" });
  });

  it("seed 004: a closed deal is forwarded by webhook as a signed PHP form", async () => {
    const { body } = await daemon.post("deal.close", { did: "77", autor: "3", summa: "10340.00", status: "won" });
    const hook = await waitUntil(() => received.find((r) => r.headers["webhook-id"] === `msg_${body.id}`), { timeoutMs: 15_000, what: `the webhook msg_${body.id}` });
    expect(hook).toBeDefined();
    expect(hook!.path).toBe("/hook.php");
    expect(qs.parse(hook!.body)).toEqual({ deal: "77", amount: "10340.00", status: "won", author: "3" });
    const signed = `msg_${body.id}.${String(hook!.headers["webhook-timestamp"])}.${hook!.body}`;
    expect(hook!.headers["webhook-signature"]).toBe(`v1,${createHmac("sha256", Buffer.from(SECRET)).update(signed).digest("base64")}`);
    // The deal-forwarder plugin keeps its running total beside the webhook.
    await daemon.waitForLog((l) => l.msg === "deal closed" && l.eventId === body.id);
  });
});
