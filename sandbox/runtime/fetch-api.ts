/**
 * Request and Response inside the isolate (the Fetch Standard's classes and their Body mixin),
 * and what turns `ctx.fetch`'s arguments into a host call and its reply into a real Response.
 * Written here, not bundled: the packages that have them (node-fetch, undici, @remix-run/web-
 * fetch) are built on Node's streams, http and Buffer, which an isolate has none of. Blob,
 * FormData and ReadableStream do come from packages (fetch-packages.ts), evaluated on first use.
 *
 * A body is held whole (bytes, a Blob or a stream read whole on first use), at most
 * MAX_BLOB_BYTES, inside the isolate's heap limit.
 */
import type { PluginFetchReply } from "../contract/fetch.ts";

/** The largest Blob, File or body a plugin can build in one piece (a fetch answer is 1 MiB by default). */
export const MAX_BLOB_BYTES = 16 * 1024 * 1024;

/** The lazily evaluated packages (url.ts's bundle) as the classes below use them. */
export interface FetchPackages {
  Blob: new (parts?: unknown[], options?: { type?: string }) => BlobLike;
  FormData: new () => FormDataLike;
  ReadableStream: new (source: object) => StreamLike;
  URL: new (url: string, base?: string) => { href: string };
  URLSearchParams: new (init?: string) => { toString(): string; [Symbol.iterator](): Iterator<[string, string]> };
  formDataBody(form: unknown): BlobLike;
  parseMultipart(chunks: Uint8Array[], contentType: string): Promise<unknown>;
}
interface BlobLike {
  readonly size: number;
  readonly type: string;
  arrayBuffer(): Promise<ArrayBuffer>;
}
interface FormDataLike {
  append(name: string, value: string): void;
}
interface StreamLike {
  readonly locked: boolean;
  getReader(): { read(): Promise<{ done: boolean; value?: unknown }>; releaseLock(): void };
  tee(): [StreamLike, StreamLike];
}
interface HeadersLike {
  get(name: string): string | null;
  set(name: string, value: string): void;
  has(name: string): boolean;
  [Symbol.iterator](): Iterator<[string, string]>;
}

export interface FetchDeps {
  Headers: new (init?: unknown) => HeadersLike;
  AbortController: new () => { signal: unknown };
  TextEncoder: new () => { encode(text: string): Uint8Array };
  TextDecoder: new (label?: string, options?: { fatal?: boolean }) => { decode(bytes: Uint8Array): string };
  /** Forgiving base64 to bytes (web.ts). */
  base64ToBytes(text: string): Uint8Array;
  /** The packages, evaluated now if they were not yet. */
  packages(): FetchPackages;
  /** The packages if something already evaluated them (else nothing can be one of their instances). */
  loadedPackages(): FetchPackages | undefined;
}

/** A host reply to op "fetch": the contract's PluginFetchReply. */
export type HostFetchReply = PluginFetchReply;

export interface FetchClasses {
  Request: unknown;
  Response: unknown;
  /** ctx.fetch's (input, init) as the host call's url and init, and the signal to honour. */
  hostRequest(input: unknown, init: unknown): Promise<{ url: string; init: Record<string, unknown>; signal: { aborted: boolean; reason: unknown; throwIfAborted(): void; addEventListener(type: string, fn: () => void, options: object): void } | undefined }>;
  /** The host's reply as a Response (with the old plain-object header properties kept readable). */
  hostResponse(reply: HostFetchReply, requested: string): unknown;
}

const NULL_BODY_STATUS = new Set([101, 103, 204, 205, 304]);
const REDIRECT_STATUS = new Set([301, 302, 303, 307, 308]);
const METHODS = new Set(["DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT"]);
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Lets the runtime make a Response the constructor would refuse (a host's status 0 or 1xx). */
const INTERNAL = Symbol("hookd.internal");

/** WebIDL's `unsigned short` conversion, as the standard reads a status (200.5 is 200). */
function unsignedShort(value: unknown): number {
  const number = Number(value);
  if (!Number.isFinite(number)) return 0;
  return ((Math.trunc(number) % 65536) + 65536) % 65536;
}

function tooLarge(size: number): Error {
  const error = new RangeError(`a body of ${size} bytes is over hookd's limit of ${MAX_BLOB_BYTES}`);
  error.name = "QuotaExceededError";
  return error;
}

export function fetchClasses(deps: FetchDeps): FetchClasses {
  const { Headers, TextEncoder, TextDecoder } = deps;
  const encoder = new TextEncoder();
  const isInstance = (value: unknown, name: "Blob" | "FormData" | "ReadableStream" | "URLSearchParams"): boolean => {
    const loaded = deps.loadedPackages();
    return loaded !== undefined && value instanceof (loaded[name] as unknown as abstract new (...args: never[]) => unknown);
  };

  type Source = Uint8Array | BlobLike | StreamLike | null;

  /** The Fetch Standard's "extract a body": its bytes (or Blob, or stream) and its Content-Type. */
  function extract(init: unknown): { source: Source; type: string | null } {
    if (init === null || init === undefined) return { source: null, type: null };
    if (typeof init === "string") return { source: bounded(encoder.encode(init)), type: "text/plain;charset=UTF-8" };
    if (init instanceof ArrayBuffer) return { source: bounded(new Uint8Array(init.slice(0))), type: null };
    if (ArrayBuffer.isView(init)) return { source: bounded(new Uint8Array(init.buffer.slice(init.byteOffset, init.byteOffset + init.byteLength))), type: null };
    if (isInstance(init, "Blob")) {
      const blob = init as BlobLike;
      return { source: blob, type: blob.type === "" ? null : blob.type };
    }
    if (isInstance(init, "FormData")) {
      const blob = deps.packages().formDataBody(init);
      return { source: blob, type: blob.type };
    }
    if (isInstance(init, "URLSearchParams")) return { source: bounded(encoder.encode(String(init))), type: "application/x-www-form-urlencoded;charset=UTF-8" };
    if (isInstance(init, "ReadableStream")) return { source: init as StreamLike, type: null };
    return { source: bounded(encoder.encode(String(init))), type: "text/plain;charset=UTF-8" };
  }

  function bounded(bytes: Uint8Array): Uint8Array {
    if (bytes.length > MAX_BLOB_BYTES) throw tooLarge(bytes.length);
    return bytes;
  }

  async function readStream(stream: StreamLike): Promise<Uint8Array> {
    const reader = stream.getReader();
    const chunks: Uint8Array[] = [];
    let total = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (!(value instanceof Uint8Array)) throw new TypeError("a body stream must give Uint8Array chunks");
      total += value.length;
      if (total > MAX_BLOB_BYTES) throw tooLarge(total);
      chunks.push(value);
    }
    const out = new Uint8Array(total);
    let at = 0;
    for (const chunk of chunks) {
      out.set(chunk, at);
      at += chunk.length;
    }
    return out;
  }

  const sourceOf = new WeakMap<object, { source: Source; used: boolean }>();

  /** The Body mixin, shared by Request and Response. */
  class Body {
    readonly headers: HeadersLike;
    constructor(source: Source, headers: HeadersLike) {
      sourceOf.set(this, { source, used: false });
      this.headers = headers;
    }
    get body(): StreamLike | null {
      const state = sourceOf.get(this)!;
      if (state.source === null) return null;
      if (state.source instanceof Uint8Array || !("getReader" in state.source)) {
        const pending = state.source;
        const { ReadableStream } = deps.packages();
        state.source = new ReadableStream({
          type: "bytes",
          async pull(controller: { enqueue(chunk: Uint8Array): void; close(): void }) {
            const bytes = pending instanceof Uint8Array ? pending : new Uint8Array(await pending.arrayBuffer());
            if (bytes.length > 0) controller.enqueue(bytes.slice());
            controller.close();
          },
        });
      }
      return state.source as StreamLike;
    }
    get bodyUsed(): boolean {
      const state = sourceOf.get(this)!;
      return state.used || (state.source !== null && !(state.source instanceof Uint8Array) && "getReader" in state.source && state.source.locked);
    }
    /** Reads the whole body once; a second read is a TypeError, as in the standard. */
    async #consume(): Promise<Uint8Array> {
      const state = sourceOf.get(this)!;
      if (this.bodyUsed) throw new TypeError("Body is unusable: the body has already been read");
      const source = state.source;
      // No body is read as empty, as often as asked (the standard never disturbs a null body).
      if (source === null) return new Uint8Array(0);
      state.used = true;
      if (source instanceof Uint8Array) return source;
      if ("getReader" in source) return readStream(source);
      return new Uint8Array(await source.arrayBuffer());
    }
    async arrayBuffer(): Promise<ArrayBuffer> {
      return (await this.#consume()).slice().buffer;
    }
    async bytes(): Promise<Uint8Array> {
      return (await this.#consume()).slice();
    }
    async text(): Promise<string> {
      return new TextDecoder().decode(await this.#consume());
    }
    async json(): Promise<unknown> {
      return JSON.parse(await this.text());
    }
    async blob(): Promise<BlobLike> {
      const bytes = await this.#consume();
      const { Blob } = deps.packages();
      return new Blob([bytes], { type: (this.headers.get("content-type") ?? "").toLowerCase() });
    }
    async formData(): Promise<unknown> {
      const type = this.headers.get("content-type") ?? "";
      const { FormData, URLSearchParams, parseMultipart } = deps.packages();
      if (/^multipart\/form-data/i.test(type)) return parseMultipart([await this.#consume()], type);
      if (/^application\/x-www-form-urlencoded/i.test(type)) {
        const form = new FormData();
        for (const [name, value] of new URLSearchParams(await this.text())) form.append(name, value);
        return form;
      }
      throw new TypeError(`formData: the body's Content-Type is neither multipart/form-data nor application/x-www-form-urlencoded (${type || "none"})`);
    }
    /** The source for a clone: a stream is teed, bytes and Blobs are immutable and shared. */
    protected cloneSource(): Source {
      if (this.bodyUsed) throw new TypeError("clone: the body has already been read");
      const state = sourceOf.get(this)!;
      if (state.source !== null && !(state.source instanceof Uint8Array) && "getReader" in state.source) {
        const [one, two] = state.source.tee();
        state.source = one;
        return two;
      }
      return state.source;
    }
  }

  function withType(headers: HeadersLike, type: string | null): HeadersLike {
    if (type !== null && !headers.has("content-type")) headers.set("content-type", type);
    return headers;
  }

  interface RequestInitLike {
    method?: unknown;
    headers?: unknown;
    body?: unknown;
    signal?: unknown;
    redirect?: unknown;
  }

  class Request extends Body {
    readonly url: string;
    readonly method: string;
    readonly signal: unknown;
    readonly redirect: string;
    readonly credentials = "same-origin";
    readonly mode = "cors";
    readonly cache = "default";
    readonly referrer = "about:client";
    readonly integrity = "";
    readonly keepalive = false;
    readonly destination = "";
    constructor(input: unknown, init: RequestInitLike = {}) {
      const from = input instanceof Request ? input : undefined;
      let url: string;
      if (from) url = from.url;
      else {
        try {
          url = new (deps.packages().URL)(String(input)).href;
        } catch {
          throw new TypeError(`Request: invalid URL: ${String(input)}`);
        }
      }
      let method = init.method === undefined ? (from?.method ?? "GET") : String(init.method);
      if (!TOKEN.test(method)) throw new TypeError(`Request: invalid method: ${method}`);
      if (METHODS.has(method.toUpperCase())) method = method.toUpperCase();
      if (/^(CONNECT|TRACE|TRACK)$/i.test(method)) throw new TypeError(`Request: the method ${method} is forbidden`);
      const headers = new Headers(init.headers ?? from?.headers);
      let source: Source = null;
      if (init.body !== undefined && init.body !== null) {
        if (method === "GET" || method === "HEAD") throw new TypeError("Request with GET/HEAD method cannot have a body");
        const extracted = extract(init.body);
        source = extracted.source;
        withType(headers, extracted.type);
      } else if (from !== undefined && init.body === undefined) {
        if (from.bodyUsed) throw new TypeError("Request: the input's body has already been read");
        source = sourceOf.get(from)!.source;
        if (source !== null) sourceOf.get(from)!.used = true;
      }
      super(source, headers);
      const redirect = init.redirect === undefined ? (from?.redirect ?? "follow") : String(init.redirect);
      if (!["follow", "error", "manual"].includes(redirect)) throw new TypeError(`Request: invalid redirect mode: ${redirect}`);
      this.url = url;
      this.method = method;
      this.redirect = redirect;
      this.signal = init.signal ?? from?.signal ?? new deps.AbortController().signal;
    }
    clone(): Request {
      const copy = new Request(this.url, { method: this.method, headers: this.headers, signal: this.signal, redirect: this.redirect });
      sourceOf.get(copy)!.source = this.cloneSource();
      return copy;
    }
    get [Symbol.toStringTag](): string {
      return "Request";
    }
  }

  interface ResponseInitLike {
    status?: unknown;
    statusText?: unknown;
    headers?: unknown;
    [INTERNAL]?: { type: string; url: string; redirected: boolean; status?: number };
  }

  class Response extends Body {
    readonly status: number;
    readonly statusText: string;
    readonly type: string;
    readonly url: string;
    readonly redirected: boolean;
    constructor(body: unknown = null, init: ResponseInitLike = {}) {
      const internal = init[INTERNAL];
      const status = internal?.status ?? (init.status === undefined ? 200 : unsignedShort(init.status));
      if (internal === undefined && (status < 200 || status > 599)) throw new RangeError(`Response: status ${String(init.status)} is not in the range 200 to 599`);
      const statusText = init.statusText === undefined ? "" : String(init.statusText);
      if (!/^[\t\x20-\x7e\x80-\xff]*$/.test(statusText)) throw new TypeError("Response: invalid statusText");
      const headers = new Headers(init.headers);
      let source: Source = null;
      if (body !== null && body !== undefined) {
        if (NULL_BODY_STATUS.has(status)) throw new TypeError(`Response with status ${status} cannot have a body`);
        const extracted = extract(body);
        source = extracted.source;
        withType(headers, extracted.type);
      }
      super(source, headers);
      this.status = status;
      this.statusText = statusText;
      this.type = internal?.type ?? "default";
      this.url = internal?.url ?? "";
      this.redirected = internal?.redirected ?? false;
    }
    get ok(): boolean {
      return this.status >= 200 && this.status <= 299;
    }
    clone(): Response {
      const copy = new Response(null, { status: this.status, statusText: this.statusText, headers: this.headers, [INTERNAL]: { type: this.type, url: this.url, redirected: this.redirected, status: this.status } });
      sourceOf.get(copy)!.source = this.cloneSource();
      return copy;
    }
    static json(data: unknown, init: ResponseInitLike = {}): Response {
      const text = JSON.stringify(data);
      if (text === undefined) throw new TypeError("Response.json: the data is not JSON-serializable");
      const headers = new Headers(init.headers);
      if (!headers.has("content-type")) headers.set("content-type", "application/json");
      return new Response(text, { ...init, headers });
    }
    static error(): Response {
      return new Response(null, { [INTERNAL]: { type: "error", url: "", redirected: false, status: 0 } });
    }
    static redirect(url: unknown, status = 302): Response {
      if (!REDIRECT_STATUS.has(Number(status))) throw new RangeError(`Response.redirect: invalid status ${String(status)}`);
      const location = new (deps.packages().URL)(String(url)).href;
      return new Response(null, { status, headers: { location } });
    }
    get [Symbol.toStringTag](): string {
      return "Response";
    }
  }

  const isPlainHeaders = (headers: unknown) => headers === undefined || (typeof headers === "object" && headers !== null && !(headers instanceof Headers) && !Array.isArray(headers));

  async function hostRequest(input: unknown, init: unknown): ReturnType<FetchClasses["hostRequest"]> {
    const given = (init ?? {}) as RequestInitLike & Record<string, unknown>;
    // As before Request existed: a URL string and a plain init go to the host as they are, and
    // the host says what is wrong with them (HOOKD_FETCH_NOT_ALLOWED for a relative URL, say).
    if (!(input instanceof Request) && (given.body === undefined || typeof given.body === "string") && isPlainHeaders(given.headers)) {
      const { signal, ...rest } = given;
      return { url: String(input), init: rest, signal: (signal ?? undefined) as never };
    }
    const request = new Request(input, given);
    const headers: Record<string, string> = {};
    for (const [name, value] of request.headers) headers[name] = value;
    const sent: Record<string, unknown> = { method: request.method, headers };
    if (sourceOf.get(request)!.source !== null) {
      // The host sends a body as UTF-8 text: bytes that are not UTF-8 would arrive changed.
      const bytes = await request.bytes();
      try {
        sent.body = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
      } catch {
        throw new TypeError("ctx.fetch: a request body must be UTF-8 text (hookd sends bodies as text)");
      }
    }
    const explicit = given.signal ?? (input instanceof Request ? input.signal : undefined);
    return { url: request.url, init: sent, signal: explicit as never };
  }

  function hostResponse(reply: HostFetchReply, requested: string): Response {
    const status = Number(reply.status);
    const body = NULL_BODY_STATUS.has(status) && reply.body === "" ? null : reply.body;
    const response = new Response(null, { statusText: reply.statusText, headers: reply.headers, [INTERNAL]: { type: "basic", url: reply.url, redirected: reply.url !== requested && reply.url !== `${requested}/`, status } });
    if (typeof reply.bodyBase64 === "string") sourceOf.get(response)!.source = deps.base64ToBytes(reply.bodyBase64);
    else if (body !== null) sourceOf.get(response)!.source = encoder.encode(body);
    // ctx.fetch answered a plain object before: `response.headers["content-type"]` keeps working.
    for (const [name, value] of Object.entries(reply.headers)) {
      if (!(name in response.headers)) Object.defineProperty(response.headers, name, { value, enumerable: true });
    }
    return response;
  }

  return { Request, Response, hostRequest, hostResponse };
}
