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

  server: { host: "127.0.0.1", port: 8711, token: process.env.HOOKD_TOKEN },
  plugins: { dir: "./plugins" },
  sandbox: { memoryMb: 64, timeoutMs: 5000 },
  store: { url: "sqlite:./data/hookd.db" },
});
