/**
 * "Wait until the file holds still": a plugin is compiled while an editor may still be writing
 * it. When the entry changed while esbuild read it, or is empty (an editor truncated it and is
 * still writing), the bundle may be a half save, which must not serve. Such a build is thrown
 * away and the file read again, within a time budget; a file still moving after it is compiled
 * as it is (the next change reloads it anyway).
 *
 * "Changed" is judged on the content's hash, not the modification time: times move in kernel
 * ticks, too coarse for quick saves.
 */
import { createHash } from "node:crypto";
import { compilePlugin, DEFAULT_COMPILE_LIMITS, type CompiledPlugin, type CompileOptions } from "../compile/compile-plugin.ts";
import { readSourceFile } from "../compile/source-file.ts";

/** How long a reload waits for a file being written to hold still before compiling it anyway. */
export const SETTLE_BUDGET_MS = 1000;

/** Pause between two reads of a file still moving: give the writer a moment to finish. */
const RETRY_PAUSE_MS = 10;

const EMPTY_FILE = createHash("sha1").digest("base64url");

/** Compiles the entry once it holds still (see above); a compile error of the settled file is thrown. */
export async function compileWhenStill(file: string, compile: CompileOptions, budgetMs = SETTLE_BUDGET_MS): Promise<CompiledPlugin> {
  const deadline = performance.now() + budgetMs;
  const maxBytes = compile.limits?.maxSourceBytes ?? DEFAULT_COMPILE_LIMITS.maxSourceBytes;
  for (;;) {
    const before = await fingerprint(file, maxBytes);
    let compiled: CompiledPlugin | undefined;
    let failure: unknown;
    try {
      compiled = await compilePlugin(file, compile);
    } catch (error) {
      failure = error;
    }
    const after = await fingerprint(file, maxBytes);
    const settled = before === after && after !== EMPTY_FILE;
    if (settled || performance.now() >= deadline) {
      if (compiled) return compiled;
      throw failure;
    }
    await new Promise((resolve) => setTimeout(resolve, RETRY_PAUSE_MS));
  }
}

/**
 * The content's hash. Read as a source file (never blocking on a FIFO named like a plugin);
 * such a file, or one over the compile's size limit, is "unreadable" (the compile says why).
 */
async function fingerprint(file: string, maxBytes: number): Promise<string> {
  try {
    return createHash("sha1").update((await readSourceFile(file, maxBytes)).bytes).digest("base64url");
  } catch {
    return "unreadable";
  }
}
