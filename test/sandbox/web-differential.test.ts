// Issue 20, differential: the same snippet runs in Node (its own web platform) and in a real
// plugin isolate (test/fixtures/plugins/web/probe.ts), and the two results are compared value by
// value. Inputs are generated from a fixed seed, hundreds per case, and each case is one isolate
// run (not one run per input). The Web Platform Tests' data files (urltestdata.json, the
// encoding tests) cannot be fetched offline, so the inputs are generated here instead.
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compilePlugin } from "../../core/compile/compile-plugin.ts";
import type { RunOutcome } from "../../core/store/types.ts";
import { IsolateHost } from "../../sandbox/isolate-host.ts";
import type { PluginLimits, RunRequest } from "../../sandbox/protocol.ts";
import { FIXTURES } from "../helpers/daemon.ts";

const LIMITS: PluginLimits = { memoryMb: 128, timeoutMs: 20_000, maxConcurrentRuns: 1, maxHostCallsInFlight: 64 };

/** mulberry32: a small seeded generator, so every run tests the same inputs. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const random = seeded(20);
const int = (n: number) => Math.floor(random() * n);
const pick = <T>(list: readonly T[]): T => list[int(list.length)]!;
const bytes = (n: number) => Array.from({ length: n }, () => int(256));

let seq = 0;
const stored = new Map<string, unknown>();
let host: IsolateHost;

beforeAll(async () => {
  host = new IsolateHost({
    environmentSecrets: false,
    services: {
      log: () => undefined,
      kv: async (plugin, op, args) => {
        if (op === "set") stored.set(`${plugin}:${String(args[0])}`, args[1]);
        return null;
      },
      emit: async () => ({ id: "x" }),
      fetch: async () => ({ status: 200, statusText: "OK", headers: {}, body: "", url: "" }),
    },
  });
  const compiled = await compilePlugin(path.join(FIXTURES, "plugins", "web", "probe.ts"), { root: FIXTURES });
  await host.load({ plugin: "probe", version: 1, file: "plugins/probe.ts", code: compiled.code, sourceMap: compiled.sourceMap, limits: LIMITS });
}, 60_000);

afterAll(async () => {
  await host?.close();
});

async function inIsolate(code: string): Promise<unknown> {
  const runId = `diff-${++seq}`;
  const outcome: RunOutcome = await host.run({ runId, plugin: "probe", version: 1, kind: "action", name: "eval", payload: { code }, meta: { eventId: runId, eventName: "eval", receivedAt: Date.now(), attempt: 1, depth: 0 } } as RunRequest);
  expect(outcome, JSON.stringify(outcome)).toMatchObject({ ok: true });
  return stored.get("probe:result");
}
async function inNode(code: string): Promise<unknown> {
  const run = new Function(`return (async () => {\n${code}\n})()`) as () => Promise<unknown>;
  let result: unknown;
  try {
    result = { value: await run() };
  } catch (error) {
    result = { threw: (error as Error)?.name ?? String(error), message: String((error as Error)?.message) };
  }
  return JSON.parse(JSON.stringify(result)) as unknown;
}
/** Runs `code` in both; compares the results item by item so a failure names the input. */
async function same(code: string): Promise<unknown[]> {
  const [node, isolate] = [(await inNode(code)) as { value?: unknown[] }, (await inIsolate(code)) as { value?: unknown[] }];
  expect(isolate.value, JSON.stringify(isolate).slice(0, 500)).toBeDefined();
  expect(node.value, JSON.stringify(node).slice(0, 500)).toBeDefined();
  const n = node.value!;
  const i = isolate.value!;
  for (let k = 0; k < Math.max(n.length, i.length); k++) expect(i[k], `item ${k}`).toEqual(n[k]);
  return i;
}

describe("Request, Response, Blob, File, FormData agree with Node's", () => {
  it("Response: bodies of every kind, status checks, statics, clone, a second read", async () => {
    await same(`
      const out = [];
      const read = async (r) => [r.status, r.ok, r.statusText, r.headers.get("content-type"), r.bodyUsed, await r.text(), r.bodyUsed];
      out.push(await read(new Response("héllo 💸")));
      out.push(await read(new Response(new Uint8Array([0xef, 0xbb, 0xbf, 104, 0xff]), { status: 201, statusText: "Made", headers: { "X-A": "1" } })));
      out.push(await read(new Response(new URLSearchParams("a=1&b= 2"))));
      out.push(await read(new Response(new Blob(["ab", new Uint8Array([99])], { type: "Text/Plain" }))));
      out.push(await read(new Response(null, { status: 204 })));
      out.push(await read(new Response()));
      out.push([...new Uint8Array(await new Response("xyz").arrayBuffer())]);
      out.push([...(await new Response("xyz").bytes())]);
      out.push(await new Response('{"a":[1,{"b":null}]}').json());
      const blob = await new Response("abc", { headers: { "content-type": "Text/HTML" } }).blob();
      out.push([blob.size, blob.type, await blob.text()]);
      for (const init of [{ status: 199 }, { status: 600 }, { status: 200.5 }, { statusText: "bad\\n" }]) { try { new Response("x", init); out.push("made"); } catch (e) { out.push(e.name); } }
      for (const status of [204, 205, 304]) { try { new Response("x", { status }); out.push("made"); } catch (e) { out.push(e.name); } }
      const json = Response.json({ a: 1 }, { status: 202, headers: { "x-b": "2" } });
      out.push([json.status, json.headers.get("content-type"), json.headers.get("x-b"), await json.text()]);
      try { Response.json(undefined); out.push("made"); } catch (e) { out.push(e.name); }
      const error = Response.error(); out.push([error.status, error.type, error.ok]);
      const redirect = Response.redirect("https://a.example/x y", 307); out.push([redirect.status, redirect.headers.get("location")]);
      try { Response.redirect("https://a.example/", 200); out.push("made"); } catch (e) { out.push(e.name); }
      const original = new Response("twice"); const copy = original.clone();
      out.push([await original.text(), await copy.text()]);
      try { await original.text(); out.push("read again"); } catch (e) { out.push(e.name); }
      try { original.clone(); out.push("cloned"); } catch (e) { out.push(e.name); }
      const streamed = new Response("from a stream"); const reader = streamed.body.getReader(); let text = ""; const decoder = new TextDecoder();
      for (;;) { const { done, value } = await reader.read(); if (done) break; text += decoder.decode(value, { stream: true }); }
      out.push([text, streamed.bodyUsed, new Response(null).body]);
      out.push([new Response("x").type, new Response("x").url, new Response("x").redirected, Object.prototype.toString.call(new Response())]);
      return out;`);
  });

  it("Request: methods, URLs, bodies, signals and copies", async () => {
    await same(`
      const out = [];
      const r = new Request("https://Example.com/a/../b?q=1#h", { method: "post", body: "x=1", headers: { "X-Y": "z" } });
      out.push([r.url, r.method, r.headers.get("content-type"), r.headers.get("x-y"), r.redirect, r.bodyUsed, await r.text(), r.bodyUsed]);
      for (const method of ["get", "Patch", "delete", "options", "head", "put", "custom", "CONNECT", "trace", "bad method"]) { try { out.push(new Request("https://a.b/", { method }).method); } catch (e) { out.push(e.name); } }
      for (const url of ["relative/path", "https://a.b:99999/", "http://[::1]/"]) { try { out.push(new Request(url).url); } catch (e) { out.push(e.name); } }
      for (const method of ["GET", "HEAD"]) { try { new Request("https://a.b/", { method, body: "x" }); out.push("made"); } catch (e) { out.push(e.name); } }
      const controller = new AbortController();
      const withSignal = new Request("https://a.b/", { signal: controller.signal }); controller.abort();
      out.push([withSignal.signal.aborted, new Request("https://a.b/").signal.aborted]);
      const base = new Request("https://a.b/p", { method: "PUT", body: new Uint8Array([1, 2, 3]), headers: { a: "1" } });
      const derived = new Request(base, { headers: { b: "2" } });
      out.push([derived.method, derived.url, derived.headers.get("a"), derived.headers.get("b"), base.bodyUsed, [...(await derived.bytes())]]);
      const cloned = new Request("https://a.b/", { method: "POST", body: "c" }).clone();
      out.push([cloned.method, await cloned.text()]);
      const form = new FormData(); form.append("k", "v"); form.append("f", new Blob(["file body"], { type: "text/plain" }), "a.txt");
      const multipart = new Request("https://a.b/", { method: "POST", body: form });
      const ct = multipart.headers.get("content-type");
      const back = await multipart.formData();
      out.push([/^multipart\\/form-data; boundary=/.test(ct), back.get("k"), back.get("f").name, back.get("f").type, await back.get("f").text()]);
      const urlencoded = await new Request("https://a.b/", { method: "POST", body: new URLSearchParams("a=1&a=2&b=%20") }).formData();
      out.push([urlencoded.getAll("a"), urlencoded.get("b")]);
      try { await new Response("x", { headers: { "content-type": "text/plain" } }).formData(); out.push("parsed"); } catch (e) { out.push(e.name); }
      return out;`);
  });

  it("Blob, File and FormData", async () => {
    await same(`
      const out = [];
      const blob = new Blob(["héllo", new Uint8Array([32, 33]), new Blob(["-nested"])], { type: "TEXT/plain" });
      out.push([blob.size, blob.type, await blob.text(), [...new Uint8Array(await blob.arrayBuffer())].length]);
      for (const [a, b] of [[0, 3], [-3, undefined], [2, -2], [10, 2], [-100, 100]]) { const s = blob.slice(a, b, "X/Y"); out.push([s.size, s.type, await s.text()]); }
      out.push([new Blob([]).size, new Blob(["a"], { type: "é" }).type, Object.prototype.toString.call(blob)]);
      try { new Blob("not a sequence"); out.push("made"); } catch (e) { out.push(e.name); }
      const file = new File(["abc"], "name.txt", { type: "text/plain", lastModified: 42 });
      out.push([file.name, file.size, file.type, file.lastModified, file instanceof Blob, Object.prototype.toString.call(file)]);
      try { new File(["x"]); out.push("made"); } catch (e) { out.push(e.name); }
      const form = new FormData();
      form.append("a", "1"); form.append("a", "2"); form.set("b", "3"); form.append("c", new Blob(["x"]));
      form.append("d", file, "renamed.txt"); form.delete("zz");
      const entries = []; for (const [k, v] of form) entries.push([k, typeof v === "string" ? v : [v.name, v.size]]);
      out.push([entries, form.get("a"), form.getAll("a"), form.has("b"), form.get("missing"), form.get("c").name, [...form.keys()]]);
      form.set("a", "only"); out.push(form.getAll("a"));
      return out;`);
  });
});
