/**
 * The error registry, as core's modules import it. The registry itself is the lowest layer's
 * (sandbox/contract/errors.ts): the sandbox raises and carries the same codes, and it imports
 * nothing from core.
 */
export * from "../sandbox/contract/errors.ts";
