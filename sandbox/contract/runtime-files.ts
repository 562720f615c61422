/**
 * Where the in-isolate runtime's files are, for the daemon's compiler and type checker (paths it
 * hands to esbuild and TypeScript, not modules it imports): the sources, or their build in dist/.
 */
import { ownFile, ownTypes } from "./locate.ts";

export const RUNTIME_FILES = {
  /** What `import ... from "hookd"` resolves to when a plugin is bundled. */
  shim: ownFile(import.meta.url, "../runtime/shim.ts"),
  /** The plugin API's types, for `hookd check` and `hookd types`. */
  apiTypes: ownTypes(import.meta.url, "../runtime/api.ts"),
};
