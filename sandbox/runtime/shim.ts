/**
 * What `import ... from "hookd"` resolves to inside a plugin bundle: the functions the runtime
 * installed on the isolate's global. zod is bundled into the plugin only when it imports `z`.
 */
interface RuntimeApi {
  on: (...args: unknown[]) => void;
  action: (...args: unknown[]) => void;
  plugin: (options: unknown) => unknown;
  schedule: (...args: unknown[]) => void;
  NonRetriableError: new (message: string) => Error;
}

const api = (globalThis as unknown as { __hookd: RuntimeApi }).__hookd;

export const on = api.on;
export const action = api.action;
export const plugin = api.plugin;
export const schedule = api.schedule;
export const NonRetriableError = api.NonRetriableError;
export { z } from "zod";
