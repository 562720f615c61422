/**
 * What a new plugin version must pass before it serves, as a chain of small named checks (the
 * way fastify's pluginUtils runs `checkVersion`, `checkDecorators`, `checkDependencies` one after
 * another): each check is a function that returns the error the load fails with, or undefined;
 * they run in order and the first failure is the load error. Adding a rule is one function and
 * one entry in its stage's list.
 *
 * Two stages: before the compile (the plugin's sources, as discovered), and after the sandbox
 * evaluated the version (its manifest: the events and actions it registered). A version that
 * fails the second stage is unloaded again; the version already serving stays.
 *
 * Also here: the files a compile error points into, so fixing one of them retries the plugin.
 */
import path from "node:path";
import type { EventCatalog } from "../config/define.ts";
import { HookdError } from "../../sandbox/contract/errors.ts";
import type { PluginManifest } from "../../sandbox/contract/run.ts";
import type { PluginEntry } from "./discover.ts";

/** A check: the error a load fails with, or undefined when the candidate passes. */
export type LoadCheck<Candidate> = (candidate: Candidate) => HookdError | undefined;

/** A plugin about to be compiled. */
export interface SourceCandidate {
  entry: PluginEntry;
  /** Paths in messages are relative to this folder. */
  root: string;
}

/** A version the sandbox evaluated, not serving yet. */
export interface VersionCandidate {
  /** The entry file, relative to the plugins folder's parent. */
  file: string;
  manifest: PluginManifest;
  catalog: EventCatalog;
}

/**
 * Two sources for one name (`victim.ts` and `victim/index.ts`): which one is "victim", with its
 * kv and secrets, must never be a silent choice. Neither new source loads; a version already
 * serving stays (it is the one that was vetted), and the error says why.
 */
export function singleSource({ entry, root }: SourceCandidate): HookdError | undefined {
  const sources = entry.sources;
  if (!sources || sources.length <= 1) return undefined;
  return new HookdError("HOOKD_PLUGIN_AMBIGUOUS", [entry.name, sources.map((file) => path.relative(root, file)).join(", ")]);
}

/** Every event the version subscribes to is in the catalog: `on("deal.closed")` (a typo) fails the load. */
export function knownEvents({ file, manifest, catalog }: VersionCandidate): HookdError | undefined {
  const unknown = manifest.events.filter((event) => !Object.hasOwn(catalog, event));
  return unknown.length > 0 ? new HookdError("HOOKD_PLUGIN_UNKNOWN_EVENT", [file, unknown.join(", ")]) : undefined;
}

/** Checks before the compile, in order. */
export const SOURCE_CHECKS: ReadonlyArray<LoadCheck<SourceCandidate>> = [singleSource];

/** Checks of an evaluated version before it serves, in order. */
export const VERSION_CHECKS: ReadonlyArray<LoadCheck<VersionCandidate>> = [knownEvents];

/** Runs the checks in order; the first failure, or undefined when all pass. */
export function firstFailure<Candidate>(checks: ReadonlyArray<LoadCheck<Candidate>>, candidate: Candidate): HookdError | undefined {
  for (const check of checks) {
    const failure = check(candidate);
    if (failure) return failure;
  }
  return undefined;
}

/** The files a compile error points into (a broken shared module, say), as absolute paths. */
export function issueFiles(thrown: unknown, root: string): string[] {
  if (!(thrown instanceof HookdError)) return [];
  const issues = (thrown.issues ?? []) as Array<{ file?: unknown }>;
  return issues.flatMap((issue) => (typeof issue.file === "string" && issue.file ? [path.resolve(root, issue.file)] : []));
}
