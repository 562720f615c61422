/**
 * The `plugin({ fetch })` URL patterns, matched in time linear in the URL's length.
 *
 * They used to be compiled to RegExps, and V8's backtracking made `*a*a*a…*b` against a long URL
 * run for hours inside the daemon. picomatch and micromatch compile to RegExps too (and speak
 * path globs, not URLs), so the match is done here: a pattern is literal segments between `*`s;
 * the first segment must start the text, the last must end it, and each one in between is taken
 * at its leftmost occurrence after the previous one (indexOf). Taking the leftmost occurrence is
 * always right for a wildcard (it leaves the most text for what follows, and a later occurrence
 * would only give the `*` before it more to span), so nothing is ever tried twice.
 *
 * Semantics (as before): `*` spans any characters; in the scheme and host part (up to the first
 * `/` after `://`) it spans no `/` and no `@`. A pattern without a path allows the whole origin.
 */

const cache = new Map<string, CompiledPattern>();
const CACHE_LIMIT = 10_000;

interface CompiledPattern {
  /** The scheme and host part, split at `*`. */
  origin: string[];
  /** Slashes the origin part holds literally: its match in a URL holds exactly as many. */
  originSlashes: number;
  /** The path part (starting with `/`), split at `*`; undefined when the pattern has none. */
  rest: string[] | undefined;
}

/** True when `url` matches `pattern`. */
export function matchesPattern(url: string, pattern: string): boolean {
  const compiled = compile(pattern);
  // A `*` in the origin spans no `/`, so the origin part matches exactly the URL up to the slash
  // after its own literal ones: a single place to cut the URL, found in one pass.
  const cut = nthIndexOf(url, "/", compiled.originSlashes + 1);
  const urlOrigin = cut === -1 ? url : url.slice(0, cut);
  const urlRest = cut === -1 ? "" : url.slice(cut);
  if (!matchSegments(compiled.origin, urlOrigin, ORIGIN_EXCLUDED)) return false;
  // Without a path the whole origin is allowed (urlRest is empty or starts with `/`).
  return compiled.rest === undefined ? true : matchSegments(compiled.rest, urlRest, undefined);
}

/** True when `url` matches one of the patterns. */
export function matchesAny(url: string, patterns: readonly string[]): boolean {
  return patterns.some((pattern) => matchesPattern(url, pattern));
}

const ORIGIN_EXCLUDED = /[/@]/;

function compile(pattern: string): CompiledPattern {
  let compiled = cache.get(pattern);
  if (!compiled) {
    const schemeEnd = pattern.indexOf("://");
    const pathStart = schemeEnd === -1 ? -1 : pattern.indexOf("/", schemeEnd + 3);
    const origin = pathStart === -1 ? pattern : pattern.slice(0, pathStart);
    compiled = {
      origin: origin.split("*"),
      originSlashes: origin.split("/").length - 1,
      rest: pathStart === -1 ? undefined : pattern.slice(pathStart).split("*"),
    };
    // Patterns come from loaded plugins; the bound only keeps a churn of reloads from growing it.
    if (cache.size >= CACHE_LIMIT) cache.clear();
    cache.set(pattern, compiled);
  }
  return compiled;
}

/**
 * Whether `text` is `segments` joined by runs of any characters (none of them matching
 * `excluded`, when given). Every character is looked at a bounded number of times.
 */
function matchSegments(segments: readonly string[], text: string, excluded: RegExp | undefined): boolean {
  if (segments.length === 1) return text === segments[0];
  const first = segments[0]!;
  const last = segments[segments.length - 1]!;
  if (text.length < first.length + last.length || !text.startsWith(first) || !text.endsWith(last)) return false;
  const end = text.length - last.length;
  let position = first.length;
  for (let i = 1; i < segments.length - 1; i++) {
    const segment = segments[i]!;
    const found = text.indexOf(segment, position);
    if (found === -1 || found + segment.length > end) return false;
    if (excluded && excluded.test(text.slice(position, found))) return false;
    position = found + segment.length;
  }
  return !(excluded && excluded.test(text.slice(position, end)));
}

function nthIndexOf(text: string, search: string, n: number): number {
  let index = -1;
  for (let i = 0; i < n; i++) {
    index = text.indexOf(search, index + 1);
    if (index === -1) return -1;
  }
  return index;
}
