/**
 * The event catalog: every event hookd knows, event name -> zod schema of its payload.
 * The schemas take what senders send (`z.input`) and hand plugins the normalised payload
 * (`z.output`); `z.toJSONSchema(schema, { io: "input" })` describes what to send.
 */
import type { z } from "zod";
import { crmEvents } from "../integrations/crm/catalog.ts";
import { oktellEvents } from "../integrations/oktell/catalog.ts";
import { operatorEvents } from "./operators.ts";

export * from "../base/catalog-fields.ts";
export * from "../integrations/crm/catalog.ts";
export * from "./operators.ts";
export * from "../integrations/oktell/catalog.ts";

/** Every event of the seeds: CRM events.php, operators and sessions, Oktell service events. */
export const catalog = { ...crmEvents, ...operatorEvents, ...oktellEvents } as const;

/** The catalog's type. */
export type Catalog = typeof catalog;

/** The name of a catalog event. */
export type CatalogEventName = keyof Catalog;

/** What a handler receives for an event (after normalisation). */
export type CatalogEventPayload<K extends CatalogEventName> = z.output<Catalog[K]>;

/** What a sender may send for an event (before normalisation). */
export type CatalogEventInput<K extends CatalogEventName> = z.input<Catalog[K]>;
