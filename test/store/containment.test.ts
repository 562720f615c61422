// The store's half of containment (issue 14, items 5 and 7), on both stores: an emitted event is
// counted against its root's budget atomically, however many emits race for the last places; a
// claim picks round-robin across plugins and honours each share's bound, whatever one plugin has
// queued. The clock is passed by hand.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { isHookdError } from "../../sandbox/contract/errors.ts";
import type { DeliveryTarget, NewEvent, Store } from "../../core/store/types.ts";
import { matrixFactories, type StoreFixture } from "./stores.ts";

const T0 = Date.parse("2026-11-21T10:00:00Z");
const LEASE = 30_000;

const factories = await matrixFactories("half");

describe.each(factories)("$name store", (factory) => {
  let fixture: StoreFixture;
  let store: Store;
  let n = 0;

  beforeEach(async () => {
    n = 0;
    fixture = await factory.create();
    store = fixture.store;
  });
  afterEach(async () => {
    await fixture.dispose();
  });

  const handler = (plugin: string): DeliveryTarget => ({ kind: "handler", plugin, target: "deal.close", maxAttempts: 3 });
  function event(overrides: Partial<NewEvent> = {}): NewEvent {
    n++;
    return { id: `ev-${n}`, name: "deal.close", payload: { did: n }, receivedAt: T0 + n, source: "http", depth: 0, ...overrides };
  }
  const emitted = (parent: string, depth: number, maxDescendants: number) => event({ source: "emit", parentId: parent, depth, maxDescendants });
  const refusal = (error: unknown) => (isHookdError(error, "HOOKD_EVENT_EMIT_BUDGET") ? "HOOKD_EVENT_EMIT_BUDGET" : error);

  describe("emit budget per root event", () => {
    it("counts every generation against the root, records the root, and refuses past the budget", async () => {
      const root = event();
      await store.acceptEvent(root, [handler("a")]);
      const child = emitted(root.id, 1, 3);
      await store.acceptEvent(child, [handler("a")]);
      const grandchild = emitted(child.id, 2, 3);
      await store.acceptEvent(grandchild, [handler("a")]);
      await store.acceptEvent(emitted(grandchild.id, 3, 3), [handler("a")]);
      // The fourth descendant, from any generation, is refused and leaves nothing behind.
      const refused = emitted(child.id, 2, 3);
      expect(await store.acceptEvent(refused, [handler("a")]).catch(refusal)).toBe("HOOKD_EVENT_EMIT_BUDGET");
      expect(await store.getEvent(refused.id)).toBeNull();
      expect(await store.countByStatus()).toMatchObject({ pending: 4 });
      expect((await store.getEvent(grandchild.id))?.rootId).toBe(root.id);
      expect((await store.getEvent(root.id))?.rootId).toBeNull();
      // Another root has a budget of its own.
      const other = event();
      await store.acceptEvent(other, [handler("a")]);
      await store.acceptEvent(emitted(other.id, 1, 3), [handler("a")]);
    });

    it("lets exactly the budget through when many emits of one root race, from two instances", async () => {
      const second = await fixture.open();
      const root = event();
      await store.acceptEvent(root, [handler("a")]);
      const outcomes = await Promise.all(
        Array.from({ length: 60 }, (_, i) =>
          (i % 2 === 0 ? store : second).acceptEvent(emitted(root.id, 1, 25), [handler("a"), handler("b")]).then(
            () => "stored",
            refusal,
          ),
        ),
      );
      expect(outcomes.filter((o) => o === "stored")).toHaveLength(25);
      expect(outcomes.filter((o) => o === "HOOKD_EVENT_EMIT_BUDGET")).toHaveLength(35);
      // The root's own deliveries plus two per stored descendant: no half-stored refusal.
      expect(await store.countByStatus()).toMatchObject({ pending: 1 + 25 * 2 });
    });
  });

  describe("fair claims", () => {
    it("claims round-robin across plugins, not in global arrival order", async () => {
      for (let i = 0; i < 10; i++) await store.acceptEvent(event(), [handler("flood")]);
      for (let i = 0; i < 2; i++) await store.acceptEvent(event(), [handler("quiet")]);
      const claimed = await store.claimDeliveries({ limit: 5, leaseMs: LEASE, now: T0 + 100, plugins: ["flood", "quiet"] });
      // Every plugin's oldest first, then every plugin's second, then what is left.
      expect(claimed.map((d) => d.plugin)).toEqual(["flood", "quiet", "flood", "quiet", "flood"]);
    });

    it("takes at most each share's bound, one owner's keys together", async () => {
      for (let i = 0; i < 6; i++) await store.acceptEvent(event(), [handler("a"), handler("action:a-job"), handler("b")]);
      const claimed = await store.claimDeliveries({
        limit: 20,
        leaseMs: LEASE,
        now: T0 + 100,
        plugins: ["a", "action:a-job", "b"],
        shares: [
          { plugins: ["a", "action:a-job"], limit: 3 },
          { plugins: ["b"], limit: 1 },
        ],
      });
      const count = (plugins: string[]) => claimed.filter((d) => plugins.includes(d.plugin)).length;
      expect(count(["a", "action:a-job"])).toBe(3);
      expect(count(["b"])).toBe(1);
      // Rank one of each share comes first.
      expect(claimed.slice(0, 2).map((d) => d.plugin).sort()).toEqual(["a", "b"]);
    });

    it("finds a live plugin's delivery behind a large backlog of a plugin no longer loaded", async () => {
      // The backlog is older and due earlier: a global FIFO scan would walk it first.
      for (let i = 0; i < 300; i++) await store.acceptEvent(event(), [handler("deleted")]);
      const live = event();
      await store.acceptEvent(live, [handler("live")]);
      const claimed = await store.claimDeliveries({ limit: 10, leaseMs: LEASE, now: T0 + 1000, plugins: ["live"] });
      expect(claimed.map((d) => d.event.id)).toEqual([live.id]);
      expect(await store.nextDueAt(["live"])).toBeNull();
      expect(await store.nextDueAt(["deleted", "live"])).toBe(T0 + 1);
    });
  });
});
