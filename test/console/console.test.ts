// The live console in headless Chromium, against the real daemon: a posted event appears as it
// arrives, a broken plugin shows its error with file and line, a dead letter is retried from its
// button, and a test event goes out from the catalog's form. Each page is kept as a screenshot in
// test/artifacts/ (gitignored).
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { BrowserContext, Page } from "playwright-core";
import { CHROMIUM, hasChromium, openConsoleBrowser } from "../helpers/browser.ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO, TestDaemon, TestProject } from "../helpers/daemon.ts";
import { waitUntil } from "../helpers/wait.ts";

const ARTIFACTS = path.join(REPO, "test/artifacts");
const TOKEN = "console-browser-token";
if (!hasChromium) console.warn(`test/console/console.test.ts skipped: no Chromium at ${CHROMIUM} (apt-get install chromium, or set HOOKD_CHROMIUM)`);


const CONFIG = `
import { defineConfig, z } from "hookd/config";
import { catalog } from "hookd/catalog";
export default defineConfig({
  events: {
    ...catalog,
    "console.greeting": z.object({ name: z.string().min(1), times: z.number().int().positive().optional() }),
    "console.order": z.object({ orderId: z.string().min(1) }),
    "console.unblock": z.object({}),
    "console.sms": z.object({ to: z.string() }),
    "console.reminder": z.object({ name: z.string() }),
  },
  delivery: { backoffMs: 50, maxBackoffMs: 200, maxAttempts: 2 },
});
`;

const GREETER = `import { on } from "hookd";

on("console.greeting", (greeting, ctx) => {
  ctx.log.info({ name: greeting.name }, "greeted");
});
`;

// Fails a reload at load time, two lines below the import: the console must say where.
const BROKEN_GREETER = `import { on } from "hookd";

const template: string = JSON.parse("{ not json");
on("console.greeting", (greeting, ctx) => ctx.log.info(template + greeting.name));
`;

// Dead-letters an order at once until the warehouse is opened by a console.unblock event.
const ORDERS = `import { on, NonRetriableError } from "hookd";

on("console.unblock", async (_event, ctx) => {
  await ctx.kv.set("open", true);
});

on("console.order", async (order, ctx) => {
  if (!(await ctx.kv.get("open"))) throw new NonRetriableError("order " + order.orderId + ": the warehouse is closed");
  ctx.log.info({ orderId: order.orderId }, "order shipped");
});
`;

// Flow control: one SMS an hour (the rest skipped), one reminder start an hour (the rest wait).
const LIMITED = `import { on } from "hookd";
on("console.sms", { rateLimit: { limit: 1, period: "1h" } }, (sms, ctx) => ctx.log.info({ to: sms.to }, "sms sent"));
on("console.reminder", { throttle: { limit: 1, period: "1h" } }, (reminder, ctx) => ctx.log.info({ name: reminder.name }, "reminded"));
`;

// A schedule that does not tick while the test runs: the Time view lists it with its next tick.
const NEW_YEAR = `import { schedule } from "hookd";
schedule("0 0 1 1 *", { tz: "Europe/Moscow" }, async (_tick, ctx) => ctx.log.info("happy new year"));
`;

describe.skipIf(!hasChromium)("the console in a browser", () => {
  const project = new TestProject({ config: CONFIG, files: { "greeter.ts": GREETER, "orders.ts": ORDERS, "new-year.ts": NEW_YEAR, "limited.ts": LIMITED } });
  const daemon = new TestDaemon(project);
  const userDataDir = mkdtempSync(path.join(tmpdir(), "hookd-chromium-"));
  let context: BrowserContext;
  let page: Page;
  const auth = { authorization: `Bearer ${TOKEN}` };

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    await daemon.start({ env: { HOOKD_TOKEN: TOKEN } });
    ({ context, page } = await openConsoleBrowser(userDataDir));
  });

  afterAll(async () => {
    await context?.close();
    await daemon.stop();
    project.remove();
    rmSync(userDataDir, { recursive: true, force: true });
  });

  async function show(view: string): Promise<void> {
    await page.evaluate(`location.hash = ${JSON.stringify(view)}`);
    await page.locator(`[data-view="${view.split(/[/?]/)[0]}"]`).waitFor({ state: "visible" });
  }

  async function screenshot(name: string): Promise<void> {
    await page.screenshot({ path: path.join(ARTIFACTS, `console-${name}.png`), fullPage: true });
  }

  async function runsOf(eventId: string): Promise<Array<{ id: number; status: string; plugin: string }>> {
    const body = (await daemon.getJson(`/api/runs?eventId=${eventId}`, auth)) as { runs: Array<{ id: number; status: string; plugin: string }> };
    return body.runs;
  }

  async function waitForRun(eventId: string, status: string): Promise<{ id: number; status: string }> {
    return waitUntil(async () => {
      const run = (await runsOf(eventId))[0];
      return run?.status === status && run;
    }, {
      timeoutMs: 15_000,
      intervalMs: 50,
      what: async () => `run of ${eventId} to be ${status} (it is ${(await runsOf(eventId))[0]?.status})`,
    });
  }

  it("asks for the token once, then drops it from the address bar", async () => {
    const login = await page.goto(`${daemon.url}/`);
    expect(login?.status()).toBe(401);
    await screenshot("login");
    await page.locator('input[name="token"]').fill(TOKEN);
    await page.getByRole("button", { name: "Open the console" }).click();
    await page.waitForURL(`${daemon.url}/`);
    expect(page.url()).toBe(`${daemon.url}/`);
    await page.locator("body[data-loaded]").waitFor({ state: "attached" });
    await page.locator('#live[data-state="live"]').waitFor();
    await page.locator('[data-plugin="greeter"] .badge.loaded').waitFor();
    await page.locator('[data-plugin="orders"] .badge.loaded').waitFor();
  });

  it("shows a posted event as it arrives, without a reload", async () => {
    await show("events");
    const posted = await daemon.post("console.greeting", { name: "Ada Lovelace", times: 2 }, auth);
    expect(posted.status).toBe(202);
    const row = page.locator(`tr[data-event-id="${posted.body.id}"]`);
    await row.waitFor();
    await expect(row.textContent()).resolves.toContain("console.greeting");
    await expect(row.textContent()).resolves.toContain('"name":"Ada Lovelace"');
    // A second one lands on top, still without a reload.
    const second = await daemon.post("console.greeting", { name: "Grace Hopper" }, auth);
    await page.locator(`#events tr:first-child[data-event-id="${second.body.id}"]`).waitFor();
    await screenshot("events");
  });

  it("shows a broken plugin's error with its file and line, while the last good version serves", async () => {
    await show("plugins");
    project.write("greeter.ts", BROKEN_GREETER);
    const card = page.locator('[data-plugin="greeter"]');
    await card.locator(".last-error .location").waitFor();
    await expect(card.locator(".last-error .location").textContent()).resolves.toMatch(/^plugins\/greeter\.ts:3:\d+$/);
    await expect(card.locator(".last-error .code").textContent()).resolves.toBe("HOOKD_PLUGIN_LOAD");
    await expect(card.locator(".last-error pre").textContent()).resolves.toContain("JSON");
    await expect(card.locator(".badge").textContent()).resolves.toBe("loaded");
    await screenshot("plugins");
  });

  it("retries a dead letter from its button", async () => {
    await show("dead");
    const order = await daemon.post("console.order", { orderId: "A-17" }, auth);
    const dead = await waitForRun(order.body.id, "dead");
    const row = page.locator(`#dead tr[data-run-id="${dead.id}"]`);
    await row.waitFor();
    await expect(row.textContent()).resolves.toContain("the warehouse is closed");
    await screenshot("dead-letters");

    const unblock = await daemon.post("console.unblock", {}, auth);
    await waitForRun(unblock.body.id, "done");
    await row.getByRole("button", { name: "Retry" }).click();
    await row.waitFor({ state: "detached" });
    await waitForRun(order.body.id, "done");

    await show("runs");
    await page.locator(`#runs tr[data-run-id="${dead.id}"][data-status="done"]`).waitFor();
    await screenshot("runs");
  });

  it("lists schedules and delayed events, and cancels a delayed event from its button", async () => {
    const delayed = await daemon.post("console.greeting", { name: "later" }, { ...auth, "hookd-delay": "1h" });
    expect(delayed.status).toBe(202);
    await show("time");
    const schedule = page.locator('#schedules tr[data-schedule-id="plugin:new-year:schedule:0 0 1 1 *@Europe/Moscow"]');
    await schedule.waitFor();
    await expect(schedule.textContent()).resolves.toContain("Europe/Moscow");
    const row = page.locator(`#scheduled tr[data-event-id="${delayed.body.id}"]`);
    await row.waitFor();
    await screenshot("time");
    await row.getByRole("button", { name: "Cancel" }).click();
    await row.waitFor({ state: "detached" });
    expect((await runsOf(delayed.body.id)).map((run) => run.status)).toEqual(["cancelled"]);
  });

  it("shows a run skipped by a rate limit and one waiting for its throttle turn, in the list and on its page", async () => {
    const first = await daemon.post("console.sms", { to: "+100" }, auth);
    await waitForRun(first.body.id, "done");
    const second = await daemon.post("console.sms", { to: "+200" }, auth);
    const skipped = await waitForRun(second.body.id, "skipped");
    const reminded = await daemon.post("console.reminder", { name: "one" }, auth);
    await waitForRun(reminded.body.id, "done");
    const later = await daemon.post("console.reminder", { name: "two" }, auth);
    // Pending from the start: wait until the claim has given it its turn.
    const waiting = await waitUntil(
      async () => {
        const { run } = (await daemon.getJson(`/api/runs/${(await runsOf(later.body.id))[0]?.id ?? 0}`, auth).catch(() => ({ run: undefined }))) as { run?: { id: number; waiting?: string } };
        return run?.waiting === "throttled" && run;
      },
      { timeoutMs: 15_000, what: "the second reminder waiting for its throttle turn" },
    );
    await show("runs");
    const skippedRow = page.locator(`#runs tr[data-run-id="${skipped.id}"]`);
    await skippedRow.waitFor();
    await expect(skippedRow.locator(".badge").textContent()).resolves.toBe("skipped: rate limit");
    const waitingRow = page.locator(`#runs tr[data-run-id="${waiting.id}"]`);
    await waitingRow.waitFor();
    await expect(waitingRow.locator(".badge").textContent()).resolves.toMatch(/^waiting: throttled until \S+/);
    await screenshot("runs-flow");
    await show(`run/${waiting.id}`);
    await expect(page.locator("h2 .badge").first().textContent()).resolves.toMatch(/^waiting: throttled until/);
  });

  it("sends a test event from the catalog's form and shows the schema it is checked against", async () => {
    await show("catalog/console.greeting");
    const form = page.locator('form.send[data-event="console.greeting"]');
    await form.waitFor();
    await expect(page.locator("pre.schema").textContent()).resolves.toContain('"required"');

    await form.locator('input[name="name"]').fill("");
    await form.getByRole("button", { name: "Send event" }).click();
    await form.locator(".result.bad").waitFor();
    await expect(form.locator(".result").textContent()).resolves.toContain("HOOKD_EVENT_INVALID");

    await form.locator('input[name="name"]').fill("Katherine Johnson");
    await form.locator('input[name="times"]').fill("3");
    await form.getByRole("button", { name: "Send event" }).click();
    await form.locator(".result.ok").waitFor();
    const id = (await form.locator(".result .event-id").textContent())!;
    const stored = (await daemon.getJson(`/api/events?name=console.greeting`, auth)) as { events: Array<{ id: string; payload: unknown }> };
    expect(stored.events.find((e) => e.id === id)?.payload).toEqual({ name: "Katherine Johnson", times: 3 });
    await screenshot("catalog");
  });
});
