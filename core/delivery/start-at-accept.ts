/**
 * Starting a delivery in the transaction that accepts its event.
 *
 * The claim is a write of its own: a transaction on the store's writer, the event read back and
 * its payload parsed again, one more hop before the run. When the dispatcher has a free slot for
 * the plugin and nothing of the plugin waits, the accepting transaction can store the delivery
 * `running` under a lease instead, and the run starts as the 202 goes out.
 *
 * What stays as a claim leaves it: the lease (renewed while the run lives, fenced by its token,
 * expiring after a crash), the attempt counted before the run, the concurrency and each owner's
 * fair share (a slot is reserved before the accept, as a claim would take it), per-key order and
 * flow control (deliveries with an order key or flow rules are never started this way), queue
 * order (no lease while the store may hold deliveries the dispatcher has not claimed, and SQLite
 * stores the delivery pending when the plugin has ready deliveries waiting: those were accepted
 * first), crash suspects (none start this way while one is due or running),
 * and the drain (a dispatcher that stopped while the accept committed gives the lease back).
 */
import type { AcceptOutcome, ClaimedDelivery, DeliveryTarget } from "../store/types.ts";

/** The dispatcher's side: free slots for an event about to be stored. */
export interface StartAtAccept {
  /** Slots for the deliveries that can start at accept; undefined when none can. */
  reserve(targets: readonly DeliveryTarget[]): AcceptReservation | undefined;
}

export interface AcceptReservation {
  /** The targets to store: those given a slot carry their lease. */
  readonly targets: readonly DeliveryTarget[];
  /**
   * After the accept (undefined: it failed): runs what the store started, frees the other slots.
   * Called exactly once.
   */
  settle(outcome: AcceptOutcome | undefined, event: ClaimedDelivery["event"]): void;
}
