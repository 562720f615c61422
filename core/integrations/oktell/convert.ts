/**
 * One `<event>` of the telephony XML -> the payload of its catalog event `oktell.<name>`, by
 * the conventions in core/integrations/oktell/catalog.ts:
 * - a coded value becomes its name, the number stays beside it as `<key>Code` (the XML carries
 *   both as `value` and `name`; without a `name`, the code table of a described field names it);
 * - 0/1 flags become booleans and dates ISO-8601, for the fields the seeds describe;
 * - `textb64` is decoded into `text`;
 * - everything else, and every property of the events the seeds do not describe, passes as text.
 * The catalog schema then validates (and coerces numbers), exactly as for a JSON sender.
 */
import {
  codeToName,
  decodeTextB64,
  ENotifyType,
  ELineState,
  EUserState,
  oktellEventIdByName,
  oktellEventIds,
  type OktellXmlEventName,
} from "./catalog.ts";
import { HookdError } from "../../../sandbox/contract/errors.ts";
import { oktellDateTimeToZonedIso } from "./time.ts";
import type { RawOktellEvent, RawProperty } from "./xml.ts";

type FieldRule = "flag" | "datetime" | { codes: Readonly<Record<number, string>> };

/** The fields the seeds describe and how they convert; other properties pass through. */
const FIELD_RULES: Partial<Record<OktellXmlEventName, Record<string, FieldRule>>> = {
  userstatechanged: { newstate: { codes: EUserState }, redirect: "flag" },
  personalstatechanged: { newstate: { codes: EUserState } },
  linestatechange: { state: { codes: ELineState } },
  notify: { type: { codes: ENotifyType }, autohide: "flag", dbsaved: "flag", datetime: "datetime" },
  usermessage: { datetime: "datetime" },
};

export interface ConvertOptions {
  /** Zone of the server's local dates (config `oktell.timezone`); none keeps them zone-less. */
  timezone?: string | undefined;
}

export interface ConvertedOktellEvent {
  index: number;
  /** The catalog name, `oktell.<xml name>`. */
  name: string;
  body: Record<string, unknown>;
  /** Set when the event's id names another event than its name does (the name wins). */
  mismatch?: { id: string; idName: string | null; name: string };
}

export function convertOktellEvent(raw: RawOktellEvent, options: ConvertOptions = {}): ConvertedOktellEvent {
  const { name, mismatch } = resolveEventName(raw);
  const rules = Object.hasOwn(FIELD_RULES, name) ? FIELD_RULES[name as OktellXmlEventName]! : {};
  const body = convertProperties(raw.properties, rules, options.timezone);
  if (typeof body.textb64 === "string" && body.text === undefined) {
    try {
      define(body, "text", decodeTextB64(body.textb64));
    } catch {
      // Left as sent: the catalog schema reports textb64 as invalid for the events it describes.
    }
  }
  return { index: raw.index, name: `oktell.${name}`, body, ...(mismatch ? { mismatch } : {}) };
}

/**
 * The event's name decides; the id only names an event that has no name. The seed itself has
 * a sample with `id="112" name="usermessage"` (112 is notify): the name is what it means.
 */
export function resolveEventName(raw: RawOktellEvent): { name: string; mismatch?: ConvertedOktellEvent["mismatch"] } {
  const name = raw.name?.trim().toLowerCase();
  const id = raw.id?.trim();
  const idName = id !== undefined && /^\d+$/.test(id) ? (codeToName(oktellEventIds, Number(id)) ?? null) : null;
  if (name) {
    const expectedId = (oktellEventIdByName as Record<string, number | undefined>)[name];
    const agrees = id === undefined || (expectedId !== undefined && String(expectedId) === id);
    return agrees ? { name } : { name, mismatch: { id: id!, idName, name } };
  }
  if (idName) return { name: idName };
  throw new HookdError("HOOKD_EVENT_UNKNOWN", [`oktell.? (event #${raw.index} has no name and its id ${JSON.stringify(id ?? null)} is unknown)`]);
}

export function convertProperties(properties: readonly RawProperty[], rules: Record<string, FieldRule>, timezone: string | undefined): Record<string, unknown> {
  // A repeated key becomes a list, so nothing the server sent is dropped.
  const values = new Map<string, unknown[]>();
  const add = (key: string, value: unknown) => values.set(key, [...(values.get(key) ?? []), value]);
  for (const property of properties) {
    if (property.kind === "set") add(property.key, convertProperties(property.properties, {}, timezone));
    else if (property.kind === "collection") add(property.key, property.items.map((item) => convertProperties(item, {}, timezone)));
    else convertValue(add, property, Object.hasOwn(rules, property.key) ? rules[property.key] : undefined, timezone);
  }
  const out: Record<string, unknown> = {};
  for (const [key, list] of values) define(out, key, list.length === 1 ? list[0] : list);
  return out;
}

function convertValue(
  add: (key: string, value: unknown) => void,
  property: Extract<RawProperty, { kind: "value" }>,
  rule: FieldRule | undefined,
  timezone: string | undefined,
): void {
  const { key, value, label } = property;
  if (rule === "flag") {
    // Anything but 0/1 stays as sent, for the schema to report with its path.
    add(key, value === "1" ? true : value === "0" ? false : value);
  } else if (rule === "datetime") {
    add(key, oktellDateTimeToZonedIso(value, timezone) ?? value);
  } else if (typeof rule === "object" || label !== undefined) {
    const code = toCode(value);
    const codeName = typeof rule === "object" && typeof code === "number" ? codeToName(rule.codes, code) : undefined;
    add(key, label ?? codeName ?? value);
    add(`${key}Code`, code);
  } else {
    add(key, value);
  }
}

/** A code as a number when it is one ("7", "0x40000"), else the text as sent. */
function toCode(value: string): number | string {
  const text = value.trim();
  if (/^-?\d+$/.test(text) || /^0x[0-9a-f]+$/i.test(text)) {
    const n = Number(text);
    if (Number.isSafeInteger(n)) return n;
  }
  return value;
}

/** An own property even for keys like `__proto__`: a key the server sends is data, never a prototype. */
function define(out: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
}
