/**
 * The web platform inside the isolate (issue 20): the globals plugin code and pure-JS npm
 * packages expect, written here so the runtime stays small (it is evaluated in every isolate).
 * Binary data crosses to the host as base64 strings inside the usual JSON host calls.
 *
 * Timers belong to a run: `install` in bootstrap.ts tells this module which run is current
 * (`setCurrentRun`), every timer is filed under it, and a run's timers are dropped when it ends.
 * The host keeps one sleep per run (op "timer"), cleared when the run ends, so nothing fires
 * outside a run and a setInterval loop cannot outlive its run.
 */

import { fetchClasses, type FetchClasses, type FetchDeps, type FetchPackages } from "./fetch-api.ts";

/** At most this many timers pending per run; one more throws a RangeError. */
export const MAX_TIMERS_PER_RUN = 10_000;
/** Web Crypto's limit for getRandomValues; digests and HMAC take at most MAX_CRYPTO_INPUT. */
export const MAX_RANDOM_BYTES = 65_536;
export const MAX_CRYPTO_INPUT = 4 * 1024 * 1024;

export interface TimerRun {
  runId: string;
  ended: boolean;
  timers: Map<number, Timer>;
  /** The due time of the host sleep in flight, if any. */
  armedFor: number | undefined;
  log: (level: string, message: string) => void;
}

interface Timer {
  id: number;
  due: number;
  fn: (...args: unknown[]) => void;
  args: unknown[];
  interval: number | undefined;
}

export interface WebHost {
  /** Asks the host to wake the run after `ms`; resolves true when it did (false: superseded). */
  sleep(run: TimerRun, ms: number): Promise<unknown>;
  /** Synchronous host call: `n` random bytes as base64. */
  randomBytes(n: number): string;
  /** The URL bundle's code (url.ts), asked for the first time a plugin touches URL. */
  urlCode(): string;
  /** Asynchronous host call for crypto.subtle. */
  crypto(op: string, args: unknown[]): Promise<unknown>;
  currentRun(): TimerRun | undefined;
  /** Every run in flight in this isolate (clearTimeout looks for the id in each). */
  liveRuns(): TimerRun[];
  enterRun(run: TimerRun | undefined): void;
}

const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const B64_INDEX = new Int16Array(128).fill(-1);
for (let i = 0; i < 64; i++) B64_INDEX[B64.charCodeAt(i)] = i;

export function bytesToBase64(bytes: Uint8Array): string {
  let out = "";
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out += B64[n >> 18]! + B64[(n >> 12) & 63]! + B64[(n >> 6) & 63]! + B64[n & 63]!;
  }
  if (i < bytes.length) {
    const n = (bytes[i]! << 16) | ((bytes[i + 1] ?? 0) << 8);
    out += B64[n >> 18]! + B64[(n >> 12) & 63]! + (i + 1 < bytes.length ? B64[(n >> 6) & 63]! : "=") + "=";
  }
  return out;
}

/** The HTML spec's forgiving-base64 decode; null on failure. */
export function base64ToBytes(input: string): Uint8Array | null {
  let data = input.replace(/[\t\n\f\r ]/g, "");
  if (data.length % 4 === 0) data = data.replace(/==?$/, "");
  if (data.length % 4 === 1 || /[^A-Za-z0-9+/]/.test(data)) return null;
  const out = new Uint8Array(Math.floor((data.length * 3) / 4));
  let buffer = 0;
  let bits = 0;
  let j = 0;
  for (let i = 0; i < data.length; i++) {
    buffer = (buffer << 6) | B64_INDEX[data.charCodeAt(i)]!;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[j++] = (buffer >> bits) & 255;
    }
  }
  return out;
}

function domException(message: string, name: string): Error {
  const error = new Error(message);
  error.name = name;
  return error;
}

function invalidCharacter(message: string): Error {
  return domException(message, "InvalidCharacterError");
}

export function btoa(data: unknown): string {
  const text = String(data);
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code > 255) throw invalidCharacter("btoa: the string contains characters outside of the Latin1 range");
    bytes[i] = code;
  }
  return bytesToBase64(bytes);
}

export function atob(data: unknown): string {
  const bytes = base64ToBytes(String(data));
  if (bytes === null) throw invalidCharacter("atob: the string to be decoded is not correctly encoded");
  let out = "";
  for (let i = 0; i < bytes.length; i += 8192) out += String.fromCharCode(...bytes.subarray(i, i + 8192));
  return out;
}

/** Bytes of a BufferSource (an ArrayBuffer or any view). */
export function bytesOf(source: unknown, what = "data"): Uint8Array {
  if (source instanceof ArrayBuffer) return new Uint8Array(source);
  if (ArrayBuffer.isView(source)) return new Uint8Array(source.buffer, source.byteOffset, source.byteLength);
  throw new TypeError(`${what} must be an ArrayBuffer or an ArrayBufferView`);
}

function encodeUtf8(text: string, out: Uint8Array): { read: number; written: number } {
  let j = 0;
  let i = 0;
  for (; i < text.length; i++) {
    let code = text.charCodeAt(i);
    let units = 1;
    if (code >= 0xd800 && code <= 0xdfff) {
      const next = text.charCodeAt(i + 1);
      if (code <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
        code = 0x10000 + ((code - 0xd800) << 10) + (next - 0xdc00);
        units = 2;
      } else code = 0xfffd;
    }
    const size = code < 0x80 ? 1 : code < 0x800 ? 2 : code < 0x10000 ? 3 : 4;
    if (j + size > out.length) break;
    if (size === 1) out[j++] = code;
    else if (size === 2) {
      out[j++] = 0xc0 | (code >> 6);
      out[j++] = 0x80 | (code & 63);
    } else if (size === 3) {
      out[j++] = 0xe0 | (code >> 12);
      out[j++] = 0x80 | ((code >> 6) & 63);
      out[j++] = 0x80 | (code & 63);
    } else {
      out[j++] = 0xf0 | (code >> 18);
      out[j++] = 0x80 | ((code >> 12) & 63);
      out[j++] = 0x80 | ((code >> 6) & 63);
      out[j++] = 0x80 | (code & 63);
    }
    i += units - 1;
  }
  return { read: i, written: j };
}

function latin1(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; i += 8192) out += String.fromCharCode(...bytes.subarray(i, i + 8192));
  return out;
}

export function structuredClone<T>(value: T, options?: { transfer?: unknown[] }): T {
  if (options?.transfer !== undefined && options.transfer.length > 0) throw domException("structuredClone: transfer is not supported in hookd", "DataCloneError");
  const seen = new Map<unknown, unknown>();
  const clone = (input: unknown): unknown => {
    if (typeof input === "function" || typeof input === "symbol") throw domException(`${String(input)} could not be cloned.`, "DataCloneError");
    if (typeof input !== "object" || input === null) return input;
    if (seen.has(input)) return seen.get(input);
    const tag = Object.prototype.toString.call(input).slice(8, -1);
    let out: unknown;
    switch (tag) {
      case "Date":
        out = new Date((input as Date).getTime());
        break;
      case "RegExp":
        out = new RegExp((input as RegExp).source, (input as RegExp).flags);
        break;
      case "Boolean":
      case "Number":
      case "String":
      case "BigInt":
        out = Object((input as { valueOf(): unknown }).valueOf());
        break;
      case "ArrayBuffer":
        out = (input as ArrayBuffer).slice(0);
        break;
      case "DataView": {
        const view = input as DataView;
        out = new DataView(clone(view.buffer) as ArrayBuffer, view.byteOffset, view.byteLength);
        break;
      }
      case "Map": {
        const map = new Map();
        seen.set(input, map);
        for (const [k, v] of input as Map<unknown, unknown>) map.set(clone(k), clone(v));
        return map;
      }
      case "Set": {
        const set = new Set();
        seen.set(input, set);
        for (const v of input as Set<unknown>) set.add(clone(v));
        return set;
      }
      case "Error": {
        const source = input as Error;
        const ctor = ({ EvalError, RangeError, ReferenceError, SyntaxError, TypeError, URIError } as Record<string, ErrorConstructor>)[String(source.name)] ?? Error;
        const error = new ctor(source.message);
        seen.set(input, error);
        if (typeof source.stack === "string") error.stack = source.stack;
        if ("cause" in source) (error as { cause?: unknown }).cause = clone(source.cause);
        return error;
      }
      case "Array": {
        const array: unknown[] = new Array((input as unknown[]).length);
        seen.set(input, array);
        for (const key of Object.keys(input as object)) (array as unknown as Record<string, unknown>)[key] = clone((input as Record<string, unknown>)[key]);
        return array;
      }
      case "Object": {
        const object: Record<string, unknown> = {};
        seen.set(input, object);
        for (const key of Object.keys(input as object)) object[key] = clone((input as Record<string, unknown>)[key]);
        return object;
      }
      default:
        if (ArrayBuffer.isView(input)) {
          const view = input as unknown as { buffer: ArrayBuffer; byteOffset: number; length: number; constructor: new (b: ArrayBuffer, o: number, l: number) => unknown };
          out = new view.constructor(clone(view.buffer) as ArrayBuffer, view.byteOffset, view.length);
          break;
        }
        throw domException(`${tag} object could not be cloned.`, "DataCloneError");
    }
    seen.set(input, out);
    return out;
  };
  return clone(value) as T;
}


/** Where errors thrown by listeners and timer callbacks go (the run's log); set by the runtime. */
let reportError: (error: unknown) => void = () => undefined;
export function setErrorReporter(fn: (error: unknown) => void): void {
  reportError = fn;
}

const LAZY_NAMES = ["TextEncoder", "TextDecoder", "Event", "EventTarget", "AbortController", "AbortSignal", "Headers", "crypto"] as const;
type LazyName = (typeof LAZY_NAMES)[number];

// ---------------------------------------------------------------- timers, crypto, console

export function installWeb(host: WebHost): { fetch: () => FetchClasses } {
  const global = globalThis as Record<string, unknown>;
  let nextId = 1;

  const wake = (run: TimerRun): void => {
    run.armedFor = undefined;
    if (run.ended) return;
    const now = Date.now();
    const due = [...run.timers.values()].filter((timer) => timer.due <= now).sort((a, b) => a.due - b.due || a.id - b.id);
    for (const timer of due) {
      if (run.ended || !run.timers.has(timer.id)) continue;
      if (timer.interval === undefined) run.timers.delete(timer.id);
      else timer.due = Date.now() + timer.interval;
      host.enterRun(run);
      try {
        timer.fn(...timer.args);
      } catch (error) {
        reportError(error);
      }
    }
    arm(run);
  };

  const arm = (run: TimerRun): void => {
    if (run.ended || run.timers.size === 0) return;
    let next = Infinity;
    for (const timer of run.timers.values()) if (timer.due < next) next = timer.due;
    if (run.armedFor !== undefined && run.armedFor <= next) return;
    run.armedFor = next;
    host.sleep(run, Math.max(0, next - Date.now())).then((fired) => {
      if (fired === true) wake(run);
    }, () => undefined);
  };

  const addTimer = (fn: unknown, ms: unknown, args: unknown[], repeat: boolean): number => {
    const run = host.currentRun();
    const id = nextId++;
    if (typeof fn !== "function") {
      if (typeof fn === "string") throw new TypeError("setTimeout with a string of code is not supported");
      throw new TypeError("the callback must be a function");
    }
    // Outside a run (top-level code) a timer could only fire later, outside any run: it never does.
    if (!run || run.ended) return id;
    if (run.timers.size >= MAX_TIMERS_PER_RUN) throw new RangeError(`a run may have at most ${MAX_TIMERS_PER_RUN} timers pending`);
    const delay = Math.max(0, Number(ms) || 0);
    run.timers.set(id, { id, due: Date.now() + delay, fn: fn as Timer["fn"], args, interval: repeat ? Math.max(1, delay) : undefined });
    arm(run);
    return id;
  };
  const clear = (id: unknown): void => {
    const key = Number(id);
    for (const run of host.liveRuns()) if (run.timers.delete(key)) return;
  };

  const define = (name: string, value: unknown) => Object.defineProperty(global, name, { value, writable: true, configurable: true, enumerable: false });
  define("setTimeout", (fn: unknown, ms?: unknown, ...args: unknown[]) => addTimer(fn, ms, args, false));
  define("setInterval", (fn: unknown, ms?: unknown, ...args: unknown[]) => addTimer(fn, ms, args, true));
  define("clearTimeout", clear);
  define("clearInterval", clear);
  const resolved = Promise.resolve();
  define("queueMicrotask", (fn: unknown) => {
    if (typeof fn !== "function") throw new TypeError("queueMicrotask: the callback must be a function");
    const run = host.currentRun();
    void resolved.then(() => {
      host.enterRun(run);
      try {
        (fn as () => void)();
      } catch (error) {
        reportError(error);
      }
    });
  });

  define("atob", atob);
  define("btoa", btoa);
  define("structuredClone", structuredClone);
  const origin = Date.now();
  define("performance", Object.freeze({ timeOrigin: origin, now: () => Date.now() - origin, toJSON: () => ({ timeOrigin: origin }) }));
  // The classes are made on first touch of any of them: an isolate that never uses them skips
  // their cost at start-up (it is evaluated for every plugin).
  let classes: Record<LazyName, unknown> | undefined;
  const lazyGlobal = (name: string, value: () => unknown) =>
    Object.defineProperty(global, name, { configurable: true, enumerable: false, get: () => value(), set: (replaced: unknown) => define(name, replaced) });
  const ensureClasses = (): Record<LazyName, unknown> => {
    if (classes === undefined) {
      classes = webClasses(host, (fn, ms) => addTimer(fn, ms, [], false));
      for (const each of LAZY_NAMES) define(each, classes[each]);
    }
    return classes;
  };
  for (const name of LAZY_NAMES) lazyGlobal(name, () => ensureClasses()[name]);

  // URL, URLSearchParams, Blob, File, FormData and the streams are evaluated on first touch
  // (see url.ts): most plugins never pay.
  const FunctionCtor = Function;
  let urlModule: (FetchPackages & Record<PackageName, unknown>) | undefined;
  const loadUrl = () => {
    if (urlModule === undefined) {
      const code = host.urlCode();
      urlModule = new FunctionCtor(`${code}\nreturn __hookdUrl;`)() as FetchPackages & Record<PackageName, unknown>;
      for (const name of PACKAGE_NAMES) define(name, urlModule[name]);
    }
    return urlModule;
  };
  for (const name of PACKAGE_NAMES) lazyGlobal(name, () => loadUrl()[name]);

  // Request and Response (fetch-api.ts), made on first touch, from the classes above.
  let fetchApi: FetchClasses | undefined;
  const loadFetch = (): FetchClasses => {
    if (fetchApi === undefined) {
      fetchApi = fetchClasses({
        ...(ensureClasses() as unknown as Pick<FetchDeps, "Headers" | "AbortController" | "TextEncoder" | "TextDecoder">),
        base64ToBytes: (text) => base64ToBytes(text) ?? new Uint8Array(0),
        packages: loadUrl,
        loadedPackages: () => urlModule,
      });
      define("Request", fetchApi.Request);
      define("Response", fetchApi.Response);
    }
    return fetchApi;
  };
  for (const name of ["Request", "Response"] as const) lazyGlobal(name, () => loadFetch()[name]);
  return { fetch: loadFetch };
}

/** The globals that come from the bundled packages (url.ts, fetch-packages.ts). */
const PACKAGE_NAMES = ["URL", "URLSearchParams", "Blob", "File", "FormData", "ReadableStream", "WritableStream", "TransformStream"] as const;
type PackageName = (typeof PACKAGE_NAMES)[number];

/** How many bytes at the end of `bytes` start a UTF-8 sequence that more bytes could still finish. */
function utf8Tail(bytes: Uint8Array): number {
  for (let back = 1; back <= 3 && back <= bytes.length; back++) {
    const lead = bytes[bytes.length - back]!;
    if (lead >= 0x80 && lead < 0xc0) continue;
    const need = lead >= 0xc2 && lead <= 0xdf ? 2 : lead >= 0xe0 && lead <= 0xef ? 3 : lead >= 0xf0 && lead <= 0xf4 ? 4 : 1;
    if (need <= back) return 0;
    // The second byte's range depends on the lead (no overlongs, no surrogates, nothing past U+10FFFF).
    const second = bytes[bytes.length - back + 1];
    if (second !== undefined) {
      const lower = lead === 0xe0 ? 0xa0 : lead === 0xf0 ? 0x90 : 0x80;
      const upper = lead === 0xed ? 0x9f : lead === 0xf4 ? 0x8f : 0xbf;
      if (second < lower || second > upper) return 0;
    }
    return back;
  }
  return 0;
}

/** The odd byte at the end, and a lead surrogate that the next unit may complete. */
function utf16Tail(bytes: Uint8Array, bigEndian: boolean): number {
  const odd = bytes.length % 2;
  const end = bytes.length - odd;
  if (end >= 2) {
    const unit = bigEndian ? (bytes[end - 2]! << 8) | bytes[end - 1]! : bytes[end - 2]! | (bytes[end - 1]! << 8);
    if (unit >= 0xd800 && unit <= 0xdbff) return odd + 2;
  }
  return odd;
}

/** The web classes and the crypto object, made once per isolate, on first touch. */
function webClasses(host: WebHost, timeout: (fn: () => void, ms: number) => void): Record<LazyName, unknown> {
  class TextEncoder {
    get encoding(): string {
      return "utf-8";
    }
    encode(input: unknown = ""): Uint8Array {
      const text = String(input);
      const out = new Uint8Array(text.length * 3);
      return out.slice(0, encodeUtf8(text, out).written);
    }
    encodeInto(input: unknown, destination: Uint8Array): { read: number; written: number } {
      return encodeUtf8(String(input), destination);
    }
  }

  const ENCODING_LABELS: Record<string, string> = {
    "utf-8": "utf-8", utf8: "utf-8", "unicode-1-1-utf-8": "utf-8", "unicode11utf8": "utf-8", "unicode20utf8": "utf-8", "x-unicode20utf8": "utf-8",
    "utf-16le": "utf-16le", "utf-16": "utf-16le", ucs2: "utf-16le", "ucs-2": "utf-16le", csunicode: "utf-16le", "iso-10646-ucs-2": "utf-16le", "unicodefeff": "utf-16le",
    "utf-16be": "utf-16be", unicodefffe: "utf-16be",
    latin1: "windows-1252", "iso-8859-1": "windows-1252", ascii: "windows-1252", "us-ascii": "windows-1252", "windows-1252": "windows-1252",
  };

  class TextDecoder {
    readonly encoding: string;
    readonly fatal: boolean;
    readonly ignoreBOM: boolean;
    constructor(label: unknown = "utf-8", options: { fatal?: boolean; ignoreBOM?: boolean } = {}) {
      const encoding = ENCODING_LABELS[String(label).trim().toLowerCase()];
      if (encoding === undefined) throw new RangeError(`The "${String(label)}" encoding is not supported`);
      this.encoding = encoding;
      this.fatal = Boolean(options?.fatal);
      this.ignoreBOM = Boolean(options?.ignoreBOM);
    }
    /** Bytes of an unfinished sequence kept from the last `stream: true` call; whether the BOM was seen. */
    #pending: Uint8Array | undefined = undefined;
    #started = false;
    decode(input?: unknown, options?: { stream?: boolean }): string {
      let bytes = input === undefined ? new Uint8Array(0) : bytesOf(input, "TextDecoder.decode: input");
      const stream = Boolean(options?.stream);
      if (this.#pending !== undefined) {
        const joined = new Uint8Array(this.#pending.length + bytes.length);
        joined.set(this.#pending);
        joined.set(bytes, this.#pending.length);
        bytes = joined;
        this.#pending = undefined;
      }
      if (stream) {
        const keep = this.encoding === "utf-8" ? utf8Tail(bytes) : this.encoding === "windows-1252" ? 0 : utf16Tail(bytes, this.encoding === "utf-16be");
        if (keep > 0) {
          this.#pending = bytes.slice(bytes.length - keep);
          bytes = bytes.subarray(0, bytes.length - keep);
        }
      }
      // The BOM is looked for once per stream: at its first bytes.
      const ignoreBOM = this.ignoreBOM || (this.#started && bytes.length > 0);
      if (bytes.length > 0 || !stream) this.#started = stream;
      if (this.encoding === "utf-8") return this.utf8(bytes, ignoreBOM);
      if (this.encoding === "windows-1252") return latin1(bytes);
      return this.utf16(bytes, this.encoding === "utf-16be", ignoreBOM);
    }
    private fail(): string {
      throw new TypeError(`The encoded data was not valid for encoding ${this.encoding}`);
    }
    private utf8(bytes: Uint8Array, ignoreBOM: boolean): string {
      let i = !ignoreBOM && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
      const units: number[] = [];
      let out = "";
      while (i < bytes.length) {
        const b = bytes[i]!;
        let code = -1;
        let need = 0;
        let lower = 0x80;
        let upper = 0xbf;
        if (b < 0x80) code = b;
        else if (b >= 0xc2 && b <= 0xdf) (need = 1), (code = b & 0x1f);
        else if (b >= 0xe0 && b <= 0xef) {
          need = 2;
          code = b & 0xf;
          if (b === 0xe0) lower = 0xa0;
          if (b === 0xed) upper = 0x9f;
        } else if (b >= 0xf0 && b <= 0xf4) {
          need = 3;
          code = b & 0x7;
          if (b === 0xf0) lower = 0x90;
          if (b === 0xf4) upper = 0x8f;
        }
        i++;
        if (code < 0) {
          if (this.fatal) this.fail();
          units.push(0xfffd);
        } else {
          let ok = true;
          for (let k = 0; k < need; k++) {
            const c = bytes[i];
            if (c === undefined || c < lower || c > upper) {
              ok = false;
              break;
            }
            lower = 0x80;
            upper = 0xbf;
            code = (code << 6) | (c & 0x3f);
            i++;
          }
          if (!ok) {
            if (this.fatal) this.fail();
            units.push(0xfffd);
          } else if (code >= 0x10000) {
            code -= 0x10000;
            units.push(0xd800 + (code >> 10), 0xdc00 + (code & 0x3ff));
          } else units.push(code);
        }
        if (units.length >= 8192) {
          out += String.fromCharCode(...units);
          units.length = 0;
        }
      }
      return out + String.fromCharCode(...units);
    }
    private utf16(bytes: Uint8Array, bigEndian: boolean, ignoreBOM: boolean): string {
      const codes: number[] = [];
      let out = "";
      let i = 0;
      const unit = (at: number) => (bigEndian ? (bytes[at]! << 8) | bytes[at + 1]! : bytes[at]! | (bytes[at + 1]! << 8));
      if (!ignoreBOM && bytes.length >= 2 && unit(0) === 0xfeff) i = 2;
      for (; i + 1 < bytes.length; i += 2) {
        const code = unit(i);
        if (code >= 0xd800 && code <= 0xdbff) {
          const next = i + 3 < bytes.length ? unit(i + 2) : -1;
          if (next >= 0xdc00 && next <= 0xdfff) {
            codes.push(code, next);
            i += 2;
          } else {
            if (this.fatal) this.fail();
            codes.push(0xfffd);
            // A lead surrogate with at most an odd byte after it: one error for both, as in the spec.
            if (next < 0) {
              i = bytes.length;
              break;
            }
          }
        } else if (code >= 0xdc00 && code <= 0xdfff) {
          if (this.fatal) this.fail();
          codes.push(0xfffd);
        } else codes.push(code);
        if (codes.length >= 8192) {
          out += String.fromCharCode(...codes);
          codes.length = 0;
        }
      }
      if (i < bytes.length) {
        if (this.fatal) this.fail();
        codes.push(0xfffd);
      }
      return out + String.fromCharCode(...codes);
    }
  }

  // ---------------------------------------------------------------- events and abort

  class Event {
    readonly type: string;
    readonly bubbles: boolean;
    readonly cancelable: boolean;
    readonly timeStamp = Date.now();
    defaultPrevented = false;
    target: EventTarget | null = null;
    currentTarget: EventTarget | null = null;
    /** @internal */ stopped = false;
    constructor(type: unknown, init: { bubbles?: boolean; cancelable?: boolean } = {}) {
      if (arguments.length === 0) throw new TypeError("Event: the type argument is required");
      this.type = String(type);
      this.bubbles = Boolean(init?.bubbles);
      this.cancelable = Boolean(init?.cancelable);
    }
    preventDefault(): void {
      if (this.cancelable) this.defaultPrevented = true;
    }
    stopImmediatePropagation(): void {
      this.stopped = true;
    }
    stopPropagation(): void {}
    composedPath(): EventTarget[] {
      return this.currentTarget ? [this.currentTarget] : [];
    }
  }

  type Listener = ((event: Event) => void) | { handleEvent(event: Event): void };
  interface ListenerEntry {
    listener: Listener;
    once: boolean;
    removed: boolean;
  }

  const listenersOf = new WeakMap<EventTarget, Map<string, ListenerEntry[]>>();

  class EventTarget {
    constructor() {
      listenersOf.set(this, new Map());
    }
    addEventListener(type: unknown, listener: Listener | null, options?: boolean | { once?: boolean; signal?: AbortSignal }): void {
      if (listener === null || listener === undefined) return;
      const map = listenersOf.get(this)!;
      const name = String(type);
      const list = map.get(name) ?? [];
      if (list.some((entry) => entry.listener === listener)) return;
      const signal = typeof options === "object" ? options.signal : undefined;
      if (signal?.aborted) return;
      const entry = { listener, once: typeof options === "object" && Boolean(options.once), removed: false };
      list.push(entry);
      map.set(name, list);
      signal?.addEventListener("abort", () => this.removeEventListener(name, listener));
    }
    removeEventListener(type: unknown, listener: Listener | null): void {
      const list = listenersOf.get(this)!.get(String(type));
      if (!list) return;
      const at = list.findIndex((entry) => entry.listener === listener);
      if (at >= 0) {
        list[at]!.removed = true;
        list.splice(at, 1);
      }
    }
    dispatchEvent(event: Event): boolean {
      if (!(event instanceof Event)) throw new TypeError("dispatchEvent: the argument must be an Event");
      event.target = this;
      event.currentTarget = this;
      const list = [...(listenersOf.get(this)!.get(event.type) ?? [])];
      const handler = (this as unknown as Record<string, unknown>)[`on${event.type}`];
      for (const entry of list) {
        if (entry.removed) continue;
        if (entry.once) this.removeEventListener(event.type, entry.listener);
        try {
          if (typeof entry.listener === "function") entry.listener.call(this, event);
          else entry.listener.handleEvent(event);
        } catch (error) {
          reportError(error);
        }
        if (event.stopped) break;
      }
      if (typeof handler === "function" && !event.stopped) {
        try {
          handler.call(this, event);
        } catch (error) {
          reportError(error);
        }
      }
      event.currentTarget = null;
      return !event.defaultPrevented;
    }
  }
  const abortTimeout = (signal: AbortSignal, ms: number): void => {
      timeout(() => abortSignal(signal, domException("The operation was aborted due to timeout", "TimeoutError")), ms);
    };

  class AbortSignal extends EventTarget {
    aborted = false;
    reason: unknown = undefined;
    onabort: ((event: Event) => void) | null = null;
    throwIfAborted(): void {
      if (this.aborted) throw this.reason;
    }
    static abort(reason?: unknown): AbortSignal {
      const signal = new AbortSignal();
      abortSignal(signal, reason === undefined ? domException("This operation was aborted", "AbortError") : reason);
      return signal;
    }
    static timeout(ms: number): AbortSignal {
      const signal = new AbortSignal();
      abortTimeout(signal, Number(ms));
      return signal;
    }
    static any(signals: AbortSignal[]): AbortSignal {
      const signal = new AbortSignal();
      for (const source of signals) {
        if (source.aborted) {
          abortSignal(signal, source.reason);
          return signal;
        }
      }
      for (const source of signals) source.addEventListener("abort", () => abortSignal(signal, source.reason), { once: true });
      return signal;
    }
  }

  function abortSignal(signal: AbortSignal, reason: unknown): void {
    if (signal.aborted) return;
    signal.aborted = true;
    signal.reason = reason;
    signal.dispatchEvent(new Event("abort"));
  }

  class AbortController {
    readonly signal = new AbortSignal();
    abort(reason?: unknown): void {
      abortSignal(this.signal, reason === undefined ? domException("This operation was aborted", "AbortError") : reason);
    }
  }

  // ---------------------------------------------------------------- crypto

  const DIGESTS: Record<string, string> = { "SHA-1": "sha1", "SHA-256": "sha256", "SHA-384": "sha384", "SHA-512": "sha512" };

  function hashName(algorithm: unknown): string {
    const name = typeof algorithm === "string" ? algorithm : (algorithm as { name?: unknown } | null)?.name;
    const key = String(name).toUpperCase();
    if (DIGESTS[key] === undefined) throw domException(`Unrecognized algorithm name: ${String(name)}`, "NotSupportedError");
    return key;
  }

  class CryptoKey {
    readonly type = "secret";
    constructor(
      readonly algorithm: { name: "HMAC"; hash: { name: string }; length: number } | { name: "AES-GCM"; length: number },
      readonly extractable: boolean,
      readonly usages: string[],
    ) {}
  }
  const keyBytes = new WeakMap<CryptoKey, Uint8Array>();

  function cryptoInput(data: unknown): string {
    const bytes = bytesOf(data);
    if (bytes.length > MAX_CRYPTO_INPUT) throw domException(`crypto input of ${bytes.length} bytes is over hookd's limit of ${MAX_CRYPTO_INPUT}`, "QuotaExceededError");
    return bytesToBase64(bytes);
  }

  function bufferOf(base64: unknown): ArrayBuffer {
    const bytes = base64ToBytes(String(base64))!;
    return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  }

  function makeCrypto(): object {
    const aesGcm = async (op: "encrypt" | "decrypt", algorithm: unknown, key: unknown, data: unknown): Promise<ArrayBuffer> => {
      const params = (algorithm ?? {}) as { name?: unknown; iv?: unknown; additionalData?: unknown; tagLength?: unknown };
      if (String(params.name).toUpperCase() !== "AES-GCM") throw domException(`${op}: only AES-GCM is supported in hookd`, "NotSupportedError");
      if (!(key instanceof CryptoKey) || key.algorithm.name !== "AES-GCM") throw domException("the key is not an AES-GCM CryptoKey", "InvalidAccessError");
      if (!key.usages.includes(op)) throw domException(`the key does not allow ${op}`, "InvalidAccessError");
      const tagLength = params.tagLength === undefined ? 128 : Number(params.tagLength);
      if (![32, 64, 96, 104, 112, 120, 128].includes(tagLength)) throw domException("AES-GCM: invalid tagLength", "OperationError");
      const iv = bytesOf(params.iv, "iv");
      // Node's Web Crypto refuses an iv under 96 bits, and so does hookd (NIST SP 800-38D's size).
      if (iv.length < 12) throw domException("AES-GCM: the iv must be at least 12 bytes", "OperationError");
      const aad = params.additionalData === undefined ? "" : cryptoInput(params.additionalData);
      try {
        return bufferOf(await host.crypto("aesgcm", [op, bytesToBase64(keyBytes.get(key)!), bytesToBase64(iv), aad, tagLength, cryptoInput(data)]));
      } catch (error) {
        throw domException(op === "decrypt" ? "The operation failed for an operation-specific reason" : String((error as Error)?.message), "OperationError");
      }
    };
    const hmacKey = (key: unknown, usage: string): CryptoKey => {
      if (!(key instanceof CryptoKey) || key.algorithm.name !== "HMAC") throw domException("the key is not an HMAC CryptoKey", "InvalidAccessError");
      if (!key.usages.includes(usage)) throw domException(`the key does not allow ${usage}`, "InvalidAccessError");
      return key;
    };
    const sign = async (key: CryptoKey, data: unknown): Promise<ArrayBuffer> =>
      bufferOf(await host.crypto("hmac", [DIGESTS[(key.algorithm as { hash: { name: string } }).hash.name], bytesToBase64(keyBytes.get(key)!), cryptoInput(data)]));
    const subtle = Object.freeze({
      async digest(algorithm: unknown, data: unknown): Promise<ArrayBuffer> {
        return bufferOf(await host.crypto("digest", [DIGESTS[hashName(algorithm)], cryptoInput(data)]));
      },
      async importKey(format: unknown, keyData: unknown, algorithm: unknown, extractable: unknown, usages: unknown): Promise<CryptoKey> {
        const algo = (typeof algorithm === "string" ? { name: algorithm } : algorithm) as { name?: unknown; hash?: unknown; length?: unknown };
        if (String(algo?.name).toUpperCase() === "AES-GCM") {
          if (format !== "raw") throw domException("importKey: only the raw format is supported in hookd", "NotSupportedError");
          const bytes = bytesOf(keyData, "keyData").slice();
          if (bytes.length !== 16 && bytes.length !== 24 && bytes.length !== 32) throw domException("importKey: an AES key is 128, 192 or 256 bits", "DataError");
          const list = Array.isArray(usages) ? usages.map(String) : [];
          for (const usage of list) if (usage !== "encrypt" && usage !== "decrypt") throw new SyntaxError(`importKey: an AES-GCM key cannot be used to ${usage}`);
          const key = new CryptoKey({ name: "AES-GCM", length: bytes.length * 8 }, Boolean(extractable), list);
          keyBytes.set(key, bytes);
          return key;
        }
        if (String(algo?.name).toUpperCase() !== "HMAC") throw domException(`importKey: only HMAC and AES-GCM keys are supported in hookd (got ${String(algo?.name)})`, "NotSupportedError");
        if (format !== "raw") throw domException("importKey: only the raw format is supported in hookd", "NotSupportedError");
        const bytes = bytesOf(keyData, "keyData").slice();
        if (bytes.length === 0) throw domException("importKey: the key is empty", "DataError");
        const list = Array.isArray(usages) ? usages.map(String) : [];
        for (const usage of list) if (usage !== "sign" && usage !== "verify") throw new SyntaxError(`importKey: an HMAC key cannot be used to ${usage}`);
        const key = new CryptoKey({ name: "HMAC", hash: { name: hashName(algo.hash) }, length: bytes.length * 8 }, Boolean(extractable), list);
        keyBytes.set(key, bytes);
        return key;
      },
      async exportKey(format: unknown, key: unknown): Promise<ArrayBuffer> {
        if (!(key instanceof CryptoKey) || !key.extractable) throw domException("the key is not extractable", "InvalidAccessError");
        if (format !== "raw") throw domException("exportKey: only the raw format is supported in hookd", "NotSupportedError");
        return keyBytes.get(key)!.slice().buffer;
      },
      async encrypt(algorithm: unknown, key: unknown, data: unknown): Promise<ArrayBuffer> {
        return aesGcm("encrypt", algorithm, key, data);
      },
      async decrypt(algorithm: unknown, key: unknown, data: unknown): Promise<ArrayBuffer> {
        return aesGcm("decrypt", algorithm, key, data);
      },
      async sign(_algorithm: unknown, key: unknown, data: unknown): Promise<ArrayBuffer> {
        return sign(hmacKey(key, "sign"), data);
      },
      async verify(_algorithm: unknown, key: unknown, signature: unknown, data: unknown): Promise<boolean> {
        const expected = new Uint8Array(await sign(hmacKey(key, "verify"), data));
        const given = bytesOf(signature, "signature");
        if (given.length !== expected.length) return false;
        let diff = 0;
        for (let i = 0; i < given.length; i++) diff |= given[i]! ^ expected[i]!;
        return diff === 0;
      },
    });
    const getRandomValues = <T extends ArrayBufferView | null>(array: T): T => {
      if (!(array instanceof Int8Array || array instanceof Uint8Array || array instanceof Uint8ClampedArray || array instanceof Int16Array || array instanceof Uint16Array || array instanceof Int32Array || array instanceof Uint32Array || array instanceof BigInt64Array || array instanceof BigUint64Array)) {
        throw domException("getRandomValues: the argument must be an integer typed array", "TypeMismatchError");
      }
      if (array.byteLength > MAX_RANDOM_BYTES) throw domException(`getRandomValues: ${array.byteLength} bytes is more than ${MAX_RANDOM_BYTES}`, "QuotaExceededError");
      if (array.byteLength === 0) return array;
      bytesOf(array).set(base64ToBytes(host.randomBytes(array.byteLength))!);
      return array;
    };
    const randomUUID = (): string => {
      const bytes = getRandomValues(new Uint8Array(16));
      bytes[6] = (bytes[6]! & 0x0f) | 0x40;
      bytes[8] = (bytes[8]! & 0x3f) | 0x80;
      let hex = "";
      for (let i = 0; i < 16; i++) hex += (bytes[i]! + 0x100).toString(16).slice(1);
      return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
    };
    return Object.freeze({ subtle, getRandomValues, randomUUID });
  }

  const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
  const headerName = (name: unknown): string => {
    const text = String(name);
    if (!TOKEN.test(text)) throw new TypeError(`Headers: invalid header name: "${text}"`);
    return text.toLowerCase();
  };
  const headerValue = (value: unknown): string => {
    const text = String(value).replace(/^[\t\n\r ]+|[\t\n\r ]+$/g, "");
    if (/[\0\r\n]/.test(text)) throw new TypeError(`Headers: invalid header value`);
    return text;
  };
  /** The Fetch Standard's Headers: names lowercased, values joined with ", " (set-cookie kept apart). */
  class Headers {
    readonly #list: Array<[string, string]> = [];
    constructor(init?: unknown) {
      if (init === undefined || init === null) return;
      if (init instanceof Headers) {
        for (const [name, value] of init.#list) this.#list.push([name, value]);
      } else if (typeof (init as { [Symbol.iterator]?: unknown })[Symbol.iterator] === "function") {
        for (const pair of init as Iterable<unknown>) {
          const entry = [...(pair as Iterable<unknown>)];
          if (entry.length !== 2) throw new TypeError("Headers: each header must be a [name, value] pair");
          this.append(entry[0], entry[1]);
        }
      } else if (typeof init === "object") {
        for (const name of Object.keys(init)) this.append(name, (init as Record<string, unknown>)[name]);
      } else throw new TypeError("Headers: invalid init");
    }
    append(name: unknown, value: unknown): void {
      this.#list.push([headerName(name), headerValue(value)]);
    }
    delete(name: unknown): void {
      const key = headerName(name);
      for (let i = this.#list.length - 1; i >= 0; i--) if (this.#list[i]![0] === key) this.#list.splice(i, 1);
    }
    get(name: unknown): string | null {
      const key = headerName(name);
      const values = this.#list.filter(([n]) => n === key).map(([, v]) => v);
      return values.length === 0 ? null : values.join(", ");
    }
    getSetCookie(): string[] {
      return this.#list.filter(([n]) => n === "set-cookie").map(([, v]) => v);
    }
    has(name: unknown): boolean {
      const key = headerName(name);
      return this.#list.some(([n]) => n === key);
    }
    set(name: unknown, value: unknown): void {
      const key = headerName(name);
      const text = headerValue(value);
      const at = this.#list.findIndex(([n]) => n === key);
      if (at < 0) {
        this.#list.push([key, text]);
        return;
      }
      this.#list[at] = [key, text];
      for (let i = this.#list.length - 1; i > at; i--) if (this.#list[i]![0] === key) this.#list.splice(i, 1);
    }
    forEach(callback: (value: string, name: string, headers: Headers) => void, thisArg?: unknown): void {
      for (const [name, value] of this.entries()) callback.call(thisArg, value, name, this);
    }
    *entries(): IterableIterator<[string, string]> {
      const names = [...new Set(this.#list.map(([n]) => n))].sort();
      for (const name of names) {
        if (name === "set-cookie") for (const value of this.getSetCookie()) yield [name, value];
        else yield [name, this.get(name)!];
      }
    }
    *keys(): IterableIterator<string> {
      for (const [name] of this.entries()) yield name;
    }
    *values(): IterableIterator<string> {
      for (const [, value] of this.entries()) yield value;
    }
    [Symbol.iterator](): IterableIterator<[string, string]> {
      return this.entries();
    }
  }

  return { TextEncoder, TextDecoder, Event, EventTarget, AbortController, AbortSignal, Headers, crypto: makeCrypto() };
}
