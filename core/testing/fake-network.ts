/**
 * The network a plugin sees under test: canned answers by URL pattern, and a record of every
 * outbound call. It stands in for `fetch` below the host's own checks, so a URL the plugin did
 * not declare is still refused, redirects are still followed hop by hop, and the size and time
 * limits still apply, exactly as in the daemon.
 */
import { isUrlAllowed } from "../fetch/plugin-fetch.ts";

/** One request that left the isolate (one per redirect hop). */
export interface OutboundCall {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: string | undefined;
  /** The status the fake answered with; undefined when no fake answer matched. */
  status: number | undefined;
}

/** A canned answer: `json` is serialized (with a JSON content type), else `body` is sent as is. */
export interface FakeResponse {
  status?: number;
  headers?: Record<string, string>;
  body?: string;
  json?: unknown;
}

/** A canned answer, or a function of the request that returns one. */
export type FakeReply = FakeResponse | ((call: OutboundCall) => FakeResponse | Promise<FakeResponse>);

export interface RespondOptions {
  /** Only requests with this method (any method when left out). */
  method?: string;
  /** Answer this many times, then let older answers (or the network error) take over. */
  times?: number;
}

interface Responder {
  matches: (url: string) => boolean;
  method: string | undefined;
  reply: FakeReply;
  left: number;
}

export class FakeNetwork {
  /** Every request the plugin made, in order. */
  readonly calls: OutboundCall[] = [];
  private responders: Responder[] = [];

  /**
   * Answers requests whose URL matches `pattern` (`*` spans any characters, as in
   * `plugin({ fetch })`; or a RegExp). The latest matching answer wins, so a test can override
   * what a `beforeEach` set up.
   */
  respond(pattern: string | RegExp, reply: FakeReply, options: RespondOptions = {}): this {
    const matches = typeof pattern === "string" ? (url: string) => url === pattern || isUrlAllowed(url, [pattern]) : (url: string) => pattern.test(url);
    this.responders.unshift({ matches, method: options.method?.toUpperCase(), reply, left: options.times ?? Number.POSITIVE_INFINITY });
    return this;
  }

  /** Forgets the canned answers and the recorded calls. */
  reset(): void {
    this.responders = [];
    this.calls.length = 0;
  }

  /** The `fetch` the daemon-side fetch service calls instead of the network. */
  readonly fetch = async (input: string | URL | Request, init: RequestInit = {}): Promise<Response> => {
    const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
    const call: OutboundCall = {
      method: (init.method ?? "GET").toUpperCase(),
      url,
      headers: lowerCaseHeaders(init.headers),
      body: typeof init.body === "string" ? init.body : undefined,
      status: undefined,
    };
    this.calls.push(call);
    const responder = this.responders.find((r) => r.left > 0 && (r.method === undefined || r.method === call.method) && r.matches(url));
    if (!responder) {
      // What an unreachable host looks like to the plugin: ctx.fetch rejects with HOOKD_FETCH_FAILED.
      throw new TypeError(`no fake response for ${call.method} ${url}: answer it with plugin.fetch.respond(pattern, reply)`);
    }
    responder.left--;
    const fake = typeof responder.reply === "function" ? await responder.reply(call) : responder.reply;
    const headers = new Headers(fake.headers);
    let body = fake.body;
    if (fake.json !== undefined) {
      body = JSON.stringify(fake.json);
      if (!headers.has("content-type")) headers.set("content-type", "application/json");
    }
    const status = fake.status ?? 200;
    call.status = status;
    // Statuses that may not carry a body (204, 304) get none.
    return new Response(status === 204 || status === 304 ? null : (body ?? ""), { status, headers });
  };
}

function lowerCaseHeaders(headers: RequestInit["headers"]): Record<string, string> {
  const result: Record<string, string> = {};
  new Headers(headers).forEach((value, name) => {
    result[name] = value;
  });
  return result;
}
