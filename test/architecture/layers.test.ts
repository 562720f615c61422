// The layers of hookd, read from the import graph of the sources (TypeScript's own pre-parser,
// so a string or a comment that looks like an import does not count). The rules are the
// README's "Architecture" picture, written once here:
//   - the sandbox is the lower layer: nothing under sandbox/ imports core/;
//   - core/ reaches the sandbox through its entry (sandbox/index.ts) and its contract
//     (sandbox/contract/), never through its other modules;
//   - the contract stands on nothing but itself and the plugin API's types;
//   - no two folders import each other, directly or round a cycle.
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { describe, expect, it } from "vitest";

const REPO = fileURLToPath(new URL("../..", import.meta.url));

type Graph = Map<string, Set<string>>;

function sources(dir: string): string[] {
  return readdirSync(path.join(REPO, dir), { withFileTypes: true }).flatMap((entry) => {
    const file = path.posix.join(dir, entry.name);
    if (entry.isDirectory()) return sources(file);
    return /\.ts$/.test(entry.name) && !entry.name.endsWith(".d.ts") ? [file] : [];
  });
}

/** File -> the repository files it imports or re-exports (relative specifiers only). */
function importGraph(files: string[]): Graph {
  const graph: Graph = new Map();
  for (const file of files) {
    const info = ts.preProcessFile(readFileSync(path.join(REPO, file), "utf8"), true, true);
    const targets = new Set<string>();
    for (const imported of info.importedFiles) {
      if (!imported.fileName.startsWith(".")) continue;
      targets.add(path.posix.normalize(path.posix.join(path.posix.dirname(file), imported.fileName)));
    }
    graph.set(file, targets);
  }
  return graph;
}

const PLUGIN_API = "sandbox/runtime/api.ts";

/**
 * The folder a file lives in: its room. The plugin API's types (what `import ... from "hookd"`
 * gives authors) sit with the runtime that implements them but are the authors' side of the
 * contract, and count as the contract's.
 */
function roomOf(file: string): string {
  return file === PLUGIN_API ? "sandbox/contract" : path.posix.dirname(file);
}

/** Every broken rule, as "from -> to: why". */
function violations(graph: Graph): string[] {
  const found: string[] = [];
  for (const [from, targets] of graph) {
    for (const to of targets) {
      if (from.startsWith("sandbox/") && to.startsWith("core/")) found.push(`${from} -> ${to}: the sandbox imports nothing from core/`);
      if (from.startsWith("core/") && to.startsWith("sandbox/") && to !== "sandbox/index.ts" && !to.startsWith("sandbox/contract/")) {
        found.push(`${from} -> ${to}: core/ reaches the sandbox through sandbox/index.ts and sandbox/contract/ only`);
      }
      if (from.startsWith("sandbox/contract/") && !to.startsWith("sandbox/contract/") && to !== PLUGIN_API) {
        found.push(`${from} -> ${to}: the contract stands on nothing but itself and the plugin API's types`);
      }
    }
  }
  for (const cycle of folderCycles(graph)) found.push(`folders in one import cycle: ${cycle.join(", ")}`);
  return found;
}

/** Cycles between rooms: each set of two or more folders that reach one another through imports. */
function folderCycles(graph: Graph): string[][] {
  const rooms: Graph = new Map();
  for (const [from, targets] of graph) {
    const room = roomOf(from);
    if (!rooms.has(room)) rooms.set(room, new Set());
    for (const to of targets) if (roomOf(to) !== room) rooms.get(room)!.add(roomOf(to));
  }
  // Tarjan's strongly connected components.
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  const visit = (room: string): void => {
    index.set(room, counter);
    low.set(room, counter++);
    stack.push(room);
    onStack.add(room);
    for (const next of rooms.get(room) ?? []) {
      if (!index.has(next)) {
        visit(next);
        low.set(room, Math.min(low.get(room)!, low.get(next)!));
      } else if (onStack.has(next)) low.set(room, Math.min(low.get(room)!, index.get(next)!));
    }
    if (low.get(room) !== index.get(room)) return;
    const component: string[] = [];
    let member: string;
    do {
      member = stack.pop()!;
      onStack.delete(member);
      component.push(member);
    } while (member !== room);
    if (component.length > 1) cycles.push(component.sort());
  };
  for (const room of rooms.keys()) if (!index.has(room)) visit(room);
  return cycles;
}

describe("architecture", () => {
  const graph = importGraph([...sources("core"), ...sources("sandbox")]);

  it("reads the whole source tree", () => {
    expect(graph.size).toBeGreaterThan(100);
    expect(graph.get("core/daemon.ts")?.has("sandbox/index.ts")).toBe(true);
  });

  it("keeps the layers of the README's picture", () => {
    expect(violations(graph)).toEqual([]);
  });

  it("fails on a planted violation of each rule", () => {
    const planted = (from: string, to: string): Graph => {
      const copy: Graph = new Map([...graph].map(([file, targets]) => [file, new Set(targets)]));
      copy.get(from)!.add(to);
      return copy;
    };
    expect(violations(planted("sandbox/worker.ts", "core/daemon.ts"))).toContain("sandbox/worker.ts -> core/daemon.ts: the sandbox imports nothing from core/");
    expect(violations(planted("core/daemon.ts", "sandbox/isolate-host.ts"))).toContain(
      "core/daemon.ts -> sandbox/isolate-host.ts: core/ reaches the sandbox through sandbox/index.ts and sandbox/contract/ only",
    );
    expect(violations(planted("sandbox/contract/run.ts", "sandbox/isolate-host.ts")).some((v) => v.startsWith("sandbox/contract/run.ts -> sandbox/isolate-host.ts"))).toBe(true);
    // core/store stands on sandbox/contract alone; a store file importing the daemon closes a cycle.
    expect(violations(planted("core/store/types.ts", "core/daemon.ts")).some((v) => v.startsWith("folders in one import cycle") && v.includes("core/store"))).toBe(true);
  });
});
