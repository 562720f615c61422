/**
 * Shared field builders for the event catalog.
 *
 * Senders are PHP scripts (form posts, where every scalar is a string), JSON clients and the
 * Oktell XML ingress, so scalar fields accept the few spellings those send and normalise them.
 * Every builder stays convertible with `z.toJSONSchema(schema, { io: "input" })`: no
 * z.preprocess, only unions, pipes and transforms (the input side describes what to send).
 */
import { z } from "zod";

/** A union's own message: zod's default for a failed union is a bare "Invalid input". */
function unionError(expected: string) {
  return { error: (issue: { input?: unknown }) => (issue.input === undefined ? "required" : `expected ${expected}`) };
}

/** An integer sent as a JSON number or as a numeric string ("12", " -3 "); "", "abc", 1.5 fail. */
export function int() {
  return z.union([
    z.number().int(),
    z
      .string()
      .trim()
      .regex(/^-?\d+$/, "expected an integer")
      .transform(Number)
      .pipe(z.number().int("integer out of the safe range")),
  ], unionError("an integer (a number or a numeric string)"));
}

/**
 * A list of integers (PHP `clids[]=1&clids[]=2`), also a single integer (`clids=5` -> [5]),
 * or a PHP array json_encode'd as an object with index keys (`{"0":1,"2":3}` -> [1, 3]).
 */
export function intList() {
  return z.union([
    z.array(int()),
    int().transform((n) => [n]),
    z
      .record(z.string().regex(/^\d+$/, "expected a list index"), int())
      .transform((o) =>
        Object.entries(o)
          .sort(([a], [b]) => Number(a) - Number(b))
          .map(([, v]) => v),
      ),
  ], unionError("a list of integers"));
}

/** A PHP "array" of changed parameters: an object with string keys, or a plain list. */
export function params() {
  return z.union([z.record(z.string(), z.unknown()), z.array(z.unknown())]);
}

/** A 0/1 flag sent as true/false, 0/1, "0"/"1" or "true"/"false"; yields a boolean. */
export function flag() {
  return z
    .union([z.boolean(), z.literal([0, 1]), z.enum(["0", "1", "true", "false"])])
    .transform((v) => v === true || v === 1 || v === "1" || v === "true");
}

/** An optional id that PHP sends as "", null, or not at all when absent; yields number | undefined. */
export function maybeInt() {
  return z
    .union([int(), z.literal(""), z.null()])
    .transform((v) => (v === "" || v === null ? undefined : v))
    .optional();
}

/** A string; a JSON number is accepted and turned into its text (numbers, UIDs, invoice numbers). */
export function str() {
  return z.union([z.string(), z.number().transform(String)], unionError("a string"));
}

/** An optional string that may be sent as null or not at all; yields string | undefined. */
export function maybeStr() {
  return z
    .union([str(), z.null()])
    .transform((v) => (v === null ? undefined : v))
    .optional();
}

/** A string that must be sent but may be null (yields ""): PHP's json_encode of an unset value. */
export function nullableStr() {
  return z.union([str(), z.null().transform(() => "")], unionError("a string"));
}

/** A decimal amount kept as text to keep its precision ("10340.00"); a JSON number becomes text. */
export function decimal() {
  return z.union([
    z
      .string()
      .trim()
      .regex(/^-?\d+(?:\.\d+)?$/, "expected a decimal amount like 10340.00"),
    z.number().transform(String),
  ], unionError("a decimal amount like 10340.00"));
}

/** An ISO-8601 date-time with a zone: "2025-05-26T16:15:30Z" or "...+04:00". */
export function isoDateTime() {
  return z.iso.datetime({ offset: true });
}

/** An ISO-8601 date-time with or without a zone (Oktell sends the server's local time, no zone). */
export function isoLocalDateTime() {
  return z.iso.datetime({ offset: true, local: true });
}

/** A non-empty identifier string (UUIDs and other opaque ids), trimmed. */
export function id() {
  return z.string().trim().min(1, "expected a non-empty id");
}

/** The names of a `code -> name` table, in code order. */
export function namesOf<const T extends Record<number, string>>(table: T): Extract<T[keyof T], string>[] {
  return Object.values(table) as Extract<T[keyof T], string>[];
}

/** A z.enum of the names of a `code -> name` table. */
export function enumOf<const T extends Record<number, string>>(table: T) {
  return z.enum(namesOf(table));
}
