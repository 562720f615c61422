// Bad input of every kind gets a 4xx with a HOOKD_* code, and nothing is stored.
import { describe, expect, it } from "vitest";
import { storedEventCount, useDaemon } from "./helpers/daemon.ts";

describe("ingress errors", () => {
  const { daemon } = useDaemon({ fixtures: ["basic"] }, { env: { HOOKD_TOKEN: "s3cret-token" } });
  const auth = { authorization: "Bearer s3cret-token" };
  const storedEvents = () => storedEventCount(daemon, auth);

  async function expectError(response: Response, status: number, code: string) {
    expect(response.status).toBe(status);
    expect(response.headers.get("content-type")).toMatch(/application\/json/);
    const body = (await response.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe(code);
    expect(body.error.message.length).toBeGreaterThan(10);
    return body;
  }

  const post = (name: string, body: string | Buffer, headers: Record<string, string>) =>
    daemon.fetch(`/events/${name}`, { method: "POST", headers: { ...auth, ...headers }, body });

  it("401 without a token, with a wrong one, and with a malformed header", async () => {
    const before = await storedEvents();
    const payload = JSON.stringify({ did: 1, autor: 1, summa: "1", status: "won" });
    await expectError(await daemon.fetch("/events/deal.close", { method: "POST", headers: { "content-type": "application/json" }, body: payload }), 401, "HOOKD_HTTP_UNAUTHORIZED");
    await expectError(await daemon.fetch("/events/deal.close", { method: "POST", headers: { "content-type": "application/json", authorization: "Bearer wrong" }, body: payload }), 401, "HOOKD_HTTP_UNAUTHORIZED");
    await expectError(await daemon.fetch("/events/deal.close", { method: "POST", headers: { "content-type": "application/json", authorization: "s3cret-token" }, body: payload }), 401, "HOOKD_HTTP_UNAUTHORIZED");
    await expectError(await daemon.fetch("/api/runs"), 401, "HOOKD_HTTP_UNAUTHORIZED");
    // Liveness and readiness stay open for the service manager and load balancers.
    expect((await daemon.fetch("/healthz")).status).toBe(200);
    expect(await storedEvents()).toBe(before);
  });

  it("404 for an unknown event, before reading the body", async () => {
    const body = await expectError(await post("deal.closed", "{}", { "content-type": "application/json" }), 404, "HOOKD_EVENT_UNKNOWN");
    expect(body.error.message).toContain("deal.closed");
    await expectError(await daemon.fetch("/nowhere", { headers: auth }), 404, "HOOKD_HTTP_NOT_FOUND");
  });

  it("400 with zod's issue paths for a payload of the wrong shape", async () => {
    const before = await storedEvents();
    const response = await post("deal.close", JSON.stringify({ did: "abc", autor: 1.5, summa: "12,5" }), { "content-type": "application/json" });
    const body = (await expectError(response, 400, "HOOKD_EVENT_INVALID")) as unknown as { error: { issues: Array<{ path: string[]; message: string }> } };
    const paths = body.error.issues.map((issue) => issue.path.join("."));
    expect(paths).toEqual(expect.arrayContaining(["did", "autor", "summa", "status"]));
    expect(body.error.issues.find((i) => i.path[0] === "did")!.message).toMatch(/integer/);
    expect(body.error.issues.find((i) => i.path[0] === "status")!.message).toMatch(/string/);
    expect(await storedEvents()).toBe(before);
  });

  it("400 for malformed JSON, an empty JSON body and a JSON array", async () => {
    const before = await storedEvents();
    await expectError(await post("deal.close", '{"did": 1,', { "content-type": "application/json" }), 400, "HOOKD_HTTP_MALFORMED_BODY");
    await expectError(await post("deal.close", "", { "content-type": "application/json" }), 400, "HOOKD_HTTP_MALFORMED_BODY");
    await expectError(await post("deal.close", "[1,2]", { "content-type": "application/json" }), 400, "HOOKD_EVENT_INVALID");
    await expectError(await post("deal.close", '"text"', { "content-type": "application/json" }), 400, "HOOKD_EVENT_INVALID");
    expect(await storedEvents()).toBe(before);
  });

  it("413 for a body over the limit, JSON or form", async () => {
    const before = await storedEvents();
    const huge = JSON.stringify({ did: 1, autor: 1, summa: "1", status: "x".repeat(100 * 1024) });
    await expectError(await post("deal.close", huge, { "content-type": "application/json" }), 413, "HOOKD_HTTP_BODY_TOO_LARGE");
    await expectError(await post("deal.close", `did=1&status=${"x".repeat(100 * 1024)}`, { "content-type": "application/x-www-form-urlencoded" }), 413, "HOOKD_HTTP_BODY_TOO_LARGE");
    expect(await storedEvents()).toBe(before);
  });

  it("415 for content types other than JSON and forms, and for none", async () => {
    const before = await storedEvents();
    await expectError(await post("deal.close", "did=1", { "content-type": "text/plain" }), 415, "HOOKD_HTTP_UNSUPPORTED_MEDIA_TYPE");
    await expectError(await post("deal.close", "<xml/>", { "content-type": "application/xml" }), 415, "HOOKD_HTTP_UNSUPPORTED_MEDIA_TYPE");
    await expectError(await daemon.fetch("/events/deal.close", { method: "POST", headers: auth, body: Buffer.from([1, 2, 3]) }), 415, "HOOKD_HTTP_UNSUPPORTED_MEDIA_TYPE");
    expect(await storedEvents()).toBe(before);
  });

  it("400 for bad query parameters and a bad Idempotency-Key", async () => {
    await expectError(await daemon.fetch("/api/runs?status=weird", { headers: auth }), 400, "HOOKD_HTTP_BAD_REQUEST");
    await expectError(await daemon.fetch("/api/events?limit=ten", { headers: auth }), 400, "HOOKD_HTTP_BAD_REQUEST");
    await expectError(
      await post("deal.close", JSON.stringify({ did: 1, autor: 1, summa: "1", status: "won" }), { "content-type": "application/json", "idempotency-key": "k".repeat(300) }),
      400,
      "HOOKD_HTTP_BAD_REQUEST",
    );
  });

  it("stays up and keeps accepting after all of that", async () => {
    const response = await post("deal.close", JSON.stringify({ did: 9, autor: 1, summa: "1", status: "won" }), { "content-type": "application/json" });
    expect(response.status).toBe(202);
    const { id } = (await response.json()) as { id: string };
    await daemon.waitForLog((l) => l.msg === "recorder handled" && l.eventId === id);
  });
});
