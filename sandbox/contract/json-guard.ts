/**
 * Every value a plugin hands the host arrives as a JSON string. Before the host parses one, it
 * checks size and nesting: a value nested a hundred thousand levels deep parses fine, but the
 * first JSON.stringify of it on the host (for IPC, for the store) overflows the host's stack.
 */

/** Most a single host call may carry (a kv value, an emitted payload, a fetch body). */
export const MAX_HOST_CALL_CHARS = 8 * 1024 * 1024;
/** Deepest nesting of objects and arrays a host call may carry. */
export const MAX_JSON_DEPTH = 64;

/** Why `text` is refused, or undefined when it may be parsed. */
export function jsonProblem(text: string, maxChars = MAX_HOST_CALL_CHARS, maxDepth = MAX_JSON_DEPTH): string | undefined {
  if (text.length > maxChars) return `it is larger than ${maxChars} characters`;
  if (jsonTextTooDeep(text, maxDepth)) return `it nests deeper than ${maxDepth} levels`;
  return undefined;
}

/**
 * True when JSON text nests objects/arrays deeper than `maxDepth`: a linear scan of the brackets
 * outside strings, so it runs before any parser sees the text and cannot overflow a stack. The
 * ingress (core/base/depth.ts) checks request bodies with it too.
 */
export function jsonTextTooDeep(text: string, maxDepth: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c /* \ */) i++;
      else if (c === 0x22 /* " */) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (++depth > maxDepth) return true;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) depth--;
  }
  return false;
}
