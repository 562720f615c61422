/**
 * URL and URLSearchParams inside the isolate: whatwg-url, the WHATWG URL Standard's reference
 * implementation (what jsdom uses). Its IDNA tables make it some 490 KB minified, twenty times the
 * rest of the runtime, so it is not evaluated in every isolate: build.ts bundles it apart, the
 * host keeps the text, and the runtime evaluates it the first time a plugin touches `URL` or
 * `URLSearchParams` (web.ts, `lazyGlobal`). Blob, File, FormData and the streams travel in the same
 * part (fetch-packages.ts): they are first needed at the same moments (a body, a form, a query).
 */
// @ts-expect-error whatwg-url ships no types; the runtime only re-exports its two classes.
export { URL, URLSearchParams } from "whatwg-url";
export { Blob, File, FormData, ReadableStream, TransformStream, WritableStream, formDataBody, parseMultipart } from "./fetch-packages.ts";
