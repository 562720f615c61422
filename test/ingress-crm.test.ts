// Issue 17 items 5-6 on a real daemon: the CRM's webhooks as the CRM sends them (GET with the
// query as the payload, query fields on POST, multipart form fields), unknown fields kept, the
// seeds' types; bad requests get a 4xx with a HOOKD_* code and store nothing.
import { describe, expect, it } from "vitest";
import { storedEventCount, useDaemon } from "./helpers/daemon.ts";

describe("CRM webhooks and the seeds' payloads", () => {
  const { daemon } = useDaemon({ fixtures: ["basic"] }, { env: { HOOKD_TOKEN: "s3cret-token" } });
  const auth = { authorization: "Bearer s3cret-token" };
  const storedEvents = () => storedEventCount(daemon, auth);
  async function payloadOf(id: string): Promise<unknown> {
    const { event } = await daemon.getJson(`/api/events/${id}`, auth);
    return event.payload;
  }
  async function accepted(response: Response): Promise<unknown> {
    const text = await response.text();
    expect(response.status, text).toBe(202);
    return payloadOf((JSON.parse(text) as { id: string }).id);
  }
  async function expectError(response: Response, status: number, code: string): Promise<{ error: { code: string; message: string; issues?: Array<{ path: unknown[] }> } }> {
    const text = await response.text();
    expect(response.status, text).toBe(status);
    const body = JSON.parse(text);
    expect(body.error.code).toBe(code);
    return body;
  }

  it("GET /events/{name}?query: the query string is the payload, by PHP's array rules", async () => {
    const payload = await accepted(await daemon.fetch("/events/client.import?clids[]=1&clids[]=5&pids[]=2&autor=3&user=4", { headers: auth }));
    expect(payload).toEqual({ clids: [1, 5], pids: [2], autor: 3, user: 4 });
    // Encoded brackets, as http_build_query writes them.
    expect(await accepted(await daemon.fetch("/events/client.edit?clid=7&autor=1&user=2&newparam%5Btitle%5D=X", { headers: auth }))).toEqual({
      clid: 7, autor: 1, user: 2, newparam: { title: "X" },
    });
  });

  it("GET: same auth, validation, idempotency and unknown-event answers as POST", async () => {
    const before = await storedEvents();
    await expectError(await daemon.fetch("/events/client.import?clids[]=1&autor=3&user=4"), 401, "HOOKD_HTTP_UNAUTHORIZED");
    const invalid = await expectError(await daemon.fetch("/events/client.import?clids[]=x&autor=3", { headers: auth }), 400, "HOOKD_EVENT_INVALID");
    expect(invalid.error.issues!.map((i) => i.path.join("."))).toEqual(expect.arrayContaining(["clids", "user"]));
    await expectError(await daemon.fetch("/events/client.imported?autor=1", { headers: auth }), 404, "HOOKD_EVENT_UNKNOWN");
    await expectError(await daemon.fetch("/events/client.import", { headers: auth }), 400, "HOOKD_EVENT_INVALID");
    // HEAD stores nothing (fastify would answer it with the GET handler).
    expect((await daemon.fetch("/events/task.add?id=1&autor=1", { method: "HEAD", headers: auth })).status).toBe(404);
    await expectError(await daemon.fetch("/events/client.edit?clid=1&autor=1&user=1&newparam[a][b][c][d][e][f][g]=1", { headers: auth }), 400, "HOOKD_HTTP_TOO_DEEP");
    expect(await storedEvents()).toBe(before);

    const url = "/events/task.add?id=9&autor=1";
    const first = await daemon.fetch(url, { headers: { ...auth, "idempotency-key": "crm-get-1" } });
    expect(first.status).toBe(202);
    const again = await daemon.fetch(url, { headers: { ...auth, "idempotency-key": "crm-get-1" } });
    expect(again.status).toBe(202);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(((await again.json()) as { id: string }).id).toBe(((await first.json()) as { id: string }).id);
    expect(await storedEvents()).toBe(before + 1);
  });

  it("POST with the fields in the query string and an empty body takes them; the body wins on a clash", async () => {
    const empty = await daemon.fetch("/events/task.add?id=11&autor=2", { method: "POST", headers: auth });
    expect(await accepted(empty)).toEqual({ id: 11, autor: 2 });
    const form = await daemon.fetch("/events/task.add?id=12&autor=2", {
      method: "POST",
      headers: { ...auth, "content-type": "application/x-www-form-urlencoded" },
      body: "autor=5",
    });
    expect(await accepted(form)).toEqual({ id: 12, autor: 5 });
    const json = await daemon.fetch("/events/task.add?id=13&autor=2", {
      method: "POST",
      headers: { ...auth, "content-type": "application/json" },
      body: JSON.stringify({ id: 14 }),
    });
    expect(await accepted(json)).toEqual({ id: 14, autor: 2 });
  });

  it("multipart/form-data (PHP curl with an array CURLOPT_POSTFIELDS): fields by PHP's array rules", async () => {
    const body = new FormData();
    body.append("clids[]", "1");
    body.append("clids[]", "2");
    body.append("pids[0]", "7");
    body.append("autor", "3");
    body.append("user", "4");
    body.append("input12", "custom value");
    const payload = await accepted(await daemon.fetch("/events/client.import?user=99", { method: "POST", headers: auth, body }));
    expect(payload).toEqual({ clids: [1, 2], pids: [7], autor: 3, user: 4, input12: "custom value" });
  });

  it("multipart: a file part is a 415 with its code; a bad payload a 400; nothing stored", async () => {
    const before = await storedEvents();
    const withFile = new FormData();
    withFile.append("id", "1");
    withFile.append("autor", "1");
    withFile.append("attachment", new Blob(["%PDF"], { type: "application/pdf" }), "a.pdf");
    const file = await expectError(await daemon.fetch("/events/task.add", { method: "POST", headers: auth, body: withFile }), 415, "HOOKD_HTTP_FILE_PART");
    expect(file.error.message).toContain("attachment");

    const bad = new FormData();
    bad.append("id", "x");
    await expectError(await daemon.fetch("/events/task.add", { method: "POST", headers: auth, body: bad }), 400, "HOOKD_EVENT_INVALID");

    const huge = new FormData();
    huge.append("id", "1");
    huge.append("autor", "1");
    huge.append("note", "x".repeat(2 * 1024 * 1024));
    await expectError(await daemon.fetch("/events/task.add", { method: "POST", headers: auth, body: huge }), 413, "HOOKD_HTTP_BODY_TOO_LARGE");

    const deep = new FormData();
    deep.append("clid", "1");
    deep.append("newparam[a][b][c][d][e][f][g]", "1");
    await expectError(await daemon.fetch("/events/client.edit", { method: "POST", headers: auth, body: deep }), 400, "HOOKD_HTTP_TOO_DEEP");

    const broken = await daemon.fetch("/events/task.add", {
      method: "POST",
      headers: { ...auth, "content-type": "multipart/form-data; boundary=xyz" },
      body: "--xyz\r\nContent-Disposition: form-data; name=\"id\"\r\n\r\n1",
    });
    expect(broken.status).toBeGreaterThanOrEqual(400);
    expect(broken.status).toBeLessThan(500);
    expect(((await broken.json()) as { error: { code: string } }).error.code).toMatch(/^HOOKD_HTTP_/);
    expect(await storedEvents()).toBe(before);
  });

  it("415 names the type that arrived", async () => {
    const xml = await expectError(
      await daemon.fetch("/events/task.add", { method: "POST", headers: { ...auth, "content-type": "application/xml; charset=utf-8" }, body: "<x/>" }),
      415,
      "HOOKD_HTTP_UNSUPPORTED_MEDIA_TYPE",
    );
    expect(xml.error.message).toContain("application/xml");
    expect(xml.error.message).not.toContain("(none)");
  });

  it("unknown fields are kept: custom CRM fields and extras of the operator event", async () => {
    const response = await daemon.fetch("/events/client.add", {
      method: "POST",
      headers: { ...auth, "content-type": "application/x-www-form-urlencoded" },
      body: "clid=5&autor=1&user=2&input7=VIP&extra[a]=b",
    });
    expect(await accepted(response)).toEqual({ clid: 5, autor: 1, user: 2, input7: "VIP", extra: { a: "b" } });
  });

  it("seed 004 types: person.add takes a string pid (p-7); invoice.add a string user", async () => {
    const person = await daemon.post("person.add", { pid: "p-7", autor: "3", user: "u-4" }, auth);
    expect(person.status).toBe(202);
    expect(await payloadOf(person.body.id)).toEqual({ pid: "p-7", autor: "3", user: "u-4" });
    const invoice = await daemon.post("invoice.add", { did: 1, autor: 2, user: "emp-9", userUID: "", summa: "10.00", invoice: "A-1" }, auth);
    expect(invoice.status).toBe(202);
    expect(await payloadOf(invoice.body.id)).toMatchObject({ user: "emp-9" });
  });

  it("seed 000: id and status suffice; an automatic reason with another status than Offline is a 400 at ['status']", async () => {
    const minimal = await daemon.post("user.operator_status.changed", { userId: "op-1", status: "Online" }, auth);
    expect(minimal.status).toBe(202);
    const before = await storedEvents();
    const response = await daemon.post("user.operator_status.changed", { userId: "op-1", status: "Online", reason: "logout" }, auth);
    expect(response.status).toBe(400);
    expect(response.body.error.code).toBe("HOOKD_EVENT_INVALID");
    expect(response.body.error.issues.map((i: { path: unknown[] }) => i.path)).toEqual([["status"]]);
    expect(await storedEvents()).toBe(before);
  });

  it("GET /api/catalog still converts every event; known fields listed, others allowed", async () => {
    const { events } = await daemon.getJson("/api/catalog", auth);
    // str(): any string (a JSON number is taken as its text); person.edit's pid is int(): a numeric string.
    expect(JSON.stringify(events["person.add"].properties.pid)).not.toContain("pattern");
    expect(JSON.stringify(events["person.edit"].properties.pid)).toContain("pattern");
    expect(events["person.add"].additionalProperties).not.toBe(false);
    expect(events["oktell.linestatechange"].properties.state.enum).toContain("lsOff");
    expect(events["user.operator_status.changed"].required.sort()).toEqual(["status", "userId"]);
  });
});
