/**
 * The npm packages behind Blob, File, FormData and ReadableStream inside the isolate, bundled
 * with the URL code (url.ts) into the part of the runtime that is evaluated on first use:
 * fetch-blob (Blob, File: node-fetch's own, spec-following), formdata-polyfill (FormData and its
 * multipart encoding), node-fetch's multipart parser (Response#formData) and web-streams-polyfill
 * (ReadableStream, which fetch-blob needs for nested blobs and Response#body). None needs Node:
 * build.ts points fetch-blob's Node-only stream loader and file reader at isolate-safe stand-ins.
 *
 * Sizes are bounded like the rest of a run's memory: a Blob or File over MAX_BLOB_BYTES throws,
 * and every byte counts against the isolate's heap limit anyway.
 */
import { ReadableStream, TransformStream, WritableStream } from "web-streams-polyfill";
import FetchBlob from "fetch-blob";
import FetchFile from "fetch-blob/file.js";
import { FormData, formDataToBlob } from "formdata-polyfill/esm.min.js";
// @ts-expect-error node-fetch ships no types for its internal multipart parser.
import { toFormData } from "node-fetch/src/utils/multipart-parser.js";
import { MAX_BLOB_BYTES } from "./fetch-api.ts";

/** The standard's type: ASCII lowercase (fetch-blob keeps the case it was given). */
function lowerType<T extends { type?: unknown } | undefined>(options: T): T {
  if (options === undefined || options === null || options.type === undefined) return options;
  return { ...options, type: String(options.type).replace(/[A-Z]/g, (c) => c.toLowerCase()) };
}

function bounded(size: number): void {
  if (size > MAX_BLOB_BYTES) {
    const error = new RangeError(`a Blob of ${size} bytes is over hookd's limit of ${MAX_BLOB_BYTES}`);
    error.name = "QuotaExceededError";
    throw error;
  }
}

/** fetch-blob's Blob, with hookd's size bound; `instanceof` and slice() stay fetch-blob's. */
class Blob extends FetchBlob {
  constructor(parts?: unknown[], options?: { type?: string; endings?: string }) {
    super(parts as never, lowerType(options) as never);
    bounded(this.size);
  }
}

class File extends FetchFile {
  constructor(parts: unknown[], name: string, options?: { type?: string; lastModified?: number }) {
    if (arguments.length < 2) throw new TypeError(`Failed to construct 'File': 2 arguments required, but only ${arguments.length} present.`);
    super(parts as never, name, lowerType(options) as never);
    bounded(this.size);
  }
}

/** FormData as a multipart body (the boundary is random). */
function formDataBody(form: unknown): Blob {
  return (formDataToBlob as (form: unknown, blob: unknown) => unknown)(form, Blob) as Blob;
}

/** A multipart body's entries; `chunks` are its bytes, `contentType` carries the boundary. */
async function parseMultipart(chunks: Uint8Array[], contentType: string): Promise<unknown> {
  return toFormData(chunks, contentType) as Promise<unknown>;
}

export { Blob, File, FormData, ReadableStream, TransformStream, WritableStream, formDataBody, parseMultipart };
