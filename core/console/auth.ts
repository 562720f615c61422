/**
 * How a browser proves it holds the API token. A browser cannot put `Authorization: Bearer` on
 * a page load or an EventSource, so the console takes the token once as `GET /?token=...`,
 * answers with a cookie derived from it and a redirect to `/` (the token leaves the address bar
 * and the history), and accepts that cookie on the console, the API and the stream from then on.
 *
 * - The cookie holds an HMAC of the token, not the token: it opens the console, but it is not a
 *   bearer token for scripts, and it stops working when the token changes.
 * - HttpOnly and SameSite=Strict: page scripts cannot read it and other sites cannot send it.
 *   Requests that change something (POST) with the cookie must also carry the
 *   `x-hookd-console` header, which a cross-site form cannot set.
 * - `?token=` is also accepted on `GET /api/stream`, for tools that cannot keep cookies.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import type { FastifyRequest } from "fastify";

export const CONSOLE_COOKIE = "hookd_console";
export const CONSOLE_HEADER = "x-hookd-console";
export const CONSOLE_PATH = "/";
export const STREAM_PATH = "/api/stream";

/** The cookie value that stands for a token. */
export function consoleCookieValue(token: string): string {
  return createHmac("sha256", token).update("hookd console session").digest("base64url");
}

/** `Set-Cookie` for a browser that just showed the token. */
export function consoleCookieHeader(token: string, secure: boolean): string {
  return `${CONSOLE_COOKIE}=${consoleCookieValue(token)}; Path=/; HttpOnly; SameSite=Strict${secure ? "; Secure" : ""}`;
}

/**
 * True when a request without a valid bearer token is let through by the console's own means:
 * the cookie, `?token=` on the stream, or `GET /` itself, which answers a login page when the
 * browser has no credential yet (see `consoleCredential`).
 */
export function admitConsoleRequest(request: FastifyRequest, token: string): boolean {
  const route = request.routeOptions.url;
  if (request.method === "GET" && route === CONSOLE_PATH) return true;
  if (request.method === "GET" && route === STREAM_PATH && queryTokenMatches(request, token)) return true;
  if (!cookieMatches(request, token)) return false;
  const safe = request.method === "GET" || request.method === "HEAD";
  return safe || request.headers[CONSOLE_HEADER] !== undefined;
}

/** How the request to `GET /` identifies itself: by `?token=`, by cookie or bearer, or not at all. */
export function consoleCredential(request: FastifyRequest, token: string): "query" | "session" | "none" {
  if (queryTokenMatches(request, token)) return "query";
  if (bearerMatches(request, token) || cookieMatches(request, token)) return "session";
  return "none";
}

function bearerMatches(request: FastifyRequest, token: string): boolean {
  const match = /^Bearer\s+(.+)$/i.exec(request.headers.authorization ?? "");
  return match !== null && sameSecret(match[1]!.trim(), token);
}

function queryTokenMatches(request: FastifyRequest, token: string): boolean {
  const given = (request.query as Record<string, unknown> | undefined)?.token;
  return typeof given === "string" && sameSecret(given, token);
}

function cookieMatches(request: FastifyRequest, token: string): boolean {
  const value = readCookie(request.headers.cookie, CONSOLE_COOKIE);
  return value !== undefined && sameSecret(value, consoleCookieValue(token));
}

function readCookie(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? "").split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return rest.join("=");
  }
  return undefined;
}

/** Constant-time comparison of two secrets of any length. */
function sameSecret(given: string, expected: string): boolean {
  const a = createHmac("sha256", "hookd compare").update(given).digest();
  const b = createHmac("sha256", "hookd compare").update(expected).digest();
  return timingSafeEqual(a, b);
}
