/**
 * Where hookd's own files are, as core's modules import it. It lives in the lowest layer
 * (sandbox/contract/locate.ts) because the sandbox process finds its worker and runtime the
 * same way and imports nothing from core.
 */
export * from "../sandbox/contract/locate.ts";
