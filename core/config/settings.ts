/**
 * The settings half of events.config.ts: a zod schema with every default, so the rest of
 * hookd reads one complete, frozen object. Validation errors name the key.
 */
import { z } from "zod";
import type { EventCatalog, RouteConfig, WebhookConfig } from "./define.ts";

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
        secret: z.string().min(1).optional(),
      }),
    )
    .default([]),
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
