/**
 * The event catalog (what senders may send, what handlers receive) and the daemon's settings.
 * Every setting has a default; the environment overrides them: HOOKD_PORT, HOOKD_HOST,
 * HOOKD_TOKEN, HOOKD_DATA_DIR, HOOKD_PLUGINS_DIR, HOOKD_STORE_URL, HOOKD_LOG_LEVEL.
 */
import { defineConfig, z } from "hookd/config";
import { catalog } from "hookd/catalog";

export default defineConfig({
  events: {
    // The shipped catalog: the CRM's events.php events (deal.close, client.add, ...), operator
    // and chat session events, and the telephony server's service events (oktell.*).
    ...catalog,

    // Your own events go beside them, typed the same way. Handlers get the schema's output,
    // senders validate against its JSON Schema (GET /api/catalog). `hookd dev` and
    // `hookd check` keep the editor types (hookd-env.d.ts) current.
    "shop.order.paid": z.object({
      orderId: z.string().min(1),
      total: z.number().nonnegative(),
      currency: z.string().length(3),
    }),
  },

  // Handlers without code: start a plugin's action when an event arrives, mapping its fields.
  // routes: [{ on: "user.operator_status.changed", run: "notify-supervisor", input: { operator: "userId", status: "status" } }],

  // The API, the console (GET /) and `hookd emit` use this address. Set HOOKD_TOKEN in the
  // environment to require `Authorization: Bearer <token>`.
  server: { host: "127.0.0.1", port: 8711 },
  plugins: { dir: "./plugins" },
  sandbox: { memoryMb: 64, timeoutMs: 5000 },
  delivery: { maxAttempts: 5 },
});
