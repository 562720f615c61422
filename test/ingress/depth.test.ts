// The nesting checks themselves: loops, never recursive, and not fooled by brackets in strings.
import { expect, it } from "vitest";
import { jsonTextTooDeep, valueTooDeep } from "../../core/base/depth.ts";

it("counts brackets of the JSON text, not those inside strings or after escapes", () => {
  expect(jsonTextTooDeep(`{"a":[[1]]}`, 3)).toBe(false);
  expect(jsonTextTooDeep(`{"a":[[[1]]]}`, 3)).toBe(true);
  expect(jsonTextTooDeep(JSON.stringify({ s: "[[[[[[{{{{", t: 'say \\"[[[[" ok' }), 1)).toBe(false);
  // A million levels: answered at once, no stack involved.
  expect(jsonTextTooDeep("[".repeat(1_000_000) + "]".repeat(1_000_000), 64)).toBe(true);
});

/** The plain scan, one char at a time: what the skipping one must agree with. */
function tooDeepCharByChar(text: string, maxDepth: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === "\\") i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === "{" || c === "[") {
      if (++depth > maxDepth) return true;
    } else if (c === "}" || c === "]") depth--;
  }
  return false;
}

it("skips long strings to their closing quote, escapes at any place included", () => {
  // Brackets inside strings longer than the char-by-char stretch, escaped quotes and backslash
  // runs on both sides of where the skip starts.
  for (let before = 25; before <= 40; before++) {
    for (const tail of ['\\"[[[', "\\\\", '\\\\\\"', "x"]) {
      const inner = "y".repeat(before) + tail + "[[[[";
      const text = JSON.stringify({ s: inner, t: [[1]] });
      expect(jsonTextTooDeep(text, 3), text).toBe(false);
      expect(jsonTextTooDeep(text, 2), text).toBe(true);
      expect(jsonTextTooDeep(text, 3)).toBe(tooDeepCharByChar(text, 3));
    }
  }
  // A long string that ends in backslashes: escaped ones (an even run before the closing quote)
  // and, in text no JSON writer makes, odd runs that escape the quote.
  for (let before = 28; before <= 36; before++) {
    for (let run = 1; run <= 5; run++) {
      const escapedOnes = JSON.stringify(["y".repeat(before) + "\\".repeat(run), [[1]]]);
      expect(jsonTextTooDeep(escapedOnes, 2), escapedOnes).toBe(true);
      const raw = `["${"y".repeat(before)}${"\\".repeat(run)}", [[1]]]`;
      expect(jsonTextTooDeep(raw, 2), raw).toBe(tooDeepCharByChar(raw, 2));
    }
  }
  expect(jsonTextTooDeep(`["${"x".repeat(100)}`, 0)).toBe(true);
  expect(jsonTextTooDeep(`"${"x".repeat(100)}[[[`, 1)).toBe(false);
});

it("agrees with the char-by-char scan on random texts of quotes, backslashes and brackets", () => {
  let seed = 20261202;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const alphabet = ['"', "\\", "[", "]", "{", "}", "a", ",", "b"];
  for (let n = 0; n < 5000; n++) {
    let text = "";
    const length = 1 + Math.floor(random() * 120);
    for (let k = 0; k < length; k++) text += random() < 0.3 ? "z".repeat(Math.floor(random() * 40)) : alphabet[Math.floor(random() * alphabet.length)];
    for (const maxDepth of [0, 1, 2, 5]) expect(jsonTextTooDeep(text, maxDepth), JSON.stringify(text)).toBe(tooDeepCharByChar(text, maxDepth));
  }
});

it("walks values with its own stack: a million levels deep, shared and cyclic references", () => {
  const deep = JSON.parse("[".repeat(1_000_000) + "]".repeat(1_000_000)) as unknown;
  expect(valueTooDeep(deep, 64)).toBe(true);
  // A shared object counts where it sits deepest, as JSON would write it.
  const shared = { x: {} };
  expect(valueTooDeep({ a: shared, b: [shared] }, 4)).toBe(false);
  expect(valueTooDeep({ a: shared, b: [{ c: shared }] }, 4)).toBe(true);
  expect(valueTooDeep({ a: { b: { c: {} } } }, 3)).toBe(true);
  // A cycle is as deep as it gets.
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  expect(valueTooDeep(cyclic, 3)).toBe(true);
  expect(valueTooDeep("text", 1)).toBe(false);
});
