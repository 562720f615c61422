/**
 * The second wall around the sandbox process, the one that holds when an isolate escape runs
 * native code in it (the isolate is the first wall; Node's permission model stops JavaScript
 * only). On Linux the process starts inside bubblewrap:
 * - namespaces of its own for the network (nothing but a loopback of its own),
 *   PIDs (the daemon and every other process are invisible, /proc included) and IPC, plus a user
 *   namespace when hookd is not root (or where root needs one);
 * - a root file system holding only what Node and the worker need, read-only: the shared
 *   libraries and the loader's cache, the Node binary, the worker's own folders and the two
 *   packages it loads (isolated-vm and node-gyp-build). No /etc/passwd, no store, no config, no
 *   plugin sources, no shell. /tmp is an empty tmpfs of its own; /proc its own, or none where
 *   the kernel refuses one;
 * - an empty environment but for the locale and time zone;
 * - `--die-with-parent`, `--new-session` (no TIOCSTI into the daemon's terminal).
 * Inside it, Node's permission model (`--permission`) is the belt for a JavaScript-level
 * escape: reads of hookd's files only, addons (isolated-vm is one), no child processes, no
 * workers, no WASI, no writes.
 *
 * The fd 3 socket to the daemon passes through: bubblewrap keeps inherited descriptors.
 *
 * Where bubblewrap is missing or the kernel refuses its namespaces, `sandbox.wall: "auto"` starts
 * the process with the permission model only and says once what is missing; `"required"` refuses
 * to start; `"off"` does not try.
 */
import { spawnSync } from "node:child_process";
import { existsSync, lstatSync, readlinkSync, realpathSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
// hookd's package root (its package.json says the sources are ES modules), from sandbox/ and dist/sandbox/ alike.
import { PACKAGE_ROOT } from "./contract/locate.ts";
import { HookdError } from "./contract/errors.ts";
import type { WallMode, WallStatus } from "./contract/sandbox.ts";

export type { WallMode, WallStatus } from "./contract/sandbox.ts";

export interface SandboxCommand {
  command: string;
  args: string[];
  env: Record<string, string>;
  wall: WallStatus;
}

export interface SandboxCommandOptions {
  /** The worker's entry file (TypeScript during development, JavaScript once built). */
  worker: string;
  mode: WallMode;
  /** Extra environment of the sandbox process (the test harness's probe switch); nothing else passes. */
  env?: Record<string, string>;
  /** Leave Node's permission model off (only the wall test does, to see the kernel wall alone). */
  withoutPermission?: boolean;
  /** Where to look for bubblewrap instead of the usual places (tests of the fallback); not cached. */
  bwrapCandidates?: string[];
}

const BWRAP_CANDIDATES = ["/usr/bin/bwrap", "/usr/local/bin/bwrap", "/bin/bwrap"];
/**
 * Variables the sandbox process keeps: what the isolates' dates and locale follow, and the
 * test-only hang hook of sandbox/worker.ts (passed only when the daemon itself has it set, which
 * no plugin can do).
 */
const KEPT_ENV = ["TZ", "LANG", "LC_ALL", "HOOKD_TEST_BLOCK_SANDBOX_PLUGIN"];
/**
 * bubblewrap's namespaces: ctx.fetch is served by the daemon (core/fetch), so the process gets a
 * network namespace of its own with nothing but a loopback. deploy/hookd.service's
 * RestrictNamespaces= must allow these (and user, mnt).
 */
const NAMESPACE_ARGS = ["--unshare-net", "--unshare-pid", "--unshare-ipc"];

/** How bubblewrap runs here: with a user namespace or not, with a /proc of its own or none. */
interface Layout {
  userns: boolean;
  proc: boolean;
  /** Options of newer bubblewraps (0.8): used where `bwrap --help` lists them. */
  disableUserns?: boolean;
  tmpfsSize?: boolean;
}

let probed: { bwrap: string | undefined; layout: Layout; missing: string | undefined } | undefined;
let warned = false;

/** The command line, environment and wall of the sandbox process. */
export function sandboxCommand(options: SandboxCommandOptions): SandboxCommand {
  const env = sandboxEnv(options.env);
  const permission = !options.withoutPermission;
  const roots = readableRoots(options.worker);
  const nodeArgs = [...nodeFlags(options.worker, permission, roots), options.worker];
  if (options.mode === "off") {
    return { command: process.execPath, args: nodeArgs, env, wall: { mode: "off", kernel: false, permission, missing: "switched off (sandbox.wall: off)" } };
  }
  const probe = options.bwrapCandidates ? probeWallWith(options.bwrapCandidates) : probeWall();
  if (!probe.bwrap) {
    if (options.mode === "required") throw new HookdError("HOOKD_SANDBOX_WALL_UNAVAILABLE", [probe.missing ?? "bubblewrap is unavailable"]);
    return { command: process.execPath, args: nodeArgs, env, wall: { mode: options.mode, kernel: false, permission, missing: probe.missing } };
  }
  return {
    command: probe.bwrap,
    args: [...bwrapArgs(probe.layout, env, roots), "--", process.execPath, ...nodeArgs],
    env,
    wall: { mode: options.mode, kernel: true, permission },
  };
}

/** The wall the next sandbox process gets, without starting one (for status and the start-up log). */
export function wallStatus(mode: WallMode): WallStatus {
  if (mode === "off") return { mode, kernel: false, permission: true, missing: "switched off (sandbox.wall: off)" };
  const probe = probeWall();
  return probe.bwrap ? { mode, kernel: true, permission: true } : { mode, kernel: false, permission: true, missing: probe.missing };
}

/** Logs once per process that the kernel wall is missing (each restart of the sandbox would repeat it). */
export function warnOnceIfMissing(status: WallStatus, warn: (fields: Record<string, unknown>, message: string) => void): void {
  if (status.kernel || status.mode === "off" || warned) return;
  warned = true;
  warn({ code: "HOOKD_SANDBOX_WALL_UNAVAILABLE" }, `the sandbox process runs without its kernel wall (bubblewrap): ${status.missing}`);
}

/**
 * Runs bubblewrap once with the sandbox's own arguments and `node --version` inside, so a missing
 * library or a refused namespace shows up here, not as a sandbox that dies at every start.
 */
function probeWall(): NonNullable<typeof probed> {
  // HOOKD_SANDBOX_BWRAP: a bubblewrap outside the usual places (a Nix profile, /opt).
  probed ??= probeWallWith(process.env.HOOKD_SANDBOX_BWRAP ? [process.env.HOOKD_SANDBOX_BWRAP] : BWRAP_CANDIDATES);
  return probed;
}

function probeWallWith(candidates: string[]): NonNullable<typeof probed> {
  if (process.platform !== "linux") {
    return { bwrap: undefined, layout: NO_LAYOUT, missing: `${process.platform} has no bubblewrap: only the isolate and Node's permission model stand around plugins (run hookd on Linux for the kernel wall)` };
  }
  const bwrap = candidates.find((candidate) => existsSync(candidate));
  if (!bwrap) {
    return { bwrap: undefined, layout: NO_LAYOUT, missing: "bubblewrap is not installed: apt-get install bubblewrap (dnf install bubblewrap, apk add bubblewrap)" };
  }
  const env = sandboxEnv();
  // A user namespace first, for root too: there bubblewrap's --cap-drop ALL empties the bounding
  // set as well. Root without one (where user namespaces are refused) still loses every
  // capability; other users cannot do without one.
  // A fresh /proc is refused where the one it would sit beside is partly hidden (the kernel's
  // "too revealing" rule: systemd's ProtectKernelTunables=, ProcSubset=, a container's masked
  // paths); then the process goes without /proc, which Node does not need.
  const help = spawnSync(bwrap, ["--help"], { env, encoding: "utf8", timeout: 10_000 }).stdout ?? "";
  // No user namespaces inside: native code in the sandbox cannot reach for the kernel code that
  // creating one exposes. A size for /tmp: writes there cannot eat the daemon's memory budget.
  const features = { tmpfsSize: help.includes("--size") };
  const layouts: Layout[] = (process.getuid?.() === 0 ? [true, false] : [true]).flatMap((userns) => [
    { userns, proc: true, disableUserns: userns && help.includes("--disable-userns"), ...features },
    { userns, proc: false, disableUserns: userns && help.includes("--disable-userns"), ...features },
  ]);
  let last = "";
  for (const layout of layouts) {
    const result = spawnSync(bwrap, [...bwrapArgs(layout, env, []), "--", process.execPath, "--version"], { env, encoding: "utf8", timeout: 10_000 });
    if (result.status === 0) return { bwrap, layout, missing: undefined };
    last = (result.stderr || result.error?.message || `exit ${result.status ?? result.signal}`).trim();
  }
  return {
    bwrap: undefined,
    layout: NO_LAYOUT,
    missing:
      `bubblewrap cannot start the sandbox here (${last}); where the kernel refuses its namespaces, allow unprivileged user namespaces ` +
      "(sysctl kernel.unprivileged_userns_clone=1 on Debian, kernel.apparmor_restrict_unprivileged_userns=0 on Ubuntu 24.04, " +
      "user.max_user_namespaces > 0), and under systemd RestrictNamespaces=user mnt net pid ipc",
  };
}

const NO_LAYOUT: Layout = { userns: false, proc: false };
/** The private /tmp's size: the worker writes nothing there; native code gets no more than this. */
const TMP_BYTES = 16 * 1024 * 1024;

function bwrapArgs(layout: Layout, env: Record<string, string>, roots: string[]): string[] {
  // --cap-drop ALL: bubblewrap started by root keeps every capability in the sandbox otherwise
  // (CAP_SYS_ADMIN, CAP_MKNOD: enough to mount the host's disk again).
  const args = [...(layout.userns ? ["--unshare-user"] : []), ...NAMESPACE_ARGS, "--cap-drop", "ALL", "--die-with-parent", "--new-session", "--clearenv"];
  // The values travel on bubblewrap's command line (ps shows them): only sandboxEnv()'s pass.
  for (const [name, value] of Object.entries(env)) args.push("--setenv", name, value);
  if (layout.disableUserns) args.push("--disable-userns");
  if (layout.proc) args.push("--proc", "/proc");
  args.push("--dev", "/dev", ...(layout.tmpfsSize ? ["--size", String(TMP_BYTES)] : []), "--tmpfs", "/tmp", "--dir", "/etc");
  for (const mount of systemMounts()) {
    if (mount.symlink) args.push("--symlink", mount.symlink, mount.path);
    else args.push("--ro-bind", mount.path, mount.path);
  }
  for (const root of roots) args.push("--ro-bind", root, root);
  // The folders bubblewrap made for the mount points live on its root tmpfs: read-only too, so
  // the private /tmp is the only place a write lands (and it is gone with the process).
  args.push("--remount-ro", "/");
  // The root: nothing of the daemon's is there (its working folder may hold the config and data).
  args.push("--chdir", "/");
  return args;
}

let mounts: Array<{ path: string; symlink?: string }> | undefined;

/**
 * The library folders (top-level symlinks such as /lib -> usr/lib kept as symlinks), the loader's
 * cache, the time zone and Node itself. Not /usr/bin: there is no shell inside.
 */
function systemMounts(): Array<{ path: string; symlink?: string }> {
  if (mounts) return mounts;
  const list: Array<{ path: string; symlink?: string }> = [];
  const seen = new Set<string>();
  const add = (entry: { path: string; symlink?: string }) => {
    if (seen.has(entry.path)) return;
    seen.add(entry.path);
    list.push(entry);
  };
  for (const dir of ["/lib", "/lib64", "/lib32", "/libx32", "/usr/lib", "/usr/lib64", "/usr/lib32", "/usr/libx32"]) {
    const stat = lstatSafe(dir);
    if (!stat) continue;
    if (stat.isSymbolicLink()) add({ path: dir, symlink: readlinkSync(dir) });
    else add({ path: dir });
  }
  // The loader finds multiarch libraries (/lib/x86_64-linux-gnu) through its cache; the time
  // zone file is what the isolates' local dates follow.
  for (const file of ["/etc/ld.so.cache", "/etc/localtime"]) if (existsSync(file)) add({ path: file });
  const node = realOr(process.execPath);
  add({ path: node });
  if (node !== process.execPath) add({ path: process.execPath });
  // Libraries outside the usual folders (a Nix store, a Node built against its own OpenSSL):
  // their folders too, as the loader of this Node finds them.
  for (const dir of libraryFolders(node)) {
    if (!list.some((mount) => !mount.symlink && (dir === mount.path || dir.startsWith(mount.path + path.sep)))) add({ path: dir });
  }
  mounts = list;
  return list;
}

/** Folders of the shared libraries `ldd` says the Node binary loads; none when there is no ldd. */
function libraryFolders(binary: string): string[] {
  const ldd = spawnSync("ldd", [binary], { encoding: "utf8", timeout: 5000, env: {} });
  if (ldd.status !== 0 || typeof ldd.stdout !== "string") return [];
  const folders = new Set<string>();
  // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" and "/lib64/ld-linux-x86-64.so.2 (0x...)"
  for (const match of ldd.stdout.matchAll(/(?:=>\s*)?(\/\S+)\s+\(0x/g)) folders.add(path.dirname(realOr(match[1]!)));
  return [...folders];
}

/**
 * What the worker may read: the worker's own folder (sandbox/, or dist/sandbox/: the sandbox
 * imports nothing from core/), the bundled npm packages beside it, hookd's package.json (Node reads "type" from it), and the two
 * packages it loads, isolated-vm and node-gyp-build, wherever node_modules holds them. Not the
 * package root as a whole: in a checkout it also holds events.config.ts, data/ and plugins/.
 */
function readableRoots(worker: string): string[] {
  const own = path.dirname(path.resolve(worker));
  // Compiled, the npm packages the worker's modules import are bundled into dist/chunks/.
  const roots = [own, path.join(path.dirname(own), "chunks"), path.join(PACKAGE_ROOT, "package.json")].filter((root) => existsSync(root));
  try {
    const require = createRequire(path.join(PACKAGE_ROOT, "package.json"));
    const ivm = path.dirname(realpathSync(require.resolve("isolated-vm/package.json")));
    roots.push(ivm);
    const gyp = path.dirname(realpathSync(createRequire(path.join(ivm, "package.json")).resolve("node-gyp-build/package.json")));
    roots.push(gyp);
  } catch {
    // Not resolvable from here: the worker fails to load isolated-vm and says so on its stderr.
  }
  return [...new Set(roots)].filter((root, _i, all) => !all.some((other) => other !== root && root.startsWith(other + path.sep)));
}

/** Node's flags: the permission model (unless switched off for the wall test), TypeScript sources without tsx. */
function nodeFlags(worker: string, permission: boolean, roots: string[]): string[] {
  // isolated-vm needs V8 without Node's startup snapshot.
  const flags = ["--no-node-snapshot"];
  // During development the worker runs from its TypeScript sources. tsx would compile them
  // through an esbuild child process, which the permission model forbids; Node strips the
  // types itself (its transformer, for the parameter properties hookd uses, runs in-process).
  // Node 26 strips types by default and has no transform flag (a .ts entry there must be
  // strip-only TypeScript, as the wall test's probe is).
  if (worker.endsWith(".ts") && process.allowedNodeEnvironmentFlags.has("--experimental-transform-types")) {
    flags.push("--experimental-transform-types", "--disable-warning=ExperimentalWarning");
  }
  if (permission) {
    flags.push("--permission", "--allow-addons", "--disable-warning=SecurityWarning");
    for (const root of roots) flags.push(`--allow-fs-read=${root}`);
    // node-gyp-build (isolated-vm's loader) asks whether this is Alpine; the file never exists
    // on glibc systems, but asking without the permission throws.
    flags.push("--allow-fs-read=/etc/alpine-release");
    // Node 26's permission model also guards sockets, the daemon's channel on fd 3 included, so
    // the process needs --allow-net to open it. The network itself stays out of reach where the
    // kernel wall stands (a network namespace with nothing but its own loopback); without it, on
    // Node 26, the permission model no longer keeps JavaScript off the network (README,
    // "Isolation layers"). Node 24 has no network permission at all.
    if (process.allowedNodeEnvironmentFlags.has("--allow-net")) flags.push("--allow-net", "--disable-warning=ExperimentalWarning");
  }
  return flags;
}

function sandboxEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of KEPT_ENV) {
    const value = process.env[name];
    if (value !== undefined) env[name] = value;
  }
  return { ...env, ...extra };
}

function lstatSafe(file: string): ReturnType<typeof lstatSync> | undefined {
  try {
    return lstatSync(file);
  } catch {
    return undefined;
  }
}

function realOr(file: string): string {
  try {
    return realpathSync(file);
  } catch {
    return file;
  }
}
