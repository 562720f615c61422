// Whether dist/ is the build of the sources as they are now. The tests and the bench start the
// real daemon (bin/hookd.js, which runs dist/); a missing or stale build would test old code, so
// they stop with a message saying what to run instead. Shared by scripts/build.mjs (which writes
// the stamp) and test/helpers/daemon.ts (which checks it).
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";

export const BUILD_STAMP = ".build-stamp.json";

/** What dist/ is built from. */
const INPUTS = ["core", "sandbox", "tsconfig.json", "tsconfig.build.json", "scripts/build.mjs"];

/** A hash of the paths, sizes and contents of every build input. */
export function sourceFingerprint(repo) {
  const hash = createHash("sha256");
  const visit = (relative) => {
    const full = path.join(repo, relative);
    if (statSync(full).isDirectory()) {
      for (const entry of readdirSync(full).sort()) visit(path.join(relative, entry));
    } else {
      hash.update(`${relative}\0`).update(readFileSync(full)).update("\0");
    }
  };
  for (const input of INPUTS) visit(input);
  return hash.digest("hex");
}

/** Undefined when dist/ is current; otherwise why it is not, and what to run. */
export function distProblem(repo) {
  const stamp = path.join(repo, "dist", BUILD_STAMP);
  if (!existsSync(stamp)) return `hookd is not built (no dist/${BUILD_STAMP}): run \`npm run build\` first`;
  const built = JSON.parse(readFileSync(stamp, "utf8")).sources;
  if (built !== sourceFingerprint(repo)) return "dist/ is older than the sources in core/, sandbox/ or the build config: run `npm run build` first";
  return undefined;
}
