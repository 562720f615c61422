// Outbound webhooks from the real daemon to a receiver on 127.0.0.1, which checks every
// signature with its own HMAC (node:crypto), as a receiver written in any language would.
import { createHmac, timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";
import qs from "qs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestDaemon, TestProject } from "../helpers/daemon.ts";
import { readBody, startLocalServer, type LocalServer } from "../helpers/http.ts";
import { waitUntil } from "../helpers/wait.ts";

const KEY = Buffer.from("hookd test signing key, 32 bytes");
const SECRET = `whsec_${KEY.toString("base64")}`;

interface Received {
  method: string;
  path: string;
  query: Record<string, unknown>;
  headers: IncomingMessage["headers"];
  body: string;
  /** What the receiver computed itself. */
  signatureValid: boolean;
}

/** A Standard Webhooks check: HMAC-SHA256 of `id.timestamp.content`, content = body, or the URL for GET. */
function verify(request: IncomingMessage, body: string, origin: string): boolean {
  const id = String(request.headers["webhook-id"]);
  const timestamp = String(request.headers["webhook-timestamp"]);
  const content = request.method === "GET" ? `${origin}${request.url}` : body;
  const expected = createHmac("sha256", KEY).update(`${id}.${timestamp}.${content}`).digest();
  return String(request.headers["webhook-signature"] ?? "")
    .split(" ")
    .some((candidate) => {
      const [version, signature] = candidate.split(",");
      const given = Buffer.from(signature ?? "", "base64");
      return version === "v1" && given.length === expected.length && timingSafeEqual(given, expected);
    });
}

describe("outbound webhooks", () => {
  let receiver: LocalServer;
  let origin = "";
  const received: Received[] = [];
  /** How /flaky answers: fail until told otherwise. */
  let flakyAnswers = true;
  let project: TestProject;
  let daemon: TestDaemon;

  beforeAll(async () => {
    receiver = await startLocalServer(async (request, response) => {
      const body = await readBody(request);
      const url = new URL(request.url ?? "/", origin);
      received.push({
        method: request.method ?? "",
        path: url.pathname,
        query: qs.parse(url.search.slice(1)),
        headers: request.headers,
        body,
        signatureValid: verify(request, body, origin),
      });
      if (url.pathname === "/redirect") {
        response.writeHead(302, { location: `${origin}/ok` }).end();
      } else if (url.pathname === "/flaky" && flakyAnswers) {
        const first = received.filter((r) => r.path === "/flaky" && r.headers["webhook-id"] === request.headers["webhook-id"]).length === 1;
        // The first attempt asks for a pause; the rest just fail.
        response.writeHead(first ? 503 : 500, first ? { "retry-after": "3" } : {}).end("down");
      } else {
        response.writeHead(200).end("ok");
      }
    });
    origin = receiver.origin;

    project = new TestProject({
      config: `
import { defineConfig } from "hookd/config";
import { catalog } from "hookd/catalog";
export default defineConfig({
  events: catalog,
  webhooks: [
    { on: "deal.close", url: "${origin}/get.php?src=hookd", method: "GET", map: { deal: "did", amount: "summa" } },
    { on: "deal.close", url: "${origin}/form.php", method: "POST", format: "form", map: { deal: "did", amount: "summa", status: "status" } },
    { on: "deal.close", url: "${origin}/json", method: "POST" },
    { on: "client.import", url: "${origin}/form.php", method: "POST", format: "form" },
    { on: "deal.add", url: "${origin}/redirect", method: "POST" },
    { on: "task.add", url: "${origin}/flaky", method: "POST" },
  ],
  // Short, so a test sees the whole schedule: 4 attempts.
  webhookDelivery: { retryScheduleMs: [100, 200, 300], secret: "${SECRET}" },
});
`,
    });
    daemon = new TestDaemon(project);
    await daemon.start();
  });

  afterAll(async () => {
    await daemon?.stop();
    project?.remove();
    await receiver.close();
  });

  async function waitForRequests(match: (r: Received) => boolean, count: number): Promise<Received[]> {
    return waitUntil(
      () => {
        const found = received.filter(match);
        return found.length >= count && found;
      },
      { timeoutMs: 15_000, what: () => `${count} matching requests (the receiver saw ${received.filter(match).length})` },
    );
  }

  async function runsOf(eventId: string): Promise<Array<{ kind: string; plugin: string; status: string; attempts: number; nextAt: number; updatedAt: number; lastError: { code: string; message: string } | null }>> {
    return (await daemon.getJson(`/api/runs?eventId=${eventId}`)).runs;
  }

  it("sends an event by GET, form POST and JSON POST, each signed so the receiver's own HMAC verifies it", async () => {
    const { status, body } = await daemon.post("deal.close", { did: "12", autor: 3, summa: "1500.00", status: "won" });
    expect(status).toBe(202);
    const messageId = `msg_${body.id}`;
    const requests = await waitForRequests((r) => r.headers["webhook-id"] === messageId, 3);
    expect(requests.every((r) => r.signatureValid)).toBe(true);
    expect(requests.every((r) => Math.abs(Number(r.headers["webhook-timestamp"]) - Date.now() / 1000) < 300)).toBe(true);

    const get = requests.find((r) => r.method === "GET")!;
    expect(get.path).toBe("/get.php");
    expect(get.query).toEqual({ src: "hookd", deal: "12", amount: "1500.00" });
    expect(get.body).toBe("");

    const form = requests.find((r) => r.path === "/form.php")!;
    expect(form.headers["content-type"]).toBe("application/x-www-form-urlencoded");
    expect(qs.parse(form.body)).toEqual({ deal: "12", amount: "1500.00", status: "won" });

    const json = requests.find((r) => r.path === "/json")!;
    expect(json.headers["content-type"]).toBe("application/json");
    // Without a map, the whole (validated, normalised) payload.
    expect(JSON.parse(json.body)).toEqual({ did: 12, autor: 3, summa: "1500.00", status: "won" });
    expect(json.headers["hookd-event"]).toBe("deal.close");

    const runs = await runsOf(body.id);
    await expect.poll(async () => (await runsOf(body.id)).map((r) => r.status)).toEqual(["done", "done", "done"]);
    expect(runs.every((r) => r.kind === "webhook")).toBe(true);
  });

  it("sends PHP arrays as a form the way events.php did", async () => {
    const { body } = await daemon.post("client.import", { clids: [101, 102], pids: [7], autor: 3, user: 4 });
    const [request] = await waitForRequests((r) => r.headers["webhook-id"] === `msg_${body.id}`, 1);
    expect(request!.signatureValid).toBe(true);
    expect(request!.body).toContain("clids%5B%5D=101&clids%5B%5D=102");
    expect(qs.parse(request!.body)).toEqual({ clids: ["101", "102"], pids: ["7"], autor: "3", user: "4" });
  });

  it("does not follow a redirect: the attempt fails and is retried", async () => {
    const { body } = await daemon.post("deal.add", { did: 5, autor: 1, userUID: "" });
    await waitForRequests((r) => r.path === "/redirect" && r.headers["webhook-id"] === `msg_${body.id}`, 2);
    expect(received.filter((r) => r.path === "/ok")).toHaveLength(0);
    const [run] = await runsOf(body.id);
    expect(run!.lastError).toMatchObject({ code: "HOOKD_WEBHOOK_FAILED" });
    expect(run!.lastError!.message).toContain("302");
  });

  it("retries a failing receiver on the schedule with one webhook-id, honours Retry-After, then disables the endpoint", async () => {
    const { body } = await daemon.post("task.add", { id: 9, autor: 1 });
    const messageId = `msg_${body.id}`;

    // After the first attempt (503, Retry-After: 3) the next one is set 3 s out, not 100 ms.
    await waitForRequests((r) => r.headers["webhook-id"] === messageId, 1);
    // Claimed is not finished: wait until the first attempt's outcome is recorded.
    await expect.poll(async () => (await runsOf(body.id))[0]?.lastError?.code).toBe("HOOKD_WEBHOOK_FAILED");
    const [afterFirst] = await runsOf(body.id);
    expect(afterFirst).toMatchObject({ status: "pending", attempts: 1 });
    expect(afterFirst!.nextAt - afterFirst!.updatedAt).toBe(3000);

    const attempts = await waitForRequests((r) => r.headers["webhook-id"] === messageId, 4);
    expect(attempts.every((r) => r.signatureValid)).toBe(true);
    await expect.poll(async () => (await runsOf(body.id))[0]?.status, { timeout: 10_000 }).toBe("dead");
    expect((await runsOf(body.id))[0]).toMatchObject({ attempts: 4, lastError: { code: "HOOKD_WEBHOOK_FAILED" } });

    const disabled = await daemon.waitForLog((l) => l.code === "HOOKD_WEBHOOK_DISABLED" && l.url === `${origin}/flaky`);
    expect(disabled.level).toBe(50);
    const { webhooks } = await daemon.getJson("/api/webhooks");
    const endpoint = webhooks.find((w: { url: string }) => w.url === `${origin}/flaky`);
    expect(endpoint).toMatchObject({ state: "disabled", consecutiveFailures: 4, events: ["task.add"] });
    expect(received.filter((r) => r.headers["webhook-id"] === messageId)).toHaveLength(4);

    // A new message waits while the endpoint is disabled, and goes out once it is enabled again.
    const next = await daemon.post("task.add", { id: 10, autor: 1 });
    expect((await runsOf(next.body.id))[0]).toMatchObject({ status: "pending", attempts: 0 });
    flakyAnswers = false;
    const enabled = await daemon.fetch(`/api/webhooks/${endpoint.id}/enable`, { method: "POST" });
    expect(enabled.status).toBe(200);
    expect(((await enabled.json()) as { webhook: { state: string } }).webhook.state).toBe("enabled");
    const [delivered] = await waitForRequests((r) => r.headers["webhook-id"] === `msg_${next.body.id}`, 1);
    expect(delivered!.signatureValid).toBe(true);
    await expect.poll(async () => (await runsOf(next.body.id))[0]?.status).toBe("done");

    const unknown = await daemon.fetch("/api/webhooks/ep_nope/enable", { method: "POST" });
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { error: { code: string } }).error.code).toBe("HOOKD_WEBHOOK_NOT_FOUND");
  });
});

describe("webhook deliveries across a crash", () => {
  let receiver: LocalServer;
  let origin = "";
  const ids: string[] = [];

  beforeAll(async () => {
    receiver = await startLocalServer((request, response) => {
      ids.push(String(request.headers["webhook-id"]));
      request.resume();
      // The first attempt never gets an answer: it is in flight when the daemon is killed.
      if (ids.length > 1) request.on("end", () => response.end("ok"));
    });
    origin = receiver.origin;
  });
  afterAll(() => receiver.close());

  it("sends again after a restart the webhook that was in flight when the daemon died, with the same webhook-id", async () => {
    const project = new TestProject({
      config: `
import { defineConfig } from "hookd/config";
import { catalog } from "hookd/catalog";
export default defineConfig({ events: catalog, webhooks: [{ on: "task.add", url: "${origin}/hook" }] });
`,
    });
    try {
      const first = await new TestDaemon(project).start();
      const { body } = await first.post("task.add", { id: 1, autor: 1 });
      await expect.poll(() => ids.length).toBe(1);
      await first.kill();

      const second = await new TestDaemon(project).start();
      await expect.poll(() => ids.length, { timeout: 10_000 }).toBe(2);
      expect(ids).toEqual([`msg_${body.id}`, `msg_${body.id}`]);
      await expect.poll(async () => (await second.getJson(`/api/runs?eventId=${body.id}`)).runs[0]?.status).toBe("done");
      await second.stop();
    } finally {
      project.remove();
    }
  });
});
