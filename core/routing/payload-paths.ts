/**
 * Dotted paths into an event's payload (`client.id`): what order keys, route inputs and webhook
 * field maps read, and what the config loader checks against the catalog before it accepts a
 * route. Reading walks own properties only; checking walks a zod schema's declared shape.
 */

/** Reads a dotted path (`client.id`) in an event payload; undefined where any step is missing. */
export function readPath(value: unknown, dotted: string): unknown {
  let current = value;
  for (const key of dotted.split(".")) {
    if (typeof current !== "object" || current === null || !Object.hasOwn(current, key)) return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return current;
}

/**
 * The first step of a dotted path that the event's schema does not list, or undefined when the
 * path is there or cannot be known (an undescribed event, a field of free shape such as a record
 * or `unknown`). A listed object's unlisted key is an error even if the object is loose: a route
 * reads what the catalog describes (declare a custom field in the catalog to route it).
 */
export function missingPathStep(schema: unknown, dotted: string): string | undefined {
  let current: unknown = schema;
  for (const key of dotted.split(".")) {
    const shape = objectShape(current);
    if (shape === undefined || Object.keys(shape).length === 0) return undefined;
    if (!Object.hasOwn(shape, key)) return key;
    current = shape[key];
  }
  return undefined;
}

/** The shape of a zod object, seen through optional/nullable/default/pipe/refine wrappers. */
function objectShape(schema: unknown, seen = 0): Record<string, unknown> | undefined {
  if (seen > 20 || typeof schema !== "object" || schema === null) return undefined;
  const def = (schema as { _zod?: { def?: Record<string, unknown> } })._zod?.def;
  if (def === undefined) return undefined;
  switch (def.type) {
    case "object":
      return def.shape as Record<string, unknown>;
    case "optional":
    case "nullable":
    case "default":
    case "prefault":
    case "nonoptional":
    case "readonly":
    case "catch":
      return objectShape(def.innerType, seen + 1);
    case "pipe":
      return objectShape(def.in, seen + 1);
    default:
      return undefined;
  }
}
