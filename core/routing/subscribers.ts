/**
 * The subscriber index: which loaded plugin handles an event, which one owns an action, and the
 * claim keys the dispatcher asks the store for. The plugin manager rebuilds it in one step each
 * time the set of serving versions changes (a load, a swap, a removal, a lost version), so intake,
 * the dispatcher and replay all read one consistent picture.
 *
 * Claim keys: a handler's delivery is claimed by its plugin's name; a route's or a manual start's
 * by `action:<name>` (the action runs wherever it is declared when it runs, so it follows a move
 * from one plugin to another); a webhook's by `webhook:<endpoint id>`.
 */
import type { FlowRules } from "./flow-rules.ts";

/** Deliveries of routes and manual starts are claimed by action name, not by plugin. */
export const ACTION_KEY_PREFIX = "action:";

/** Claim keys of webhook deliveries: `webhook:<endpoint id>`. */
export const WEBHOOK_KEY_PREFIX = "webhook:";

/** The claim key of an action's deliveries. */
export function actionKey(action: string): string {
  return `${ACTION_KEY_PREFIX}${action}`;
}

/** What the index needs of one serving plugin version. */
export interface ServingVersion {
  plugin: string;
  events: readonly string[];
  actions: readonly string[];
}

/** What routing asks of the plugins that serve (the plugin manager answers it). */
export interface SubscriberLookup {
  /** Plugins whose current version subscribes to an event. */
  subscribers(event: string): readonly string[];
  /** The plugin whose current version declares an action. */
  actionOwner(action: string): string | undefined;
  /** What the current version declared with `plugin({...})`: its `retry` overrides, among others. */
  declaredOptions(plugin: string): { retry?: unknown } | undefined;
  /** The flow control the current version declared for its handler of an event (`on(event, options, fn)`). */
  flowRules?(plugin: string, event: string): FlowRules | undefined;
}

/** Two serving plugins declare one action; the first one (in load order) keeps it. */
export type SharedActionListener = (action: string, plugins: readonly [owner: string, other: string]) => void;

export class SubscriberIndex {
  static readonly EMPTY = new SubscriberIndex(new Map(), new Map(), []);

  private constructor(
    private readonly subscriptions: ReadonlyMap<string, readonly string[]>,
    private readonly owners: ReadonlyMap<string, string>,
    private readonly keys: readonly string[],
  ) {}

  /**
   * The index of these versions, in their order: an event's subscribers in that order, an action
   * owned by the first version that declares it, and the claim keys (each plugin's name, then
   * `action:<name>` of every owned action).
   */
  static build(versions: Iterable<ServingVersion>, onSharedAction?: SharedActionListener): SubscriberIndex {
    const subscriptions = new Map<string, string[]>();
    const owners = new Map<string, string>();
    const plugins: string[] = [];
    for (const version of versions) {
      plugins.push(version.plugin);
      for (const event of version.events) {
        const list = subscriptions.get(event) ?? [];
        list.push(version.plugin);
        subscriptions.set(event, list);
      }
      for (const action of version.actions) {
        const owner = owners.get(action);
        if (owner && owner !== version.plugin) {
          onSharedAction?.(action, [owner, version.plugin]);
          continue;
        }
        owners.set(action, version.plugin);
      }
    }
    return new SubscriberIndex(subscriptions, owners, [...plugins, ...[...owners.keys()].map(actionKey)]);
  }

  /** Plugins whose version subscribes to an event. */
  subscribers(event: string): readonly string[] {
    return this.subscriptions.get(event) ?? [];
  }

  /** The plugin whose version declares an action. */
  actionOwner(action: string): string | undefined {
    return this.owners.get(action);
  }

  /** What the dispatcher claims: serving plugins' names and `action:<name>` of their actions. */
  claimKeys(): readonly string[] {
    return this.keys;
  }
}
