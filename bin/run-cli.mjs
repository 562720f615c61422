// Loads the CLI from the compiled build (dist/, made by `npm run build`, and by `npm install` in
// a clone through `prepare`). No TypeScript loader: hookd runs plain JavaScript.
import module from "node:module";
import os from "node:os";
import path from "node:path";

export async function runCli(argv) {
  enableCompileCache();
  let cli;
  try {
    cli = await import("../dist/core/cli.js");
  } catch (error) {
    if (error?.code === "ERR_MODULE_NOT_FOUND" && String(error.message).includes("/dist/core/cli.js")) {
      process.stderr.write("hookd is not built: run `npm run build` (or `npm install`) in " + new URL("..", import.meta.url).pathname + "\n");
      process.exitCode = 1;
      return;
    }
    throw error;
  }
  process.exitCode = await cli.main(argv);
}

/**
 * A start compiles megabytes of JavaScript (hookd's, fastify's, zod's, ...); V8's compile cache
 * keeps the bytecode on disk so the next start skips most of that. Kept in the user's own cache
 * folder, not a shared /tmp where another user could plant entries. Best effort: a folder that cannot be
 * written (a read-only home under systemd) only means no cache. NODE_COMPILE_CACHE, when set,
 * is Node's own and wins; NODE_DISABLE_COMPILE_CACHE=1 turns it off.
 */
function enableCompileCache() {
  if (process.env.NODE_COMPILE_CACHE || process.env.NODE_DISABLE_COMPILE_CACHE) return;
  try {
    const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), ".cache");
    module.enableCompileCache?.(path.join(base, "hookd", "compile-cache"));
  } catch {
    // no home folder, no cache
  }
}
