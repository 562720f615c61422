/**
 * The same no-op handler called three ways, with no hookd around it: the references hookd's
 * dispatch rate is divided by.
 * - isolated-vm directly: the limit of isolation (async apply, the 1 KB event copied in, the
 *   handler's promise awaited), what any isolate-per-plugin design pays at least;
 * - node:vm: a separate context in the same heap (no memory or time isolation);
 * - a plain in-process function: no isolation at all.
 */
import vm from "node:vm";
import ivm from "isolated-vm";
import { benchEvent, HANDLER_BODY } from "./hookd.ts";

export interface HandlerBaseline {
  /** Calls the handler once with the bench event. */
  call(): Promise<unknown>;
  dispose(): void;
}

const HANDLER_SOURCE = `(async (event) => { ${HANDLER_BODY} })`;

export async function isolatedVmDirect(memoryMb = 64): Promise<HandlerBaseline> {
  const isolate = new ivm.Isolate({ memoryLimit: memoryMb });
  const context = await isolate.createContext();
  const handler = (await context.eval(HANDLER_SOURCE, { reference: true })) as ivm.Reference<(event: unknown) => Promise<void>>;
  const event = benchEvent();
  return {
    call: () => handler.apply(undefined, [event], { arguments: { copy: true }, result: { promise: true } }),
    dispose: () => isolate.dispose(),
  };
}

export function nodeVm(): HandlerBaseline {
  const context = vm.createContext({});
  const handler = vm.runInContext(HANDLER_SOURCE, context) as (event: unknown) => Promise<void>;
  const event = benchEvent();
  return { call: () => handler(event), dispose: () => undefined };
}

export function plainFunction(): HandlerBaseline {
  // Built from the same source text, so the three baselines run exactly the same code.
  const handler = (0, eval)(HANDLER_SOURCE) as (event: unknown) => Promise<void>;
  const event = benchEvent();
  return { call: () => handler(event), dispose: () => undefined };
}
