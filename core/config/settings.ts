/**
 * The settings half of events.config.ts: a zod schema with every default, so the rest of
 * hookd reads one complete, frozen object. Validation errors name the key.
 */
import { z } from "zod";
import type { EventCatalog, RouteConfig, WebhookConfig } from "./define.ts";
import { catalogOrderBy } from "../delivery/order-keys.ts";
import { isValidTimezone } from "../ingress/oktell-time.ts";
import { DEFAULT_RETRY_SCHEDULE_MS } from "../webhooks/schedule.ts";
import { secretProblem } from "../webhooks/signing.ts";

const logLevel = z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]);

const isZodSchema = (value: unknown): boolean =>
  typeof value === "object" && value !== null && typeof (value as { safeParse?: unknown }).safeParse === "function";

const eventName = z.string().regex(/^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$/, "event names are dotted lowercase words");

const inputMapping = z.record(z.string(), z.union([z.string().min(1), z.object({ value: z.unknown() })]));

export const settingsSchema = z.object({
  events: z.record(eventName, z.custom<z.ZodType>(isZodSchema, "must be a zod schema (z.object({...}))")),
  routes: z
    .array(z.object({ on: z.string(), run: z.string().min(1), input: inputMapping.optional() }))
    .default([]),
  webhooks: z
    .array(
      z.object({
        on: z.string(),
        url: z.url({ protocol: /^https?$/ }),
        method: z.enum(["GET", "POST"]).default("POST"),
        format: z.enum(["json", "form"]).default("json"),
        map: z.record(z.string(), z.string()).optional(),
        secret: z.string().min(1).refine((s) => secretProblem(s) === undefined, "a whsec_ secret must be base64 after the prefix").optional(),
      }),
    )
    .default([]),
  // How webhooks are retried and signed (core/webhooks): the first attempt goes at once, then
  // one retry after each delay of the schedule (hookd's default webhook schedule).
  webhookDelivery: z
    .object({
      retryScheduleMs: z.array(z.number().int().min(0).max(7 * 24 * 3_600_000)).max(30).default([...DEFAULT_RETRY_SCHEDULE_MS]),
      timeoutMs: z.number().int().min(100).max(120_000).default(15_000),
      secret: z.string().min(1).refine((s) => secretProblem(s) === undefined, "a whsec_ secret must be base64 after the prefix").optional(),
    })
    .prefault({}),
  // The telephony ingress: the zone of the server's local dates (none: dates stay zone-less).
  oktell: z
    .object({
      timezone: z.string().refine(isValidTimezone, "expected an IANA time zone (Europe/Moscow), UTC, or an offset like +03:00").optional(),
    })
    .prefault({}),
  server: z
    .object({
      host: z.string().min(1).default("127.0.0.1"),
      port: z.number().int().min(0).max(65535).default(8711),
      token: z.string().min(1).optional(),
      bodyLimit: z.number().int().positive().default(1024 * 1024),
    })
    .prefault({}),
  plugins: z.object({ dir: z.string().min(1).default("./plugins"), watch: z.boolean().default(true) }).prefault({}),
  sandbox: z
    .object({
      memoryMb: z.number().int().min(8).max(4096).default(64),
      timeoutMs: z.number().int().min(10).max(15 * 60_000).default(5000),
      maxConcurrentRuns: z.number().int().min(1).max(1000).default(16),
      // Time a plugin's top-level code gets each time its isolate is built.
      loadTimeoutMs: z.number().int().min(10).max(15 * 60_000).default(5000),
      // The rest are per-plugin limits too (sandbox/limits.ts); a plugin may override each one.
      cpuTimeMs: z.number().int().min(10).max(15 * 60_000).default(2000),
      maxLogLinesPerRun: z.number().int().min(1).max(1_000_000).default(1000),
      maxLogBytesPerRun: z.number().int().min(1024).max(256 * 1024 * 1024).default(1024 * 1024),
      fetchTimeoutMs: z.number().int().min(10).max(15 * 60_000).default(10_000),
      fetchMaxBytes: z.number().int().min(1).max(256 * 1024 * 1024).default(1024 * 1024),
      kvMaxValueBytes: z.number().int().min(1).max(64 * 1024 * 1024).default(256 * 1024),
      kvMaxKeys: z.number().int().min(1).max(10_000_000).default(10_000),
      maxEmitsPerRun: z.number().int().min(0).max(100_000).default(100),
      // A plugin whose runs keep failing is paused (its deliveries wait), then tried again.
      breaker: z
        .object({
          failures: z.number().int().min(1).max(1000).default(5),
          coolDownMs: z.number().int().min(100).max(24 * 3_600_000).default(30_000),
        })
        .prefault({}),
    })
    .prefault({}),
  store: z
    .object({
      url: z.string().min(1).optional(),
      synchronous: z.enum(["FULL", "NORMAL", "OFF"]).default("FULL"),
    })
    .prefault({}),
  delivery: z
    .object({
      maxAttempts: z.number().int().min(1).max(100).default(5),
      backoffMs: z.number().int().min(0).default(1000),
      maxBackoffMs: z.number().int().min(0).default(60 * 60_000),
      concurrency: z.number().int().min(1).max(10_000).default(64),
      maxEmitDepth: z.number().int().min(1).max(100).default(8),
      // Events one accepted event may cause through ctx.emit, all generations together: the depth
      // bounds a chain, this bounds its width (a handler emitting 20 copies of its own event).
      maxDescendants: z.number().int().min(1).max(10_000_000).default(1000),
      // Per-key order: the shipped catalog's keys, then the config's own (false switches one off).
      orderBy: z
        .record(z.string().regex(/^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*(\.\*)?$/, "an event name or a `prefix.*` pattern"), z.union([z.string().min(1), z.literal(false)]))
        .default({})
        .transform((own) => ({ ...catalogOrderBy, ...own })),
      /** Time runs in flight get to finish when the daemon stops (SIGTERM). */
      drainMs: z.number().int().min(0).max(15 * 60_000).default(10_000),
      // How long finished events are kept; 0 keeps them forever.
      retention: z
        .object({
          doneMs: z.number().int().min(0).default(7 * 24 * 3_600_000),
          deadMs: z.number().int().min(0).default(30 * 24 * 3_600_000),
        })
        .prefault({}),
    })
    .prefault({}),
  log: z.object({ level: logLevel.default("info") }).prefault({}),
  secrets: z.record(z.string(), z.string().optional()).default({}),
});

export type Settings = z.output<typeof settingsSchema>;

/** The loaded configuration: settings with defaults, absolute paths, and where it came from. */
export interface ResolvedConfig {
  /** Absolute path of events.config.ts. */
  file: string;
  /** Every file the config read (the config and what it imports): the watch list. */
  inputs: string[];
  events: EventCatalog;
  routes: RouteConfig[];
  webhooks: Array<Required<Omit<WebhookConfig, "map" | "secret">> & Pick<WebhookConfig, "map" | "secret">>;
  webhookDelivery: Settings["webhookDelivery"];
  oktell: Settings["oktell"];
  server: Settings["server"];
  plugins: { dir: string; watch: boolean };
  sandbox: Settings["sandbox"];
  store: { url: string; synchronous: "FULL" | "NORMAL" | "OFF" };
  dataDir: string;
  delivery: Settings["delivery"];
  log: Settings["log"];
  secrets: Record<string, string | undefined>;
}

/** One readable line per zod issue: `server.port: Invalid input: expected number`. */
export function describeIssues(issues: ReadonlyArray<z.core.$ZodIssue>): string {
  return issues.map((issue) => `${issue.path.map(String).join(".") || "(root)"}: ${issue.message}`).join("; ");
}
