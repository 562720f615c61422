/**
 * Replay: runs the handlers of stored events again, e.g. after a plugin's bug was fixed.
 * `hookd replay --event deal.close --since 2026-11-01 [--plugin crm-sync]`.
 *
 * Each replayed event gets new deliveries (the event keeps its id, so `ctx.event.id` is the same
 * and an idempotent handler can tell a replay from a new event); they carry a replay id whose
 * runs can be counted while they go. Scheduling goes in batches, oldest first, one transaction
 * each, so a replay of a million events neither holds the writer nor loses its place: a batch
 * answers with the cursor the next batch starts from.
 */
import { randomUUID } from "node:crypto";
import { HookdError } from "../../sandbox/contract/errors.ts";
import type { PluginManager } from "../plugins/manager.ts";
import { deliveriesOfPlugin } from "../routing/index.ts";
import type { DeliveryStatus, DeliveryTarget, Store } from "../store/types.ts";

export interface ReplayRequest {
  event: string;
  /** Events received at or after this time (epoch ms)... */
  since: number;
  /** ...and before this one; fixed by the first batch so events arriving meanwhile stay out. */
  until?: number | undefined;
  /** Only this plugin's handlers (and the routes it runs); default: everything that handles the event. */
  plugin?: string | undefined;
  /** Continue a replay: its id and the cursor the last batch answered with. */
  replayId?: string | undefined;
  after?: number | undefined;
  /** Events to schedule in this call; default: all of them. */
  batch?: number | undefined;
}

export interface ReplayProgress {
  replayId: string;
  event: string;
  plugin: string | null;
  since: number;
  until: number;
  /** Events in the window. */
  total: number;
  /** Events scheduled by this call, and the deliveries created for them. */
  events: number;
  deliveries: number;
  /** Pass as `after` to schedule the next batch. */
  after: number;
  done: boolean;
}

/** What replay asks of intake (core/ingress/intake.ts answers it): today's catalog and deliveries. */
export interface ReplayIntake {
  knows(name: string): boolean;
  deliveriesFor(name: string, payload: unknown): DeliveryTarget[];
}

export interface ReplayerOptions {
  store: Store;
  intake: ReplayIntake;
  plugins: PluginManager;
  /** Called after each batch committed (the dispatcher wakes up). */
  onScheduled: () => void;
  now?: () => number;
}

const PAGE = 500;

export class Replayer {
  private readonly now: () => number;

  constructor(private readonly options: ReplayerOptions) {
    this.now = options.now ?? Date.now;
  }

  /** Schedules the next batch (or all) of a replay. */
  async schedule(request: ReplayRequest): Promise<ReplayProgress> {
    const { store, intake, plugins } = this.options;
    if (!intake.knows(request.event)) throw new HookdError("HOOKD_EVENT_UNKNOWN", [request.event]);
    if (request.plugin !== undefined && plugins.currentVersion(request.plugin) === undefined) {
      throw new HookdError("HOOKD_REPLAY_PLUGIN_UNKNOWN", [request.plugin]);
    }
    const until = request.until ?? this.now();
    const window = { name: request.event, since: request.since, until };
    const total = await store.countEvents(window);
    const replayId = request.replayId ?? randomUUID();
    const budget = request.batch ?? Number.POSITIVE_INFINITY;
    let after = request.after ?? 0;
    let events = 0;
    let deliveries = 0;
    let done = false;
    while (events < budget) {
      const page = await store.listEvents({ ...window, after, limit: Math.min(PAGE, budget - events) });
      if (page.length === 0) {
        done = true;
        break;
      }
      const items = page.map((event) => ({ eventId: event.id, targets: this.targetsFor(event.name, event.payload, request.plugin) }));
      if (deliveries === 0 && items.every((item) => item.targets.length === 0)) {
        throw new HookdError("HOOKD_REPLAY_NO_TARGETS", [request.event, request.plugin ? ` in plugin ${request.plugin}` : ""]);
      }
      deliveries += await store.addDeliveries(items, this.now(), replayId);
      events += page.length;
      after = page[page.length - 1]!.seq;
      this.options.onScheduled();
    }
    if (!done) done = (await store.listEvents({ ...window, after, limit: 1 })).length === 0;
    return { replayId, event: request.event, plugin: request.plugin ?? null, since: request.since, until, total, events, deliveries, after, done };
  }

  /** How the runs of a replay stand. */
  progress(replayId: string): Promise<Record<DeliveryStatus, number>> {
    return this.options.store.countByStatus({ replayId });
  }

  private targetsFor(name: string, payload: unknown, plugin: string | undefined): DeliveryTarget[] {
    const targets = this.options.intake.deliveriesFor(name, payload);
    if (plugin === undefined) return targets;
    return deliveriesOfPlugin(targets, plugin, this.options.plugins);
  }
}
