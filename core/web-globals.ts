/**
 * The web globals a plugin's isolate has (sandbox/runtime/web.ts, url.ts), as the editor sees
 * them: `hookd types` writes this into hookd-env.d.ts, inside `declare global`, so plugin files
 * type-check against what hookd provides (the template's `lib` is ES2023: neither the DOM's
 * globals nor Node's). Kept apart from env-types.ts so the text can be tested on its own.
 */
export const WEB_GLOBALS = `
  // The web platform inside a plugin's isolate (see the README, "Inside the isolate").
  type HookdBufferSource = ArrayBuffer | ArrayBufferView;
  function setTimeout<A extends unknown[]>(handler: (...args: A) => void, timeout?: number, ...args: A): number;
  function setInterval<A extends unknown[]>(handler: (...args: A) => void, timeout?: number, ...args: A): number;
  function clearTimeout(id: number | undefined): void;
  function clearInterval(id: number | undefined): void;
  function queueMicrotask(callback: () => void): void;
  function structuredClone<T>(value: T, options?: { transfer?: never[] }): T;
  function atob(data: string): string;
  function btoa(data: string): string;
  interface TextEncoderEncodeIntoResult { read: number; written: number }
  class TextEncoder { readonly encoding: "utf-8"; encode(input?: string): Uint8Array; encodeInto(input: string, destination: Uint8Array): TextEncoderEncodeIntoResult }
  class TextDecoder {
    constructor(label?: string, options?: { fatal?: boolean; ignoreBOM?: boolean });
    readonly encoding: string; readonly fatal: boolean; readonly ignoreBOM: boolean;
    decode(input?: HookdBufferSource): string;
  }
  class URLSearchParams implements Iterable<[string, string]> {
    constructor(init?: string | Record<string, string> | Iterable<[string, string]> | URLSearchParams);
    readonly size: number;
    append(name: string, value: string): void; delete(name: string, value?: string): void; get(name: string): string | null;
    getAll(name: string): string[]; has(name: string, value?: string): boolean; set(name: string, value: string): void; sort(): void;
    forEach(callback: (value: string, key: string, parent: URLSearchParams) => void): void;
    keys(): IterableIterator<string>; values(): IterableIterator<string>; entries(): IterableIterator<[string, string]>;
    [Symbol.iterator](): IterableIterator<[string, string]>; toString(): string;
  }
  class URL {
    constructor(url: string | URL, base?: string | URL);
    static canParse(url: string | URL, base?: string | URL): boolean;
    static parse(url: string | URL, base?: string | URL): URL | null;
    href: string; readonly origin: string; protocol: string; username: string; password: string; host: string; hostname: string;
    port: string; pathname: string; search: string; readonly searchParams: URLSearchParams; hash: string; toString(): string; toJSON(): string;
  }
  class Headers implements Iterable<[string, string]> {
    constructor(init?: Headers | Record<string, string> | Iterable<[string, string]>);
    append(name: string, value: string): void; delete(name: string): void; get(name: string): string | null; getSetCookie(): string[];
    has(name: string): boolean; set(name: string, value: string): void; forEach(callback: (value: string, name: string, headers: Headers) => void): void;
    entries(): IterableIterator<[string, string]>; keys(): IterableIterator<string>; values(): IterableIterator<string>; [Symbol.iterator](): IterableIterator<[string, string]>;
  }
  class Event {
    constructor(type: string, init?: { bubbles?: boolean; cancelable?: boolean });
    readonly type: string; readonly bubbles: boolean; readonly cancelable: boolean; readonly defaultPrevented: boolean; readonly timeStamp: number;
    readonly target: EventTarget | null; readonly currentTarget: EventTarget | null;
    preventDefault(): void; stopPropagation(): void; stopImmediatePropagation(): void; composedPath(): EventTarget[];
  }
  type HookdListener = ((event: Event) => void) | { handleEvent(event: Event): void };
  class EventTarget {
    addEventListener(type: string, listener: HookdListener | null, options?: boolean | { once?: boolean; signal?: AbortSignal }): void;
    removeEventListener(type: string, listener: HookdListener | null): void;
    dispatchEvent(event: Event): boolean;
  }
  class AbortSignal extends EventTarget {
    readonly aborted: boolean; readonly reason: unknown; onabort: ((event: Event) => void) | null; throwIfAborted(): void;
    static abort(reason?: unknown): AbortSignal; static timeout(ms: number): AbortSignal; static any(signals: AbortSignal[]): AbortSignal;
  }
  class AbortController { readonly signal: AbortSignal; abort(reason?: unknown): void }
  interface CryptoKey { readonly type: "secret"; readonly extractable: boolean; readonly algorithm: { name: "HMAC"; hash: { name: string }; length: number } | { name: "AES-GCM"; length: number }; readonly usages: string[] }
  interface AesGcmParams { name: "AES-GCM"; iv: HookdBufferSource; additionalData?: HookdBufferSource; tagLength?: number }
  type HookdHash = "SHA-1" | "SHA-256" | "SHA-384" | "SHA-512";
  interface SubtleCrypto {
    digest(algorithm: HookdHash | { name: HookdHash }, data: HookdBufferSource): Promise<ArrayBuffer>;
    importKey(format: "raw", keyData: HookdBufferSource, algorithm: { name: "HMAC"; hash: HookdHash | { name: HookdHash } }, extractable: boolean, usages: Array<"sign" | "verify">): Promise<CryptoKey>;
    importKey(format: "raw", keyData: HookdBufferSource, algorithm: "AES-GCM" | { name: "AES-GCM" }, extractable: boolean, usages: Array<"encrypt" | "decrypt">): Promise<CryptoKey>;
    encrypt(algorithm: AesGcmParams, key: CryptoKey, data: HookdBufferSource): Promise<ArrayBuffer>;
    decrypt(algorithm: AesGcmParams, key: CryptoKey, data: HookdBufferSource): Promise<ArrayBuffer>;
    exportKey(format: "raw", key: CryptoKey): Promise<ArrayBuffer>;
    sign(algorithm: "HMAC" | { name: "HMAC" }, key: CryptoKey, data: HookdBufferSource): Promise<ArrayBuffer>;
    verify(algorithm: "HMAC" | { name: "HMAC" }, key: CryptoKey, signature: HookdBufferSource, data: HookdBufferSource): Promise<boolean>;
  }
  interface Crypto {
    readonly subtle: SubtleCrypto;
    getRandomValues<T extends Int8Array | Uint8Array | Uint8ClampedArray | Int16Array | Uint16Array | Int32Array | Uint32Array | BigInt64Array | BigUint64Array>(array: T): T;
    randomUUID(): \`\${string}-\${string}-\${string}-\${string}-\${string}\`;
  }
  var crypto: Crypto;
  var performance: { readonly timeOrigin: number; now(): number };
  var console: { log(...data: unknown[]): void; info(...data: unknown[]): void; warn(...data: unknown[]): void; error(...data: unknown[]): void; debug(...data: unknown[]): void; trace(...data: unknown[]): void };
`;
