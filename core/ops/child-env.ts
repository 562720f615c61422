/**
 * esbuild's service is a child process the esbuild package starts with the daemon's whole
 * environment (it passes no `env` to spawn): the API token, the store URL with its password and
 * every plugin secret would sit in /proc/<esbuild>/environ, readable to anything that runs as
 * hookd. Starting the service first, under an empty environment, closes that: esbuild reads its
 * own settings (ESBUILD_BINARY_PATH...) in the daemon, not in the service, and the service needs
 * no variable at all.
 */
import * as esbuild from "esbuild";

let started: Promise<void> | undefined;

/** Starts esbuild's service with an empty environment; call before anything else uses esbuild. */
export function startEsbuildService(): Promise<void> {
  started ??= (() => {
    // initialize() spawns the service synchronously, before it returns: the variables are gone
    // for that long. They are unset in the process's real environment, not hidden behind a new
    // process.env object: Node 26 spawns a child without `env` from the real one.
    const saved = { ...process.env };
    for (const name of Object.keys(saved)) delete process.env[name];
    try {
      return esbuild.initialize({}).catch(() => undefined);
    } catch {
      // Already initialized (a test that imported the daemon twice): the service runs as it is.
      return Promise.resolve();
    } finally {
      Object.assign(process.env, saved);
    }
  })();
  return started;
}
