/**
 * Seed 000: when an operator's status changes (by hand, on logout, after inactivity, or when
 * the licence expires), notify their supervisor. A route in events.config.ts maps the event's
 * fields to this action's input; `supervisor` is left out there, so the action finds it itself.
 */
import { action, plugin, z } from "hookd";

plugin({ secrets: ["SUPERVISOR_CHAT_URL"], fetch: ["https://chat.example.com/*"] });

const reasons = {
  manual: "changed it by hand",
  logout: "logged out",
  inactivity: "was inactive too long",
  license_expired: "lost their licence",
} as const;

action(
  "notify-supervisor",
  {
    input: z.object({
      operator: z.string().min(1),
      status: z.string().min(1),
      reason: z.enum(["manual", "logout", "inactivity", "license_expired"]).optional(),
      changedAt: z.string().optional(),
      supervisor: z.string().optional(),
    }),
  },
  async (input, ctx) => {
    // The supervisor lookup the seed's process does: a directory kept in this plugin's kv
    // (`supervisor:<operator>`), with a default.
    const supervisor = input.supervisor ?? (await ctx.kv.get<string>(`supervisor:${input.operator}`)) ?? "duty-supervisor";
    const why = input.reason ? reasons[input.reason] : "changed status";
    const text = `Operator ${input.operator} ${why}: now ${input.status}`;

    await ctx.kv.set(`last-status:${input.operator}`, { status: input.status, reason: input.reason ?? null, at: input.changedAt ?? null });
    ctx.log.info({ operator: input.operator, supervisor, status: input.status, reason: input.reason }, text);

    const chat = ctx.secrets.SUPERVISOR_CHAT_URL;
    if (chat) {
      const response = await ctx.fetch(chat, { method: "POST", body: JSON.stringify({ to: supervisor, text }) });
      if (!response.ok) throw new Error(`chat answered HTTP ${response.status}`);
    }
  },
);
