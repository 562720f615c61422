// Written by `hookd types`: gives editors the catalog's types for `import ... from "hookd"`.
import type config from "./events.config.ts";

declare module "hookd" {
  interface Register {
    config: typeof config;
  }
}
