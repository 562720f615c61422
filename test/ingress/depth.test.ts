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
