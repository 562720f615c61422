// Who gets into the console, and how a browser's token travels: `?token=` once, then a cookie.
import http from "node:http";
import { describe, expect, it } from "vitest";
import { useDaemon } from "../helpers/daemon.ts";
import { waitUntil } from "../helpers/wait.ts";

const TOKEN = "console-access-token";

describe("console access", () => {
  const { project, daemon } = useDaemon({ fixtures: ["basic"] }, { env: { HOOKD_TOKEN: TOKEN } });
  let cookie = "";

  it("answers a browser without the token with a 401 login page, and no data", async () => {
    const response = await daemon.fetch("/");
    expect(response.status).toBe(401);
    expect(response.headers.get("content-type")).toMatch(/^text\/html/);
    const html = await response.text();
    expect(html).toContain('name="token"');
    expect(html).not.toContain("console.js");
    expect((await daemon.fetch("/?token=wrong")).status).toBe(401);
    expect((await daemon.fetch("/console/console.js")).status).toBe(401);
    expect((await daemon.fetch("/api/stream")).status).toBe(401);
  });

  it("trades ?token= for an HttpOnly, SameSite=Strict cookie and a redirect that drops the token from the address", async () => {
    const response = await daemon.fetch(`/?token=${TOKEN}`, { redirect: "manual" });
    expect(response.status).toBe(303);
    expect(response.headers.get("location")).toBe("/");
    const setCookie = response.headers.get("set-cookie") ?? "";
    expect(setCookie).toMatch(/^hookd_console=[\w-]+; Path=\/; HttpOnly; SameSite=Strict$/);
    // The cookie is derived from the token, not the token: it is no bearer token for scripts.
    expect(setCookie).not.toContain(TOKEN);
    cookie = setCookie.split(";")[0]!;
    const page = await daemon.fetch("/", { headers: { cookie } });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<script type="module" src="/console/console.js">');
    expect((await daemon.fetch("/", { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
  });

  it("lets the cookie read the API, but changes only with the console's header", async () => {
    expect((await daemon.fetch("/api/plugins", { headers: { cookie } })).status).toBe(200);
    const forged = await daemon.fetch("/events/test.ping", { method: "POST", headers: { cookie, "content-type": "application/json" }, body: '{"n":1}' });
    expect(forged.status).toBe(401);
    expect(((await forged.json()) as { error: { code: string } }).error.code).toBe("HOOKD_HTTP_UNAUTHORIZED");
    const fromConsole = await daemon.fetch("/events/test.ping", {
      method: "POST",
      headers: { cookie, "content-type": "application/json", "x-hookd-console": "1" },
      body: '{"n":2}',
    });
    expect(fromConsole.status).toBe(202);
    const wrongCookie = await daemon.fetch("/api/plugins", { headers: { cookie: "hookd_console=forged" } });
    expect(wrongCookie.status).toBe(401);
  });

  it("streams accepted events, finished runs and plugin changes as server-sent events", async () => {
    const stream = await openStream(`${daemon.url}/api/stream?token=${TOKEN}`);
    try {
      expect(stream.status).toBe(200);
      expect(stream.contentType).toMatch(/^text\/event-stream/);
      await stream.waitFor(/event: hello\n/);
      const posted = await daemon.post("test.ping", { n: 1 }, { authorization: `Bearer ${TOKEN}` });
      expect(posted.status).toBe(202);
      const id = posted.body.id as string;
      await stream.waitFor(new RegExp(`event: event\\ndata: .*"id":"${id}"`));
      await stream.waitFor(new RegExp(`event: run\\ndata: .*"eventId":"${id}".*"status":"done"`));
      const eventLine = stream.text.split("\n").find((line) => line.startsWith("data:") && line.includes(`"id":"${id}"`) && line.includes('"payload"'))!;
      expect(JSON.parse(eventLine.slice("data:".length))).toMatchObject({ id, name: "test.ping", payload: { n: 1 }, source: "http" });

      project.write("second.ts", `import { on } from "hookd";\non("test.ping", () => { throw new Error("second is broken now"); });\nthrow new Error("no load");\n`);
      await stream.waitFor(/event: plugins\ndata: .*"name":"second".*"lastError":\{"code":"HOOKD_PLUGIN_LOAD".*"location":"plugins\/second\.ts:3:7"/);
    } finally {
      stream.close();
    }
  });

  it("ends open streams when the daemon stops, instead of waiting for them", async () => {
    const stream = await openStream(`${daemon.url}/api/stream?token=${TOKEN}`);
    await stream.waitFor(/event: hello\n/);
    const stopped = daemon.stop();
    await stream.ended;
    expect(await stopped).toBe(0);
  });
});

/** An SSE stream on its own socket (no pooled keep-alive connection outlives the test). */
function openStream(url: string): Promise<{ status: number; contentType: string; text: string; ended: Promise<void>; waitFor(pattern: RegExp): Promise<void>; close(): void }> {
  return new Promise((resolve, reject) => {
    const request = http.get(url, { agent: false }, (response) => {
      let text = "";
      const ended = new Promise<void>((done) => response.on("close", done));
      response.setEncoding("utf8").on("data", (chunk: string) => (text += chunk));
      resolve({
        status: response.statusCode ?? 0,
        contentType: String(response.headers["content-type"]),
        get text() {
          return text;
        },
        ended,
        async waitFor(pattern) {
          await waitUntil(() => pattern.test(text), { timeoutMs: 10_000, intervalMs: 20, what: () => `${pattern} in the stream:\n${text}` });
        },
        close: () => request.destroy(),
      });
    });
    request.on("error", reject);
  });
}
