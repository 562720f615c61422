// Compiled by `tsc --noEmit` (npm test): the plugin API is typed from the catalog.
import { on, action, z, type EventPayload } from "hookd";

on("deal.close", (event) => {
  const summa: string = event.summa;
  const did: number = event.did;
  void summa;
  void did;
});

// @ts-expect-error a typo in the event name is a type error
on("deal.closed", () => undefined);

on("deal.close", (event) => {
  // Unlisted fields are kept (custom CRM fields) but typed unknown, never any:
  // @ts-expect-error an unlisted field must be narrowed before use
  const amount: number = event.amount;
  void amount;
  const custom: unknown = event.customField;
  void custom;
});

action("typed", { input: z.object({ n: z.number() }) }, (input) => {
  const n: number = input.n;
  void n;
});

on("user.operator_status.changed", (event, ctx) => {
  // Seed 000's event carries only the id and the status: reason is optional.
  const reason: "manual" | "logout" | "inactivity" | "license_expired" | undefined = event.reason;
  const status: string = event.status;
  void status;
  void reason;
  // @ts-expect-error emit checks the payload against the catalog
  void ctx.emit("task.add", { id: "not-a-number-shape", autor: { bad: true } });
  void ctx.emit("task.add", { id: 1, autor: "2" });
  // Delays: a duration or a time, not both.
  void ctx.emit("task.add", { id: 1, autor: 2 }, { delay: "2h" });
  void ctx.emit("task.add", { id: 1, autor: 2 }, { at: new Date() });
  void ctx.emit("task.add", { id: 1, autor: 2 }, { at: "2026-12-01T09:00:00+03:00" });
  // @ts-expect-error delay or at, not both
  void ctx.emit("task.add", { id: 1, autor: 2 }, { delay: "2h", at: new Date() });
  // @ts-expect-error a typo in the options
  void ctx.emit("task.add", { id: 1, autor: 2 }, { dealy: "2h" });
});

type Closed = EventPayload<"deal.close">;
const sample: Closed = { did: 1, autor: 2, summa: "10.00", status: "won" };
void sample;

// ctx.oktell: the telephony workstation's methods, with typed enums.
on("oktell.tminterfaceconfirm", async (_confirm, ctx) => {
  const source: { readonly channel: string; readonly user?: string } = ctx.event.source;
  const user = source.user ?? "A";
  await ctx.oktell.setUserState(user, { state: "usLunch", description: "Ушел на обед", redirect: false });
  // @ts-expect-error a state outside EUserState is a type error
  await ctx.oktell.setUserState(user, { state: "usNap" });
  const accepted: boolean = await ctx.oktell.confirmResult(user, "skip");
  // @ts-expect-error a confirm result other than ok/skip/delete is a type error
  await ctx.oktell.confirmResult(user, "maybe");
  const line = await ctx.oktell.getLineState(user);
  // @ts-expect-error line states are ELineState names, not user states
  const wrong: "usReady" = line.state;
  const { success, errormessage }: { success: boolean; errormessage?: string } = await ctx.oktell.setTaskActive(user, { tasktype: "call", idtask: "x", active: true });
  // @ts-expect-error tasktype is call or text
  await ctx.oktell.setTaskActive(user, { tasktype: "sms", idtask: "x", active: true });
  void accepted;
  void wrong;
  void success;
  void errormessage;
});

// Flow control: typed rules beside the handler, the payload typed as without them.
on("deal.edit", { concurrency: { key: "did", limit: 1 }, debounce: { key: "did", period: "10s" } }, (deal) => {
  const did: number = deal.did;
  void did;
});
on("client.add", { throttle: { limit: 5, period: 60_000 }, rateLimit: { key: "clid", limit: 100, period: "1h" } }, () => undefined);
// @ts-expect-error a throttle needs its period
on("client.add", { throttle: { limit: 5 } }, () => undefined);
// @ts-expect-error an unknown rule is a type error
on("client.add", { prority: 1 }, () => undefined);
