/**
 * Event ids: UUIDs of version 7 (RFC 9562), whose first 48 bits are the creation time in
 * milliseconds. They are as unique as version 4's, and they sort by time: each new id lands at
 * the end of the stores' unique index on `events.id` instead of on a random page of it, so an
 * accept dirties the index page the accepts before it dirtied (one page written per commit, not
 * one per event: that was the largest share of the SQLite writer's page writes).
 */
import { v7 } from "uuid";

export function newEventId(): string {
  return v7();
}
