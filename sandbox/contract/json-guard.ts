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
 * ingress (core/base/depth.ts) checks request bodies with it too, so it runs on every event.
 *
 * A string is skipped char by char for its first 32 chars, and past that by `indexOf` (native
 * code) to its closing quote: a 1 KB event whose text is mostly one long field took 5.3 µs a
 * char at a time and 0.3 µs so, and many short strings take what they took.
 */
export function jsonTextTooDeep(text: string, maxDepth: number): boolean {
  const length = text.length;
  let depth = 0;
  for (let i = 0; i < length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      const end = stringEnd(text, i);
      // An unterminated string: nothing after it counts, and the parser refuses the text.
      if (end === -1) return false;
      i = end;
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (++depth > maxDepth) return true;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) depth--;
  }
  return false;
}

const SHORT_STRING = 32;

/**
 * Where the string opened at `open` ends (its closing quote), or -1 when it does not: a stretch
 * char by char, then `indexOf` to the next quote, and after an escaped one char by char again,
 * so a text of escaped quotes costs what the plain scan costs plus a native call per stretch.
 */
function stringEnd(text: string, open: number): number {
  let j = open + 1;
  for (;;) {
    const stop = Math.min(j + SHORT_STRING, text.length);
    for (; j < stop; j++) {
      const c = text.charCodeAt(j);
      if (c === 0x5c /* \ */) j++;
      else if (c === 0x22) return j;
    }
    if (j >= text.length) return -1;
    // j is at `stop`, or one past it when the char before `stop` escaped the one at it.
    const quote = text.indexOf('"', j);
    if (quote === -1 || !escapedAt(text, quote)) return quote;
    j = quote + 1;
  }
}

/** Whether the quote at `at` is escaped: an odd run of backslashes before it. */
function escapedAt(text: string, at: number): boolean {
  let backslashes = 0;
  for (let i = at - 1; text.charCodeAt(i) === 0x5c; i--) backslashes++;
  return backslashes % 2 === 1;
}
