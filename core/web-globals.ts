/**
 * The web globals a plugin's isolate has (sandbox/runtime/web.ts, url.ts), as the editor sees
 * them: `hookd types` writes this into hookd-globals.d.ts, inside `declare global`, and the
 * plugins' tsconfig.json it writes beside them sets `lib` to ES2023 and `types` to none, so
 * plugin files type-check against what hookd provides: neither the DOM's globals nor Node's. Kept apart from env-types.ts so the text can be tested on its own.
 */
export const WEB_GLOBALS = `
  // The web platform inside a plugin's isolate (see the README, "Inside the isolate").
  type HookdBufferSource = ArrayBuffer | ArrayBufferView;
  function setTimeout(handler: (_: void) => void, timeout?: number): number;
  function setTimeout<A extends unknown[]>(handler: (...args: A) => void, timeout?: number, ...args: A): number;
  function setInterval(handler: (_: void) => void, timeout?: number): number;
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
  // Blob, File, FormData and the streams (bundled packages); Request and Response (hookd's own).
  type BlobPart = string | ArrayBuffer | ArrayBufferView | Blob;
  interface BlobPropertyBag { type?: string; endings?: "transparent" | "native" }
  class Blob {
    constructor(parts?: BlobPart[], options?: BlobPropertyBag);
    readonly size: number; readonly type: string;
    slice(start?: number, end?: number, contentType?: string): Blob; text(): Promise<string>; arrayBuffer(): Promise<ArrayBuffer>; stream(): ReadableStream<Uint8Array>;
  }
  class File extends Blob {
    constructor(parts: BlobPart[], name: string, options?: BlobPropertyBag & { lastModified?: number });
    readonly name: string; readonly lastModified: number;
  }
  type FormDataEntryValue = string | File;
  class FormData implements Iterable<[string, FormDataEntryValue]> {
    append(name: string, value: string | Blob, fileName?: string): void; set(name: string, value: string | Blob, fileName?: string): void; delete(name: string): void;
    get(name: string): FormDataEntryValue | null; getAll(name: string): FormDataEntryValue[]; has(name: string): boolean;
    forEach(callback: (value: FormDataEntryValue, key: string, parent: FormData) => void): void;
    keys(): IterableIterator<string>; values(): IterableIterator<FormDataEntryValue>; entries(): IterableIterator<[string, FormDataEntryValue]>; [Symbol.iterator](): IterableIterator<[string, FormDataEntryValue]>;
  }
  type ReadableStreamReadResult<R> = { done: false; value: R } | { done: true; value?: undefined };
  interface ReadableStreamDefaultReader<R> { readonly closed: Promise<void>; read(): Promise<ReadableStreamReadResult<R>>; releaseLock(): void; cancel(reason?: unknown): Promise<void> }
  interface ReadableStreamDefaultController<R> { readonly desiredSize: number | null; enqueue(chunk: R): void; close(): void; error(reason?: unknown): void }
  interface QueuingStrategy<T> { highWaterMark?: number; size?(chunk: T): number }
  class ReadableStream<R = unknown> implements AsyncIterable<R> {
    constructor(source?: { start?(controller: ReadableStreamDefaultController<R>): unknown; pull?(controller: ReadableStreamDefaultController<R>): unknown; cancel?(reason?: unknown): unknown }, strategy?: QueuingStrategy<R>);
    readonly locked: boolean;
    getReader(): ReadableStreamDefaultReader<R>; cancel(reason?: unknown): Promise<void>; tee(): [ReadableStream<R>, ReadableStream<R>];
    pipeTo(destination: WritableStream<R>, options?: { preventClose?: boolean; preventAbort?: boolean; preventCancel?: boolean; signal?: AbortSignal }): Promise<void>;
    pipeThrough<T>(transform: { writable: WritableStream<R>; readable: ReadableStream<T> }): ReadableStream<T>;
    values(): AsyncIterableIterator<R>; [Symbol.asyncIterator](): AsyncIterableIterator<R>;
  }
  interface WritableStreamDefaultWriter<W> { readonly closed: Promise<void>; readonly ready: Promise<void>; readonly desiredSize: number | null; write(chunk: W): Promise<void>; close(): Promise<void>; abort(reason?: unknown): Promise<void>; releaseLock(): void }
  class WritableStream<W = unknown> {
    constructor(sink?: { start?(controller: unknown): unknown; write?(chunk: W, controller: unknown): unknown; close?(): unknown; abort?(reason?: unknown): unknown }, strategy?: QueuingStrategy<W>);
    readonly locked: boolean; getWriter(): WritableStreamDefaultWriter<W>; close(): Promise<void>; abort(reason?: unknown): Promise<void>;
  }
  interface TransformStreamDefaultController<O> { readonly desiredSize: number | null; enqueue(chunk: O): void; error(reason?: unknown): void; terminate(): void }
  class TransformStream<I = unknown, O = unknown> {
    constructor(transformer?: { start?(controller: TransformStreamDefaultController<O>): unknown; transform?(chunk: I, controller: TransformStreamDefaultController<O>): unknown; flush?(controller: TransformStreamDefaultController<O>): unknown });
    readonly readable: ReadableStream<O>; readonly writable: WritableStream<I>;
  }
  type BodyInit = string | ArrayBuffer | ArrayBufferView | Blob | FormData | URLSearchParams | ReadableStream<Uint8Array>;
  type HeadersInit = Headers | Record<string, string> | Iterable<[string, string]>;
  interface RequestInit { method?: string; headers?: HeadersInit; body?: BodyInit | null; signal?: AbortSignal | null; redirect?: "follow" | "error" | "manual" }
  interface ResponseInit { status?: number; statusText?: string; headers?: HeadersInit }
  class Request {
    constructor(input: string | URL | Request, init?: RequestInit);
    readonly url: string; readonly method: string; readonly headers: Headers; readonly signal: AbortSignal; readonly redirect: "follow" | "error" | "manual";
    readonly body: ReadableStream<Uint8Array> | null; readonly bodyUsed: boolean;
    arrayBuffer(): Promise<ArrayBuffer>; bytes(): Promise<Uint8Array>; blob(): Promise<Blob>; formData(): Promise<FormData>; json<T = unknown>(): Promise<T>; text(): Promise<string>; clone(): Request;
  }
  class Response {
    constructor(body?: BodyInit | null, init?: ResponseInit);
    static json(data: unknown, init?: ResponseInit): Response; static error(): Response; static redirect(url: string | URL, status?: number): Response;
    readonly status: number; readonly statusText: string; readonly ok: boolean; readonly headers: Headers; readonly type: "basic" | "default" | "error"; readonly url: string; readonly redirected: boolean;
    readonly body: ReadableStream<Uint8Array> | null; readonly bodyUsed: boolean;
    arrayBuffer(): Promise<ArrayBuffer>; bytes(): Promise<Uint8Array>; blob(): Promise<Blob>; formData(): Promise<FormData>; json<T = unknown>(): Promise<T>; text(): Promise<string>; clone(): Response;
  }
  var console: { log(...data: unknown[]): void; info(...data: unknown[]): void; warn(...data: unknown[]): void; error(...data: unknown[]): void; debug(...data: unknown[]): void; trace(...data: unknown[]): void };
`;
