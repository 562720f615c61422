/**
 * Event ids: UUIDs of version 7 (RFC 9562), whose first 48 bits are the creation time in
 * milliseconds. They are as unique as version 4's, and they sort by time: each new id lands at
 * the end of the stores' unique index on `events.id` instead of on a random page of it, so an
 * accept dirties the index page the accepts before it dirtied (one page written per commit, not
 * one per event: that was the largest share of the SQLite writer's page writes).
 *
 * The random bits come from a pool filled 4 KB at a time: `uuid` asks Web Crypto for 16 bytes
 * per id, and that call was 6% of the daemon's main thread under load. Ids of one millisecond
 * keep their order as uuid's own state keeps it: a random 31-bit counter at each new
 * millisecond, one up for each id after it (uuid moves to the next millisecond when it wraps).
 */
import { randomFillSync } from "node:crypto";
import { v7 } from "uuid";

const POOL_BYTES = 4096;
const pool = Buffer.allocUnsafe(POOL_BYTES);
let used = POOL_BYTES;
let lastMs = Number.NEGATIVE_INFINITY;
let seq = 0;

function randomBytes16(): Uint8Array {
  if (used + 16 > POOL_BYTES) {
    randomFillSync(pool);
    used = 0;
  }
  const bytes = pool.subarray(used, used + 16);
  used += 16;
  return bytes;
}

export function newEventId(): string {
  const random = randomBytes16();
  const now = Date.now();
  if (now > lastMs) {
    lastMs = now;
    seq = ((random[6]! & 0x7f) << 24) | (random[7]! << 16) | (random[8]! << 8) | random[9]!;
  } else {
    seq = (seq + 1) | 0;
    if (seq === 0) lastMs++;
  }
  return v7({ msecs: lastMs, seq, random });
}
