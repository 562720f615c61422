/**
 * Nesting bounds for whatever comes in (HTTP bodies, telephony XML, ctx.emit payloads, action
 * inputs). A payload nested thousands of levels deep parses fine, but every recursive walk of it
 * later (structured clone to the store's writer thread, JSON.stringify, the isolate transfer)
 * overflows a stack: one accepted event like that used to halt all delivery. Both checks here
 * are loops with an explicit counter or stack, so checking can never overflow a stack itself.
 */
import { HookdError } from "../../sandbox/contract/errors.ts";

/** The default of `server.maxDepth`: the shipped catalog's deepest payload is a few levels. */
export const DEFAULT_MAX_DEPTH = 64;

/** The linear bracket scan of JSON text, shared with the sandbox's host-call guard. */
export { jsonTextTooDeep } from "../../sandbox/contract/json-guard.ts";

/** True when a value nests objects/arrays deeper than `maxDepth` (a top-level object is depth 1). */
export function valueTooDeep(value: unknown, maxDepth: number): boolean {
  if (typeof value !== "object" || value === null) return false;
  // Depth-first with an explicit stack; a node is never expanded past maxDepth, so the walk
  // stops at the first path that is too deep and never holds more than the nodes it saw.
  const stack: Array<{ node: object; depth: number }> = [{ node: value, depth: 1 }];
  // A node reached again (a shared reference) is walked again only from deeper than before, as
  // JSON would write it there: each node is expanded at most maxDepth times, and a cycle
  // counts as too deep (JSON cannot hold one).
  const deepestSeen = new Map<object, number>();
  while (stack.length > 0) {
    const { node, depth } = stack.pop()!;
    if (depth > maxDepth) return true;
    if ((deepestSeen.get(node) ?? 0) >= depth) continue;
    deepestSeen.set(node, depth);
    const children = Array.isArray(node) ? node : Object.values(node);
    for (const child of children) {
      if (typeof child === "object" && child !== null) stack.push({ node: child, depth: depth + 1 });
    }
  }
  return false;
}

/** Throws HOOKD_HTTP_TOO_DEEP (400) when the value nests deeper than allowed. */
export function assertDepth(value: unknown, maxDepth: number, what: string): void {
  if (valueTooDeep(value, maxDepth)) throw new HookdError("HOOKD_HTTP_TOO_DEEP", [what, maxDepth]);
}
