/**
 * The `hookd` command. `start` and `dev` run the daemon in the foreground; the other commands
 * talk to a running daemon over its HTTP API, or work on the project's files.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { parseArgs } from "node:util";
import type { LoadConfigOptions } from "./config/load.ts";
import { HookdError } from "../sandbox/contract/errors.ts";
import { PACKAGE_JSON } from "../sandbox/contract/locate.ts";

// Each command loads only what it needs: a client command must not pay for the daemon's
// modules (fastify, isolated-vm, TypeScript) at every call.
const loadConfig = async (options: LoadConfigOptions) => (await import("./config/load.ts")).loadConfig(options);

const USAGE = `hookd — run TypeScript event handlers in V8 isolates

Usage:
  hookd start [--config F] [--plugins DIR] [--data DIR]   run the daemon (JSON logs, hot reload)
  hookd dev   [--config F] [--plugins DIR] [--data DIR]   the same with readable logs
  hookd emit <event> [json | @file | -]                   send an event to the running daemon
  hookd run <action> [json | @file | -]                   start an action by hand
  hookd runs [--status pending|running|done|dead|failed] [--plugin P] [--event E] [--replay ID] [--limit N]
  hookd retry <run id>                                    run a failed or dead run again
  hookd status [--json]                                   the running daemon: plugins, queue, dead letters,
                                                          recent errors (exit 1 when it is not ready)
  hookd replay --event <name> --since <time> [--until <time>] [--plugin P] [--detach]
                                                          run stored events' handlers again, with progress
                                                          (time: ISO-8601, epoch ms, or ago: 30m, 2h, 7d)
  hookd check [--config F] [--plugins DIR]                compile and type-check config and plugins
  hookd types [--config F]                                write the editor types: catalog, isolate globals
  hookd --version                                         hookd's version and the Node.js it runs on
  hookd init [dir]                                        scaffold a project (config, example plugin and
                                                          its tests, tsconfig, npm scripts, systemd unit)
  hookd oktell-sim --user <login> [--send file.xml]...    play one operator's telephony workstation bridge:
                                                          post the XML files as its events (UTF-16), then
                                                          answer its commands with the seed's documents

Client commands find the daemon through --url, HOOKD_URL, or the config's server settings;
the token comes from --token, HOOKD_TOKEN or the config.`;

const OPTIONS = {
  config: { type: "string" },
  plugins: { type: "string" },
  data: { type: "string" },
  url: { type: "string" },
  token: { type: "string" },
  status: { type: "string" },
  plugin: { type: "string" },
  event: { type: "string" },
  limit: { type: "string" },
  replay: { type: "string" },
  since: { type: "string" },
  until: { type: "string" },
  detach: { type: "boolean" },
  json: { type: "boolean" },
  user: { type: "string" },
  send: { type: "string", multiple: true },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean", short: "v" },
} as const;

export async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true });
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n\n${USAGE}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  const [command, ...args] = positionals;
  if (values.version || command === "version") {
    process.stdout.write(`hookd ${PACKAGE_JSON.version} (Node.js ${process.version})\n`);
    return 0;
  }
  if (values.help || command === undefined || command === "help") {
    process.stdout.write(`${USAGE}\n`);
    return command === undefined && !values.help ? 2 : 0;
  }
  const configOptions: LoadConfigOptions = { configFile: values.config, pluginsDir: values.plugins, dataDir: values.data };
  try {
    switch (command) {
      case "start":
      case "dev":
        return await runDaemon(configOptions, command === "dev");
      case "emit":
        return await postJson(values, `/events/${encodeURIComponent(required(args[0], "hookd emit <event> [json]"))}`, await readBody(args[1]));
      case "run":
        return await postJson(values, `/actions/${encodeURIComponent(required(args[0], "hookd run <action> [json]"))}`, await readBody(args[1]));
      case "runs":
        return await listRuns(values);
      case "status":
        return await showStatus(values);
      case "retry":
        return await postJson(values, `/api/runs/${encodeURIComponent(required(args[0], "hookd retry <run id>"))}/retry`, undefined);
      case "replay": {
        const { runReplayCommand } = await import("./delivery/replay-command.ts");
        return await runReplayCommand(values, (pathname, init) => request(values, pathname, init), process.stdout);
      }
      case "check":
        // It compiles plugins and starts a sandbox process, as the daemon does: same clean esbuild.
        await (await import("./ops/child-env.ts")).startEsbuildService();
        return await (await import("./check.ts")).checkProject(configOptions, process.stdout);
      case "init": {
        const { describeInit, initProject } = await import("./init.ts");
        process.stdout.write(describeInit(await initProject(args[0] ?? "."), process.cwd()));
        return 0;
      }
      case "types": {
        const { writeEnvDeclaration } = await import("./env-types.ts");
        const config = await loadConfig(configOptions);
        const written = await writeEnvDeclaration(config.file, config.plugins.dir);
        process.stdout.write(`wrote ${written.map((file) => path.relative(process.cwd(), file)).join(", ")}\n`);
        return 0;
      }
      case "oktell-sim":
        return await runOktellSimulator(values);
      default:
        process.stderr.write(`unknown command "${command}"\n\n${USAGE}\n`);
        return 2;
    }
  } catch (error) {
    if (error instanceof HookdError) {
      process.stderr.write(`${error.code}: ${error.message}\n`);
      return 1;
    }
    throw error;
  }
}

/** `hookd oktell-sim`: a workstation bridge for demos (core/integrations/oktell/simulator.ts); runs until SIGINT/SIGTERM. */
async function runOktellSimulator(values: ClientValues & { user?: string; send?: string[] }): Promise<number> {
  const user = required(values.user, "hookd oktell-sim --user <login> [--send file.xml]...");
  const { OktellSimulator } = await import("./integrations/oktell/simulator.ts");
  const { url, token } = await daemonEndpoint(values);
  const simulator = new OktellSimulator({
    url,
    token,
    user,
    waitSeconds: 25,
    onCommand: (command) => process.stdout.write(`${JSON.stringify({ received: command })}\n`),
  });
  for (const file of values.send ?? []) {
    const sent = await simulator.sendEvents(await readFile(file, "utf8"));
    process.stdout.write(`${JSON.stringify({ sent: file, status: sent.status, answer: sent.body })}\n`);
    if (sent.status >= 400) return 1;
  }
  simulator.start();
  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  await simulator.stop();
  return 0;
}

async function runDaemon(configOptions: LoadConfigOptions, dev: boolean): Promise<number> {
  // NOTIFY_SOCKET and WATCHDOG_* are taken out of the environment before anything starts a
  // child process (esbuild, the sandbox): only the daemon speaks to systemd.
  const systemd = (await import("./ops/sd-notify.ts")).takeSystemdEnv();
  // Before the config is bundled: esbuild's service must not inherit the daemon's secrets.
  await (await import("./ops/child-env.ts")).startEsbuildService();
  const [{ Daemon }, { createLogger }, { ServiceNotifications }, { readyStatus, reloadOnSighup }] = await Promise.all([
    import("./daemon.ts"),
    import("./base/log.ts"),
    import("./ops/systemd.ts"),
    import("./ops/sighup.ts"),
  ]);
  const config = await loadConfig(configOptions);
  const logger = createLogger({ level: dev && config.log.level === "info" ? "debug" : config.log.level, pretty: dev, maxFieldChars: config.log.maxFieldChars });
  // A no-op outside systemd (no NOTIFY_SOCKET).
  const service = new ServiceNotifications({ logger, systemd });
  // `hookd dev` keeps the editor types current: written at start and after each config reload.
  if (dev) await writeEnvTypes(config.file);
  const reloadLines = dev ? await devReloadLines() : {};
  let signals = 0;
  // The stop signals are handled from before the daemon starts: without a handler, a SIGTERM
  // that arrives while it starts (or just after "hookd ready") would kill it undrained. A stop
  // requested during start-up waits for the start, then drains.
  // A SIGHUP meanwhile has nothing to do (the files are being read now) but must not kill it.
  const hupWhileStarting = () => logger.info({ signal: "SIGHUP" }, "reload requested during start-up: the config being loaded is current");
  process.on("SIGHUP", hupWhileStarting);
  const starting = Daemon.start({ config, logger, releaseCompiler: true, ...reloadLines });
  const stopped = new Promise<number>((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      signals++;
      if (signals > 1) {
        // A second signal: the operator wants out now. Accepted events are on disk already.
        logger.warn({ signal }, "second signal: exiting at once");
        process.exit(1);
      }
      logger.info({ signal }, "stopping: draining runs in flight");
      service.stopping(`stopping on ${signal}: draining runs in flight`);
      starting.then((daemon) => daemon.stop()).then(
        () => resolve(0),
        (error: unknown) => {
          logger.error({ err: error }, "stop failed");
          resolve(1);
        },
      );
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
  });
  // HOOKD_EXIT_WITH_PARENT=1: stop, draining as on SIGTERM, once the process that started hookd
  // is gone (it was reparented). For supervisors and test runners that may die without
  // stopping their children.
  if (process.env.HOOKD_EXIT_WITH_PARENT === "1") {
    const parent = process.ppid;
    const watch = setInterval(() => {
      if (process.ppid === parent) return;
      clearInterval(watch);
      process.kill(process.pid, "SIGTERM");
    }, 1000);
    watch.unref();
  }
  const daemon = await starting;
  reloadOnSighup({ daemon, service, logger, stopping: () => signals > 0 });
  process.off("SIGHUP", hupWhileStarting);
  await service.ready({ status: readyStatus(daemon), withholdWatchdog: () => daemon.readiness.storeUnwritableReason() });
  const code = await stopped;
  await service.close();
  logger.flush?.();
  // The stop is over (within its budget, see Daemon.stop). A handle an abandoned step left open
  // (a socket stuck in a query, a thread) must not keep the process alive past it.
  setTimeout(() => process.exit(code), 1000).unref();
  return code;
}

/** `hookd dev` prints one readable line per plugin or config reload. */
async function devReloadLines() {
  const { formatConfigReloadLine, formatReloadLine } = await import("./plugins/reload-line.ts");
  return {
    onPluginReload: (result: Parameters<typeof formatReloadLine>[0]) => process.stdout.write(`${formatReloadLine(result)}\n`),
    onConfigReload: (result: Parameters<typeof formatConfigReloadLine>[0]) => {
      process.stdout.write(`${formatConfigReloadLine(result)}\n`);
      if (result.ok) void writeEnvTypes(result.file);
    },
  };
}

/** Writes hookd-env.d.ts when it is missing or stale; a failure only costs editor types. */
async function writeEnvTypes(configFile: string): Promise<void> {
  try {
    await (await import("./env-types.ts")).writeEnvDeclaration(configFile);
  } catch (error) {
    process.stderr.write(`could not write the editor types (hookd-env.d.ts): ${(error as Error).message}\n`);
  }
}

interface ClientValues {
  url?: string | undefined;
  token?: string | undefined;
  config?: string | undefined;
  status?: string | undefined;
  plugin?: string | undefined;
  event?: string | undefined;
  limit?: string | undefined;
  replay?: string | undefined;
}

async function daemonEndpoint(values: ClientValues): Promise<{ url: string; token: string | undefined }> {
  const token = values.token ?? process.env.HOOKD_TOKEN;
  const explicit = values.url ?? process.env.HOOKD_URL;
  if (explicit) return { url: explicit.replace(/\/$/, ""), token };
  try {
    const config = await loadConfig({ configFile: values.config });
    const host = config.server.host === "0.0.0.0" || config.server.host === "::" ? "127.0.0.1" : config.server.host;
    return { url: `http://${host.includes(":") ? `[${host}]` : host}:${config.server.port}`, token: token ?? config.server.token };
  } catch (error) {
    if (error instanceof HookdError && error.code === "HOOKD_CONFIG_NOT_FOUND") {
      return { url: `http://127.0.0.1:${process.env.HOOKD_PORT ?? 8711}`, token };
    }
    throw error;
  }
}

async function request(values: ClientValues, pathname: string, init: RequestInit): Promise<{ status: number; body: unknown }> {
  const { url, token } = await daemonEndpoint(values);
  const headers: Record<string, string> = { ...(init.headers as Record<string, string> | undefined) };
  if (token) headers.authorization = `Bearer ${token}`;
  let response: Response;
  try {
    response = await fetch(`${url}${pathname}`, { ...init, headers, signal: AbortSignal.timeout(30_000) });
  } catch (error) {
    throw new HookdError("HOOKD_CLI_DAEMON_UNREACHABLE", [url, (error as Error).cause ? String((error as Error).cause) : (error as Error).message]);
  }
  const text = await response.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: shown as text
  }
  return { status: response.status, body };
}

async function postJson(values: ClientValues, pathname: string, body: string | undefined): Promise<number> {
  const init: RequestInit = body === undefined ? { method: "POST" } : { method: "POST", body, headers: { "content-type": "application/json" } };
  const { status, body: answer } = await request(values, pathname, init);
  const out = status < 400 ? process.stdout : process.stderr;
  out.write(`${typeof answer === "string" ? answer : JSON.stringify(answer, null, 2)}\n`);
  return status < 400 ? 0 : 1;
}

async function showStatus(values: ClientValues & { json?: boolean | undefined }): Promise<number> {
  const { status, body } = await request(values, "/api/status", { method: "GET" });
  if (status >= 400) {
    process.stderr.write(`${JSON.stringify(body)}\n`);
    return 1;
  }
  const report = body as import("./ops/status.ts").DaemonStatus;
  if (values.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else process.stdout.write((await import("./ops/status.ts")).formatStatus(report, (await daemonEndpoint(values)).url));
  return report.ready ? 0 : 1;
}

async function listRuns(values: ClientValues): Promise<number> {
  const query = new URLSearchParams();
  for (const key of ["status", "plugin", "event", "limit"] as const) if (values[key]) query.set(key, values[key]!);
  if (values.replay) query.set("replayId", values.replay);
  const { status, body } = await request(values, `/api/runs?${query}`, { method: "GET" });
  if (status >= 400) {
    process.stderr.write(`${JSON.stringify(body)}\n`);
    return 1;
  }
  const runs = (body as { runs: Array<Record<string, unknown>> }).runs;
  if (runs.length === 0) {
    process.stdout.write("no runs\n");
    return 0;
  }
  for (const run of runs) {
    const error = run.lastError as { code?: string; message?: string } | null;
    process.stdout.write(
      `${String(run.id).padStart(6)}  ${String(run.status).padEnd(8)} ${String(run.plugin).padEnd(24)} ${String(run.eventName).padEnd(28)} attempts ${run.attempts}/${run.maxAttempts}${error ? `  ${error.code}: ${error.message}` : ""}\n`,
    );
  }
  return 0;
}

/** `json`, `@file` or `-` (standard input); nothing means `{}`. */
async function readBody(arg: string | undefined): Promise<string> {
  let text: string;
  if (arg === undefined) text = "{}";
  else if (arg === "-") text = await readStdin();
  else if (arg.startsWith("@")) text = await readFile(arg.slice(1), "utf8");
  else text = arg;
  try {
    JSON.parse(text);
  } catch (error) {
    throw new HookdError("HOOKD_CLI_USAGE", [`the payload is not JSON: ${(error as Error).message}`]);
  }
  return text;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

function required(value: string | undefined, usage: string): string {
  if (!value) throw new HookdError("HOOKD_CLI_USAGE", [`usage: ${usage}`]);
  return value;
}
