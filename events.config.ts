/**
 * hookd's configuration: the event catalog (what senders may send, and what handlers receive)
 * and the daemon's settings. Every setting has a default; environment variables override them
 * (HOOKD_PORT, HOOKD_HOST, HOOKD_TOKEN, HOOKD_DATA_DIR, HOOKD_PLUGINS_DIR, HOOKD_STORE_URL,
 * HOOKD_LOG_LEVEL).
 */
import { defineConfig, z } from "hookd/config";
import { catalog } from "hookd/catalog";

export default defineConfig({
  events: {
    // The shipped catalog: the CRM's events.php events, operator and chat session events, and
    // the telephony server's service events (oktell.*).
    ...catalog,
    // Your own events go beside them, typed the same way:
    "shop.order.paid": z.object({ orderId: z.string().min(1), total: z.number().nonnegative(), currency: z.string().length(3) }),
  },

  // Handlers without code: an operator's status change starts the notify-supervisor action of
  // plugins/notify-supervisor.ts with the event's fields mapped to its input. A field left out
  // (here: supervisor) stays empty and the action looks it up itself.
  routes: [
    {
      on: "user.operator_status.changed",
      run: "notify-supervisor",
      input: { operator: "userId", status: "status", reason: "reason", changedAt: "changedAt" },
    },
  ],

  // events.php's webhooks, without code: a closed deal goes to another system as a PHP-style
  // form POST, signed with the Standard Webhooks headers (secret: HOOKD_WEBHOOK_SECRET) and
  // retried for a day and a half. Off until DEAL_WEBHOOK_URL names the receiver
  // (e.g. https://crm.example/hook.php), so a fresh checkout sends nothing anywhere.
  webhooks: process.env.DEAL_WEBHOOK_URL
    ? [
        {
          on: "deal.close",
          url: process.env.DEAL_WEBHOOK_URL,
          method: "POST",
          format: "form",
          map: { deal: "did", amount: "summa", status: "status", author: "autor" },
        },
      ]
    : [],

  // The telephony server writes local times without a zone; name its zone to get offsets:
  // oktell: { timezone: "Europe/Moscow" },

  server: { host: "127.0.0.1", port: 8711, token: process.env.HOOKD_TOKEN },
  plugins: { dir: "./plugins" },
  // ctx.fetch reaches loopback, private and this machine's own addresses only for hosts named
  // here (plugins cannot widen it), e.g. fetchAllowHosts: ["127.0.0.1:9000"] for a local receiver.
  sandbox: { memoryMb: 64, timeoutMs: 5000 },
  // synchronous: "FULL" (default) fsyncs every accepted event before its 202; "NORMAL" survives a
  // crash of hookd but can lose the last events on power loss; "OFF" can also corrupt the file.
  // No store.url: the store is <data folder>/hookd.db, the data folder being ./data beside this
  // file, `hookd start --data DIR` or HOOKD_DATA_DIR (or set HOOKD_STORE_URL / an absolute url).
  store: { synchronous: "FULL" },

  // Retries, dead letters and order. A handler gets the events of one deal (one client, one
  // task...) one at a time, in the order they arrived; the shipped catalog declares those keys,
  // your own events declare theirs here. Finished events are pruned after a week (dead letters
  // after 30 days). A plugin can override the retries: plugin({ retry: { maxAttempts: 10 } }).
  delivery: {
    maxAttempts: 5,
    backoffMs: 1000,
    orderBy: { "shop.order.paid": "orderId" },
    retention: { doneMs: 7 * 24 * 3_600_000, deadMs: 30 * 24 * 3_600_000 },
  },
});
