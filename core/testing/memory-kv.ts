/**
 * A plugin's ctx.kv under test: the store's semantics (JSON values, keys listed in order by
 * prefix) kept in memory, with a record of every write.
 */

import { kvLimit } from "../store/kv-limit.ts";

/** One write a handler made through ctx.kv. */
export type KvWrite = { op: "set"; key: string; value: unknown } | { op: "delete"; key: string };

export class MemoryKv {
  /** Every write, in order. */
  readonly writes: KvWrite[] = [];
  private readonly values = new Map<string, string>();

  constructor(initial: Record<string, unknown> = {}) {
    for (const [key, value] of Object.entries(initial)) this.values.set(key, JSON.stringify(value));
  }

  /** The stored value, as a handler would read it; undefined when the key is not set. */
  get<T = unknown>(key: string): T | undefined {
    const json = this.values.get(key);
    return json === undefined ? undefined : (JSON.parse(json) as T);
  }

  /** Seeds a value without recording it as a handler's write. */
  set(key: string, value: unknown): void {
    this.values.set(key, JSON.stringify(value ?? null));
  }

  /** Everything stored, keys in order. */
  entries(): Record<string, unknown> {
    const result: Record<string, unknown> = {};
    for (const key of [...this.values.keys()].sort()) result[key] = this.get(key);
    return result;
  }

  /** ctx.kv.set: the plugin's key limit comes with the set (the real store checks it the same way). */
  write(key: string, value: unknown, maxKeys?: number): void {
    if (maxKeys !== undefined && !this.values.has(key) && this.values.size >= maxKeys) throw kvLimit(maxKeys, key);
    // Stored as JSON, like the real store: what the handler reads back is a copy.
    const json = JSON.stringify(value ?? null);
    this.values.set(key, json);
    this.writes.push({ op: "set", key, value: JSON.parse(json) });
  }

  /** ctx.kv.delete. */
  remove(key: string): boolean {
    const existed = this.values.delete(key);
    this.writes.push({ op: "delete", key });
    return existed;
  }

  /** ctx.kv.list: keys in order by prefix. */
  list(prefix: string, limit: number): string[] {
    return [...this.values.keys()]
      .filter((k) => k.startsWith(prefix))
      .sort()
      .slice(0, limit);
  }
}
