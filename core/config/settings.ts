/**
 * The settings half of events.config.ts: a zod schema with every default, so the rest of
 * hookd reads one complete, frozen object. Validation errors name the key.
 */
import { Webhook } from "standardwebhooks";
import { z } from "zod";
import type { EventCatalog, RouteConfig, WebhookConfig } from "./define.ts";
import { parseAllowHost } from "../fetch/plugin-fetch.ts";
import { catalogOrderBy, DEFAULT_RETRY_SCHEDULE_MS } from "../routing/index.ts";
import { isValidTimezone } from "../base/time-zone.ts";
import { oktellSettingsSchema } from "../integrations/oktell/settings.ts";
import { scheduleConfigSchema, type ScheduleConfig } from "../time/schedules.ts";
import { calendarsSchema, type CalendarConfig } from "../time/calendar-config.ts";

const WHSEC_PREFIX = "whsec_";

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
  oktell: oktellSettingsSchema,
  server: z
    .object({
      host: z.string().min(1).default("127.0.0.1"),
      port: z.number().int().min(0).max(65535).default(8711),
      token: z.string().min(1).optional(),
      bodyLimit: z.number().int().positive().default(1024 * 1024),
      // Deepest nesting of objects/arrays (XML elements for the telephony ingress) any ingress
      // accepts: HTTP bodies, ctx.emit payloads, action inputs. Deeper is 400 HOOKD_HTTP_TOO_DEEP.
      maxDepth: z.number().int().min(4).max(1000).default(64),
      // List endpoints (/api/events, /api/runs) stop a page at this many bytes of JSON...
      maxPageBytes: z.number().int().min(64 * 1024).max(256 * 1024 * 1024).default(4 * 1024 * 1024),
      // ...and show a payload (or error) larger than this as a marker; the detail endpoint has it whole.
      listItemBytes: z.number().int().min(1024).max(64 * 1024 * 1024).default(64 * 1024),
    })
    .prefault({}),
  plugins: z
    .object({
      dir: z.string().min(1).default("./plugins"),
      watch: z.boolean().default(true),
      // Bounds on one compile (core/compile): a plugin file must not stall or kill the compiler.
      compileTimeoutMs: z.number().int().min(100).max(10 * 60_000).default(10_000),
      // Largest file a plugin may bundle (its own sources, shared modules, npm packages).
      maxSourceBytes: z.number().int().min(1024).max(256 * 1024 * 1024).default(4 * 1024 * 1024),
      // All the files one plugin bundles together: what esbuild holds in memory for one compile.
      maxBundleBytes: z.number().int().min(1024).max(1024 * 1024 * 1024).default(64 * 1024 * 1024),
      // Deepest bracket nesting in one source file: esbuild's parser recurses per level and a
      // file of a million `[` overflows its stack (a gigabyte) and kills it. 0 turns the check off.
      maxNesting: z.number().int().min(0).max(1_000_000).default(1000),
      // How long start-up waits for one plugin before hookd is ready without it (the load goes on).
      startTimeoutMs: z.number().int().min(100).max(15 * 60_000).default(30_000),
    })
    .prefault({}),
  sandbox: z
    .object({
      memoryMb: z.number().int().min(8).max(4096).default(64),
      timeoutMs: z.number().int().min(10).max(15 * 60_000).default(5000),
      maxConcurrentRuns: z.number().int().min(1).max(1000).default(16),
      // Time a plugin's top-level code gets each time its isolate is built.
      loadTimeoutMs: z.number().int().min(10).max(15 * 60_000).default(5000),
      // The kernel wall (bubblewrap) around the sandbox process: sandbox/wall.ts.
      wall: z.enum(["auto", "required", "off"]).default("auto"),
      // The rest are per-plugin limits too (sandbox/contract/limits.ts); a plugin may override each one.
      cpuTimeMs: z.number().int().min(10).max(15 * 60_000).default(2000),
      maxLogLinesPerRun: z.number().int().min(1).max(1_000_000).default(1000),
      maxLogBytesPerRun: z.number().int().min(1024).max(256 * 1024 * 1024).default(1024 * 1024),
      fetchTimeoutMs: z.number().int().min(10).max(15 * 60_000).default(10_000),
      fetchMaxBytes: z.number().int().min(1).max(256 * 1024 * 1024).default(1024 * 1024),
      // Hosts ctx.fetch may reach on a loopback, private or this machine's own address (`host` or
      // `host:port`); only the config grants it, never a plugin's pattern. Not per plugin.
      fetchAllowHosts: z.array(z.string().refine((entry) => parseAllowHost(entry) !== undefined, "expected `host` or `host:port` ([::1]:9000 for IPv6)")).default([]),
      // ctx.fetch requests one plugin has on the network at once; further ones wait (within their time limit).
      fetchMaxConcurrent: z.number().int().min(1).max(10_000).default(16),
      kvMaxValueBytes: z.number().int().min(1).max(64 * 1024 * 1024).default(256 * 1024),
      kvMaxKeys: z.number().int().min(1).max(10_000_000).default(10_000),
      maxEmitsPerRun: z.number().int().min(0).max(100_000).default(100),
      // The most a plugin may raise each limit above to (sandbox/contract/limits.ts has the defaults:
      // 256 MB, 60 s, 1000 emits...). Lowering is always allowed; the config's own value is too.
      ceilings: z
        .strictObject({
          memoryMb: z.number().int().min(8).max(4096).optional(),
          timeoutMs: z.number().int().min(10).max(15 * 60_000).optional(),
          cpuTimeMs: z.number().int().min(10).max(15 * 60_000).optional(),
          maxConcurrentRuns: z.number().int().min(1).max(1000).optional(),
          maxLogLinesPerRun: z.number().int().min(1).max(1_000_000).optional(),
          maxLogBytesPerRun: z.number().int().min(1024).max(256 * 1024 * 1024).optional(),
          fetchTimeoutMs: z.number().int().min(10).max(15 * 60_000).optional(),
          fetchMaxBytes: z.number().int().min(1).max(256 * 1024 * 1024).optional(),
          kvMaxValueBytes: z.number().int().min(1).max(64 * 1024 * 1024).optional(),
          kvMaxKeys: z.number().int().min(1).max(10_000_000).optional(),
          maxEmitsPerRun: z.number().int().min(0).max(100_000).optional(),
        })
        .prefault({}),
      // Host calls (kv, emit, fetch) one run may have waiting on the host at once; the runtime
      // queues the rest inside the isolate, where they count against its heap.
      maxHostCallsInFlight: z.number().int().min(1).max(10_000).default(64),
      // The daemon pings the sandbox process this often; after heartbeatMisses unanswered pings
      // in a row its event loop is taken as hung and the process is restarted. Ten seconds by
      // default: a restart costs every run in flight a retry, so a busy machine must not look hung.
      heartbeatMs: z.number().int().min(50).max(60_000).default(1000),
      heartbeatMisses: z.number().int().min(2).max(100).default(10),
      // Resident memory of the sandbox process (isolate heaps, WebAssembly memory, host buffers)
      // above which it is replaced without a gap, as after a lost isolate; 0 turns the watch off.
      processMemoryMb: z.number().int().min(0).max(1024 * 1024).default(2048),
      // A plugin whose runs keep failing is paused (its deliveries wait), then tried again.
      breaker: z
        .object({
          failures: z.number().int().min(1).max(1000).default(5),
          coolDownMs: z.number().int().min(100).max(24 * 3_600_000).default(30_000),
        })
        .prefault({}),
    })
    .superRefine((sandbox, ctx) => {
      // A ceiling below the config's own value would forbid what the config itself grants.
      for (const [name, ceiling] of Object.entries(sandbox.ceilings)) {
        const base = (sandbox as Record<string, unknown>)[name];
        if (typeof ceiling === "number" && typeof base === "number" && ceiling < base) {
          ctx.addIssue({ code: "custom", path: ["ceilings", name], message: `is ${ceiling}, below sandbox.${name} (${base}): a ceiling is at least the config's own value` });
        }
      }
    })
    .prefault({}),
  store: z
    .object({
      url: z.string().min(1).optional(),
      synchronous: z.enum(["FULL", "NORMAL", "OFF"]).default("FULL"),
      // PostgreSQL: longest one store statement may wait (on a lock, a stalled server) before it
      // fails: the dispatcher retries its calls, an accept answers 5xx; unset: 30000.
      statementTimeoutMs: z.number().int().min(100).max(3_600_000).optional(),
      // PostgreSQL: connections per instance for accepts and reads (claims, results and ctx.kv
      // get half as many more); unset: 8. See the README on sizing max_connections.
      maxConnections: z.number().int().min(2).max(500).optional(),
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
      // A failed run's error message is kept (lastError, logs) up to this many characters
      // (unset: 16384; optional so settings objects written out in full stay valid).
      maxErrorChars: z.number().int().min(256).max(16 * 1024 * 1024).optional(),
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
  // maxFieldChars: a longer string in a log line (a field, an error's message or stack, the
  // message itself) is cut there, saying so.
  log: z.object({ level: logLevel.default("info"), maxFieldChars: z.number().int().min(256).max(64 * 1024 * 1024).default(16 * 1024) }).prefault({}),
  secrets: z.record(z.string(), z.string().optional()).default({}),
  // Cron ticks that emit a catalog event (core/time/schedules.ts).
  schedules: scheduleConfigSchema,
  // Business hours for delays ({ within }) and schedules ({ calendar }) (core/time/calendar.ts).
  calendars: calendarsSchema,
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
  plugins: Settings["plugins"];
  sandbox: Settings["sandbox"];
  store: { url: string; synchronous: "FULL" | "NORMAL" | "OFF"; statementTimeoutMs?: number | undefined; maxConnections?: number | undefined };
  dataDir: string;
  delivery: Settings["delivery"];
  log: Settings["log"];
  secrets: Record<string, string | undefined>;
  schedules: ScheduleConfig[];
  calendars: Record<string, CalendarConfig>;
}

/**
 * Why a webhook signing secret cannot sign, or undefined when it can: `whsec_<base64>` as
 * Standard Webhooks issues them (the library must accept it), or any other non-empty string,
 * whose UTF-8 bytes are the key (core/webhooks/signing.ts signs with either).
 */
export function secretProblem(secret: string): string | undefined {
  if (!secret.startsWith(WHSEC_PREFIX)) return secret.length === 0 ? "the secret is empty" : undefined;
  const encoded = secret.slice(WHSEC_PREFIX.length);
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encoded) || encoded.length % 4 !== 0) return "a whsec_ secret must be base64 after the prefix";
  try {
    new Webhook(secret);
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

/** One readable line per zod issue: `server.port: Invalid input: expected number`. */
export function describeIssues(issues: ReadonlyArray<z.core.$ZodIssue>): string {
  return issues.map((issue) => `${issue.path.map(String).join(".") || "(root)"}: ${issue.message}`).join("; ");
}
