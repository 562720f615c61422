// The kv key limit holds under concurrency: a real plugin fires 500 ctx.kv.set of new keys at
// once with kvMaxKeys 50; exactly 50 are stored, the rest refused with HOOKD_KV_LIMIT. Against
// SQLite and PostgreSQL (the count and the write are one atomic step in each store).
import { afterAll, describe, expect, it } from "vitest";
import { TestDaemon, TestProject } from "../helpers/daemon.ts";
import { dropSchema, postgresUnavailable, schemaUrl, testSchemaName } from "../store/stores.ts";

const FLOOD = `
import { on, plugin } from "hookd";
plugin({ kvMaxKeys: 50, timeoutMs: 20000 });
on("test.ping", async (ping, ctx) => {
  // Not awaited one by one: all 500 are in flight together.
  const sets = [];
  for (let i = 0; i < 500; i++) sets.push(ctx.kv.set("k" + ping.n + "-" + i, i));
  const results = await Promise.allSettled(sets);
  const codes = [...new Set(results.filter((r) => r.status === "rejected").map((r) => r.reason && r.reason.code))];
  const keys = await ctx.kv.list("", 1000);
  // Overwriting a key already held is fine at the limit.
  await ctx.kv.set(keys[0], "again");
  ctx.log.info({ stored: results.filter((r) => r.status === "fulfilled").length, codes, keys: keys.length }, "flood done");
});
`;

const pgDown = await postgresUnavailable();

describe.each([
  { name: "sqlite", skip: false },
  { name: "postgres", skip: pgDown !== null },
])("500 concurrent kv sets against kvMaxKeys 50 ($name)", ({ name, skip }) => {
  const schema = testSchemaName();
  const project = new TestProject({ files: { "flood.js": FLOOD } });
  const daemon = new TestDaemon(project);

  afterAll(async () => {
    await daemon.stop();
    project.remove();
    if (name === "postgres" && !skip) await dropSchema(schema);
  });

  it.skipIf(skip)("stores exactly 50 keys and refuses the rest with HOOKD_KV_LIMIT", async () => {
    await daemon.start({ env: name === "postgres" ? { HOOKD_STORE_URL: schemaUrl(schema) } : {} });
    expect((await daemon.post("test.ping", { n: 1 })).status).toBe(202);
    const line = await daemon.waitForLog((l) => l.msg === "flood done", 30_000);
    expect({ stored: line.stored, codes: line.codes, keys: line.keys }).toEqual({ stored: 50, codes: ["HOOKD_KV_LIMIT"], keys: 50 });
  });
});
