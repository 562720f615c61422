/**
 * An example plugin: remember every closed deal, and tell the sales chat about big ones.
 * Edit it while `npm run dev` runs: hookd reloads it on save and keeps the old version serving
 * if the new one does not compile. Its tests are in deal-alert.test.ts (`npm test`).
 */
import { on, plugin } from "hookd";

// Capabilities: ctx.fetch reaches only these URLs, ctx.secrets holds only these names
// (set CHAT_URL in the daemon's environment or in the config's `secrets`).
export default plugin({ fetch: ["https://chat.example.com/*"], secrets: ["CHAT_URL"] });

const BIG_DEAL = 10_000;

// `deal` is typed from the catalog: did and autor are numbers, summa is a decimal string.
on("deal.close", async (deal, ctx) => {
  const amount = Number(deal.summa);
  await ctx.kv.set(`deal:${deal.did}`, { amount, status: deal.status, author: deal.autor });
  if (amount < BIG_DEAL) return;

  ctx.log.info({ did: deal.did, amount }, "big deal closed");
  const chat = ctx.secrets.CHAT_URL;
  if (!chat) return;
  const response = await ctx.fetch(chat, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ text: `Deal ${deal.did} closed for ${deal.summa}` }),
  });
  // Throwing fails the run: hookd retries it with backoff, then dead-letters it.
  if (!response.ok) throw new Error(`the chat answered HTTP ${response.status}`);
});

// Your own events from events.config.ts are typed too.
on("shop.order.paid", (order, ctx) => {
  ctx.log.info({ orderId: order.orderId, total: order.total, currency: order.currency }, "order paid");
});
