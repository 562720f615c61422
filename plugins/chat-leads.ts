/**
 * Seed 001: a lead is created when a chat session opens; an operator can also start the same
 * process by hand from a session (`hookd run create-lead '{"sessionId":"..."}'`).
 */
import { action, on, z, type Ctx } from "hookd";

interface Lead {
  sessionId: string;
  channel: string | null;
  contactId: string | null;
  createdBy: "session" | "operator";
  createdAt: string;
  closedAt: string | null;
}

async function createLead(ctx: Ctx, lead: Omit<Lead, "closedAt">): Promise<void> {
  const key = `lead:${lead.sessionId}`;
  // Idempotent: a redelivered event or a second manual start finds the lead already there.
  if (await ctx.kv.get(key)) {
    ctx.log.debug({ sessionId: lead.sessionId }, "lead already exists");
    return;
  }
  await ctx.kv.set(key, { ...lead, closedAt: null } satisfies Lead);
  ctx.log.info({ sessionId: lead.sessionId, channel: lead.channel, by: lead.createdBy }, "lead created");
}

on("session.created", async (session, ctx) => {
  await createLead(ctx, {
    sessionId: session.sessionId,
    channel: session.channel,
    contactId: session.contactId ?? null,
    createdBy: "session",
    createdAt: session.createdAt,
  });
});

on("session.closed", async (session, ctx) => {
  const key = `lead:${session.sessionId}`;
  const lead = await ctx.kv.get<Lead>(key);
  if (lead) await ctx.kv.set(key, { ...lead, closedAt: session.closedAt });
});

action("create-lead", { input: z.object({ sessionId: z.string().min(1), channel: z.string().optional() }) }, async (input, ctx) => {
  await createLead(ctx, {
    sessionId: input.sessionId,
    channel: input.channel ?? null,
    contactId: null,
    createdBy: "operator",
    createdAt: new Date().toISOString(),
  });
});
