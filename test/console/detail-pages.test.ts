// The console's detail pages in headless Chromium, against the real daemon: an event that fans
// out to a plugin run, a route's action and a webhook is opened from the events list; its page
// shows all three with their details (the webhook's answer, the emitted child), and the plugin
// run's page shows both attempts as a timeline with the first one's TypeScript line. Screenshots
// go to test/artifacts/ (console-event.png, console-run.png).
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import type { BrowserContext, Page } from "playwright-core";
import { CHROMIUM, hasChromium, openConsoleBrowser } from "../helpers/browser.ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO, TestDaemon, TestProject } from "../helpers/daemon.ts";
import { waitUntil } from "../helpers/wait.ts";

const ARTIFACTS = path.join(REPO, "test/artifacts");
const TOKEN = "console-detail-token";
if (!hasChromium) console.warn(`test/console/detail-pages.test.ts skipped: no Chromium at ${CHROMIUM}`);

let downHits = 0;
const receiver = createServer((request, response) => {
  request.resume();
  if (request.url === "/down") {
    downHits++;
    response.statusCode = 500;
    response.end("audit store offline");
    return;
  }
  response.setHeader("content-type", "application/json");
  response.end(request.url === "/hook" ? '{"crm":"thanks"}' : '{"stock":3}');
});
await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
const origin = `http://127.0.0.1:${(receiver.address() as { port: number }).port}`;

const CONFIG = `
import { defineConfig, z } from "hookd/config";
export default defineConfig({
  events: {
    "shop.order": z.object({ orderId: z.string(), qty: z.number().int() }),
    "shop.reserved": z.object({ orderId: z.string() }),
    "shop.refund": z.object({ orderId: z.string() }),
    "shop.audit": z.object({ orderId: z.string() }),
  },
  routes: [{ on: "shop.order", run: "notify-buyer", input: { order: "orderId" } }],
  webhooks: [{ on: "shop.order", url: "${origin}/hook" }, { on: "shop.audit", url: "${origin}/down" }],
  webhookDelivery: { retryScheduleMs: [50] },
  delivery: { backoffMs: 50, maxBackoffMs: 100, maxAttempts: 3 },
  sandbox: { fetchAllowHosts: ["127.0.0.1"] },
});
`;
const PLUGIN = `import { action, NonRetriableError, on, plugin, z } from "hookd";

plugin({ fetch: ["${origin}/*"] });

on("shop.order", async (order, ctx) => {
  ctx.log.info({ orderId: order.orderId }, "reserving stock");
  const stock = await ctx.fetch("${origin}/stock?sku=" + order.orderId);
  await ctx.kv.set("order:" + order.orderId, { qty: order.qty, stock: stock.status });
  await ctx.emit("shop.reserved", { orderId: order.orderId });
  if (ctx.event.attempt === 1) throw new Error("warehouse API flaked");
});

action("notify-buyer", { input: z.object({ order: z.string() }) }, async (input, ctx) => {
  ctx.log.info({ order: input.order }, "buyer notified");
  // A buyer notified by hand opens the refund desk (the dead refunds can then be retried).
  if (input.order === "by-hand") await ctx.kv.set("refunds-open", true);
});

on("shop.refund", async (refund, ctx) => {
  if (!(await ctx.kv.get("refunds-open"))) throw new NonRetriableError("refund " + refund.orderId + ": the desk is closed");
  ctx.log.info({ orderId: refund.orderId }, "refunded");
});
`;

afterAll(() => new Promise<void>((resolve) => receiver.close(() => resolve())));

describe.skipIf(!hasChromium)("the console's event and run pages", () => {
  const project = new TestProject({ config: CONFIG, files: { "shop.ts": PLUGIN } });
  const daemon = new TestDaemon(project);
  const userDataDir = mkdtempSync(path.join(tmpdir(), "hookd-chromium-"));
  const auth = { authorization: `Bearer ${TOKEN}` };
  let context: BrowserContext;
  let page: Page;

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    await daemon.start({ env: { HOOKD_TOKEN: TOKEN } });
    ({ context, page } = await openConsoleBrowser(userDataDir));
  }, 90_000);
  afterAll(async () => {
    await context?.close();
    await daemon.stop();
    project.remove();
    rmSync(userDataDir, { recursive: true, force: true });
  });

  it("follows one event end to end: its runs, route action, webhook answer and child, then a run's timeline", async () => {
    await page.goto(`${daemon.url}/?token=${TOKEN}`);
    await page.locator("body[data-loaded]").waitFor({ state: "attached" });
    const posted = await daemon.post("shop.order", { orderId: "A-17", qty: 2 }, auth);
    expect(posted.status).toBe(202);
    await waitUntil(
      async () => {
        const { runs } = (await daemon.getJson(`/api/runs?eventId=${posted.body.id}`, auth)) as { runs: Array<{ status: string }> };
        return runs.length === 3 && runs.every((run) => run.status === "done");
      },
      { what: "the order's plugin run, route action and webhook done" },
    );

    await page.evaluate(`location.hash = "events"`);
    await page.locator(`tr[data-event-id="${posted.body.id}"] a.open-event`).click();
    const detail = page.locator("#event-detail");
    await detail.locator("#event-runs tr[data-kind]").nth(1).waitFor();
    await expect(detail.locator("h2").textContent()).resolves.toContain("shop.order");
    await expect(detail.locator(".payload-full pre").textContent()).resolves.toContain('"orderId": "A-17"');
    await expect(detail.locator(".source-of-event").textContent()).resolves.toBe("http");
    await expect(detail.locator('#event-runs tr[data-kind="handler"]').textContent()).resolves.toContain("shop");
    await expect(detail.locator('#event-runs tr[data-kind="route"]').textContent()).resolves.toContain("route notify-buyer");
    const webhook = detail.locator("#event-webhooks .webhook");
    await expect(webhook.textContent()).resolves.toContain(`${origin}/hook`);
    await expect(webhook.locator("pre.excerpt").textContent()).resolves.toBe('{"crm":"thanks"}');
    await expect(webhook.locator("tbody tr td").nth(2).textContent()).resolves.toBe("200");
    await expect(detail.locator("#event-children li").count()).resolves.toBe(2);
    await expect(detail.locator("#event-children").textContent()).resolves.toContain("shop.reserved");
    await page.screenshot({ path: path.join(ARTIFACTS, "console-event.png"), fullPage: true });

    await detail.locator('#event-runs tr[data-kind="handler"] a').click();
    const run = page.locator("#run-detail");
    await run.locator(".timeline .attempt").nth(1).waitFor();
    await expect(run.locator(".attempt.failed h3").textContent()).resolves.toContain("Attempt 1");
    await expect(run.locator(".attempt.failed .thrown").textContent()).resolves.toContain('throw new Error("warehouse API flaked")');
    await expect(run.locator(".attempt.done h3").textContent()).resolves.toContain("Attempt 2");
    for (const attempt of [run.locator(".attempt.failed"), run.locator(".attempt.done")]) {
      await expect(attempt.locator('tr[data-kind="log"]').textContent()).resolves.toContain("reserving stock");
      await expect(attempt.locator('tr[data-kind="fetch"]').textContent()).resolves.toContain(`GET ${origin}/stock?sku=… → 200`);
      await expect(attempt.locator('tr[data-kind="kv"]').textContent()).resolves.toContain("order:A-17");
      await expect(attempt.locator('tr[data-kind="emit"]').textContent()).resolves.toContain("shop.reserved");
    }
    await page.screenshot({ path: path.join(ARTIFACTS, "console-run.png"), fullPage: true });

    // The emit's link leads to the child, whose page names the run that emitted it.
    await run.locator('.attempt.done tr[data-kind="emit"] a').click();
    const source = page.locator("#event-detail .source-of-event");
    await page.locator("#event-detail .source-of-event a").first().waitFor();
    await expect(source.textContent()).resolves.toMatch(/^emit from event \S+ by run #\d+ \(shop\)$/);
  }, 120_000);

  const runsOf = async (eventId: string) => ((await daemon.getJson(`/api/runs?eventId=${eventId}`, auth)) as { runs: Array<{ id: number; status: string }> }).runs;

  it("starts an action from the form its input schema makes, then bulk-retries the dead letters it unblocks", async () => {
    const refunds = [await daemon.post("shop.refund", { orderId: "R-1" }, auth), await daemon.post("shop.refund", { orderId: "R-2" }, auth)];
    await waitUntil(async () => (await Promise.all(refunds.map((r) => runsOf(r.body.id)))).every((runs) => runs[0]?.status === "dead"), { what: "both refunds dead-lettered" });

    await page.evaluate(`location.hash = "actions/notify-buyer"`);
    const form = page.locator('form.start-action[data-action="notify-buyer"]');
    await form.waitFor();
    await expect(page.locator("#actions-detail pre.schema").textContent()).resolves.toContain('"order"');
    await form.locator('input[name="order"]').fill("by-hand");
    await page.screenshot({ path: path.join(ARTIFACTS, "console-action.png"), fullPage: true });
    await form.getByRole("button", { name: "Start action" }).click();
    // The form opens the run it started.
    await page.waitForURL(/#run\/\d+$/);
    const run = page.locator("#run-detail");
    await run.locator('.attempt.done tr[data-kind="log"]').waitFor();
    await expect(run.locator('.attempt.done tr[data-kind="log"]').textContent()).resolves.toContain("buyer notified");
    await expect(run.locator("h2").textContent()).resolves.toContain("done");

    await page.evaluate(`location.hash = "dead"`);
    await page.locator("#dead-event").fill("shop.refund");
    for (const refund of refunds) await page.locator(`#dead tr[data-run-id="${(await runsOf(refund.body.id))[0]!.id}"]`).waitFor();
    await page.screenshot({ path: path.join(ARTIFACTS, "console-dead-letters-bulk.png"), fullPage: true });
    await page.locator("#dead-retry-all").click();
    await page.locator("#dead-bulk-result", { hasText: "2 dead letters back in the queue" }).waitFor();
    await waitUntil(async () => (await Promise.all(refunds.map((r) => runsOf(r.body.id)))).every((runs) => runs[0]?.status === "done"), { what: "both refunds done after the bulk retry" });
  }, 120_000);

  it("draws each plugin's runs and failures of the last hour, and the overview of events and dead letters", async () => {
    const stats = (await daemon.getJson("/api/stats?minutes=60", auth)) as { plugins: Array<{ plugin: string; runs: number[]; failed: number[]; p50: number; p99: number }>; overview: { accepted: number[]; dead: number[] } };
    const shop = stats.plugins.find((p) => p.plugin === "shop")!;
    const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
    // shop: the order's 2 attempts, the two refunds' 2 each (dead, then done after the retry).
    expect(sum(shop.runs)).toBe(6);
    expect(sum(shop.failed)).toBe(3);
    expect(shop.runs).toHaveLength(60);
    expect(shop.p99).toBeGreaterThanOrEqual(shop.p50);
    expect(sum(stats.overview.accepted)).toBeGreaterThanOrEqual(5);
    // The refunds were dead once; the retry made them done, so no dead letter is left to count.
    expect(sum(stats.overview.dead)).toBe(0);

    await page.evaluate(`location.hash = "plugins"`);
    await page.evaluate("location.reload()");
    const chart = page.locator('[data-chart-plugin="shop"] svg.chart');
    await chart.waitFor();
    await expect(chart.getAttribute("data-totals")).resolves.toBe("6,3");
    await expect(page.locator('[data-chart-plugin="shop"] .chart-legend').textContent()).resolves.toMatch(/^last hour: 6 runs · 3 failed · p50 \d+ ms · p99 \d+ ms$/);
    await page.locator("#overview svg.chart").waitFor();
    await page.screenshot({ path: path.join(ARTIFACTS, "console-charts.png"), fullPage: true });
    const bad = await daemon.fetch("/api/stats?minutes=0", { headers: auth });
    expect(bad.status).toBe(400);
  }, 60_000);

  it("asks for the console header or a bearer token on a bulk retry", async () => {
    // The browser's cookie without the console's header: refused like any other change.
    const cookies = await context.cookies();
    const cookie = cookies.map((c) => `${c.name}=${c.value}`).join("; ");
    const refused = await daemon.fetch("/api/dead-letters/retry", { method: "POST", headers: { cookie, "content-type": "application/json" }, body: "{}" });
    expect(refused.status).toBe(401);
    const bad = await daemon.fetch("/api/dead-letters/retry", { method: "POST", headers: { ...auth, "content-type": "application/json" }, body: JSON.stringify({ since: "not a time" }) });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe("HOOKD_HTTP_BAD_REQUEST");
  });

  it("lists the webhook endpoints with their recent deliveries and answers, and retries a dead one", async () => {
    const audit = await daemon.post("shop.audit", { orderId: "A-17" }, auth);
    await waitUntil(async () => (await runsOf(audit.body.id))[0]?.status === "dead", { timeoutMs: 30_000, what: async () => `the audit webhook dead after its two attempts: ${JSON.stringify(await runsOf(audit.body.id))} (${downHits} requests)` });
    expect(downHits).toBe(2);
    await page.evaluate(`location.hash = "webhooks"`);
    const hook = page.locator(`.webhook-endpoint:has-text("${origin}/hook")`);
    await hook.locator("tbody tr").first().waitFor();
    await expect(hook.locator(".badge").first().textContent()).resolves.toBe("enabled");
    await expect(hook.locator("tbody tr td.answer").first().textContent()).resolves.toBe("200");
    await expect(hook.locator("tbody pre.excerpt").first().textContent()).resolves.toBe('{"crm":"thanks"}');
    const down = page.locator(`.webhook-endpoint:has-text("${origin}/down")`);
    const row = down.locator('tbody tr[data-status="dead"]');
    await row.waitFor();
    await expect(row.locator("td.answer").textContent()).resolves.toBe("500");
    await expect(row.locator("pre.excerpt").textContent()).resolves.toBe("audit store offline");
    await expect(down.locator("dl").textContent()).resolves.toContain("answered 500");
    await page.screenshot({ path: path.join(ARTIFACTS, "console-webhooks.png"), fullPage: true });
    // Its message used up its whole schedule: the endpoint is disabled, and says why.
    await expect(down.locator(".webhook-head .badge").textContent()).resolves.toBe("disabled");
    await expect(down.locator("dl").textContent()).resolves.toContain("every attempt of a message failed");
    // Retried, the delivery waits for its endpoint; re-enabled, it goes out again.
    await row.getByRole("button", { name: "Retry" }).click();
    await down.locator('tbody tr[data-status="pending"]').waitFor();
    expect(downHits).toBe(2);
    await down.getByRole("button", { name: "Re-enable" }).click();
    await page.locator(`.webhook-endpoint:has-text("${origin}/down") .webhook-head .badge`, { hasText: "enabled" }).waitFor();
    await waitUntil(() => downHits >= 3, { timeoutMs: 30_000, what: "the retried webhook sent again once its endpoint was re-enabled" });
  }, 60_000);

  it("replays an event with an edited payload, sends a webhook test, and discards the matching dead letters", async () => {
    const order = await daemon.post("shop.order", { orderId: "E-5", qty: 1 }, auth);
    await waitUntil(async () => (await runsOf(order.body.id)).length === 3 && (await runsOf(order.body.id)).every((run) => run.status === "done"), { what: "the order's runs done" });
    await page.evaluate(`location.hash = "event/${order.body.id}"`);
    const detail = page.locator("#event-detail");
    await detail.locator(".edit-replay summary").click();
    await expect(detail.locator("#replay-payload").inputValue()).resolves.toContain('"orderId": "E-5"');
    await detail.locator("#replay-payload").fill('{"orderId": "E-5", "qty": "three"}');
    await detail.getByRole("button", { name: "Replay as a new event" }).click();
    await detail.locator("#replay-result", { hasText: "HOOKD_EVENT_INVALID" }).waitFor();
    await expect(detail.locator("#replay-result").textContent()).resolves.toContain("qty:");
    await detail.locator("#replay-payload").fill('{"orderId": "E-5", "qty": 3}');
    await detail.getByRole("button", { name: "Replay as a new event" }).click();
    await page.locator("#event-detail .source-of-event", { hasText: `replay from event ${order.body.id.slice(0, 8)}` }).waitFor();
    await expect(page.locator("#event-detail .payload-full pre").textContent()).resolves.toContain('"qty": 3');

    await page.evaluate(`location.hash = "webhooks"`);
    const hook = page.locator(`.webhook-endpoint:has-text("${origin}/hook")`);
    await hook.getByRole("button", { name: "Send test" }).click();
    await hook.locator(".test-result", { hasText: "answered 200" }).waitFor();
    await expect(hook.locator(".test-result").textContent()).resolves.toContain('{"crm":"thanks"}');

    // The audit webhook retried by hand used up its new budget: a dead letter again, then discarded.
    const dead = async () => ((await daemon.getJson("/api/runs?status=dead&event=shop.audit", auth)) as { runs: Array<{ id: number }> }).runs;
    await waitUntil(async () => (await dead()).length === 1, { timeoutMs: 30_000, what: async () => `one dead audit webhook: ${JSON.stringify(await dead())}` });
    const [letter] = await dead();
    await page.evaluate(`location.hash = "dead"`);
    await page.locator("#dead-event").fill("shop.audit");
    await page.locator(`#dead tr[data-run-id="${letter!.id}"]`).waitFor();
    page.once("dialog", (dialog) => void dialog.accept());
    await page.locator("#dead-discard-all").click();
    await page.locator("#dead-bulk-result", { hasText: "1 dead letter discarded" }).waitFor();
    const discarded = ((await daemon.getJson("/api/runs?status=discarded", auth)) as { runs: Array<{ id: number }> }).runs;
    expect(discarded.map((run) => run.id)).toEqual([letter!.id]);
  }, 90_000);
});
