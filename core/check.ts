/**
 * `hookd check` and `hookd types`: compile the config and every plugin, type-check them against
 * the catalog with the TypeScript compiler, and list which plugin handles which event.
 */
import { existsSync } from "node:fs";
import path from "node:path";
import ts from "typescript";
import { compilePlugin } from "./compile/compile-plugin.ts";
import { loadConfig, type LoadConfigOptions } from "./config/load.ts";
import { HookdError } from "../sandbox/contract/errors.ts";
import { ownTypes } from "../sandbox/contract/locate.ts";
import { envDeclarationPath, globalsDeclarationPath, writeEnvDeclaration } from "./env-types.ts";
import { discoverPlugins } from "./plugins/discover.ts";
import { createSandbox, RUNTIME_FILES } from "../sandbox/index.ts";
import type { PluginManifest } from "../sandbox/contract/run.ts";
import { FakeNetwork } from "./testing/fake-network.ts";
import { fakeServices } from "./testing/fake-services.ts";
import { MemoryKv } from "./testing/memory-kv.ts";
import { parseFlowRules } from "./routing/flow-rules.ts";

// The editor types live in env-types.ts (no TypeScript compiler needed to write them).
export { envDeclarationPath, writeEnvDeclaration } from "./env-types.ts";

// Types only: the sources, or the .d.ts files of the compiled build.
const OWN_FILES = {
  api: RUNTIME_FILES.apiTypes,
  config: ownTypes(import.meta.url, "./config/define.ts"),
  catalog: ownTypes(import.meta.url, "./catalog/index.ts"),
};

interface Problem {
  where: string;
  code: string;
  message: string;
}

export async function checkProject(options: LoadConfigOptions, out: NodeJS.WritableStream): Promise<number> {
  const config = await loadConfig(options);
  const root = path.dirname(config.plugins.dir);
  const problems: Problem[] = [];
  await writeEnvDeclaration(config.file, config.plugins.dir);

  const entries = await discoverPlugins(config.plugins.dir);
  const compiled = new Map<string, Awaited<ReturnType<typeof compilePlugin>>>();
  for (const entry of entries) {
    try {
      const { compileTimeoutMs: timeoutMs, maxSourceBytes, maxBundleBytes, maxNesting } = config.plugins;
      compiled.set(
        entry.name,
        await compilePlugin(entry.file, { root, pluginsDir: config.plugins.dir, limits: { timeoutMs, maxSourceBytes, maxBundleBytes, maxNesting }, protectedPaths: [config.file, config.dataDir] }),
      );
    } catch (error) {
      const e = error as HookdError;
      problems.push({ where: path.relative(root, entry.file), code: e.code, message: e.message });
    }
  }

  // Only what compiled: the compiler vetted its files (TypeScript would read a FIFO named like a
  // plugin, blocking, or a file outside the plugins folder).
  for (const diagnostic of typeCheck(config.file, config.plugins.dir, entries.filter((e) => compiled.has(e.name)).map((e) => e.file))) problems.push(diagnostic);

  // Load what compiled, in a real sandbox, to learn what each plugin subscribes to.
  const manifests = new Map<string, PluginManifest>();
  if (compiled.size > 0) {
    // Only loads happen here: nothing runs, so nothing reaches the test kit's fake services.
    const sandbox = createSandbox({
      mode: "process",
      secrets: {},
      services: fakeServices({ catalog: config.events, kv: new MemoryKv(), network: new FakeNetwork(), secrets: {}, onLog: () => undefined, onEmit: () => undefined }),
    });
    try {
      for (const [name, result] of compiled) {
        const entry = entries.find((e) => e.name === name)!;
        try {
          const manifest = await sandbox.load({
            plugin: name,
            version: 1,
            file: path.relative(root, entry.file),
            code: result.code,
            sourceMap: result.sourceMap,
            limits: config.sandbox,
          });
          manifests.set(name, manifest);
          try {
            parseFlowRules(path.relative(root, entry.file), manifest.flow, config.events);
          } catch (error) {
            problems.push({ where: path.relative(root, entry.file), code: "HOOKD_FLOW_INVALID", message: (error as Error).message });
          }
          for (const event of manifest.events) {
            if (!(event in config.events)) {
              problems.push({ where: path.relative(root, entry.file), code: "HOOKD_PLUGIN_UNKNOWN_EVENT", message: `subscribes to unknown event ${event}` });
            }
          }
        } catch (error) {
          const e = error as { code?: string; message?: string; location?: string };
          problems.push({ where: e.location ?? path.relative(root, entry.file), code: e.code ?? "HOOKD_PLUGIN_LOAD", message: e.message ?? String(error) });
        }
      }
    } finally {
      await sandbox.close();
    }
  }

  out.write(`config  ${path.relative(process.cwd(), config.file) || config.file}: ${Object.keys(config.events).length} events, ${config.routes.length} routes, ${config.webhooks.length} webhooks\n`);
  out.write(`plugins ${path.relative(process.cwd(), config.plugins.dir) || "."}: ${entries.length} found, ${manifests.size} loaded\n\n`);
  for (const [name, manifest] of manifests) {
    const handles = [...manifest.events.map((e) => `on ${e}`), ...manifest.actions.map((a) => `action ${a}`)];
    out.write(`  ${name.padEnd(28)} ${handles.join(", ") || "(handles nothing)"}\n`);
  }
  for (const route of config.routes) out.write(`  ${"(route)".padEnd(28)} on ${route.on} -> action ${route.run}\n`);
  for (const hook of config.webhooks) out.write(`  ${"(webhook)".padEnd(28)} on ${hook.on} -> ${hook.method} ${hook.url}\n`);
  if (problems.length > 0) {
    out.write(`\n${problems.length} problem${problems.length === 1 ? "" : "s"}:\n`);
    for (const p of problems) out.write(`  ${p.where}: ${p.code}: ${p.message}\n`);
    return 1;
  }
  out.write("\nno problems\n");
  return 0;
}

/** Type errors in the config and plugin files, with the project's own tsconfig when it has one. */
function typeCheck(configFile: string, pluginsDir: string, pluginFiles: string[]): Problem[] {
  const dir = path.dirname(configFile);
  const tsconfigPath = ts.findConfigFile(dir, ts.sys.fileExists, "tsconfig.json");
  let compilerOptions: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    allowImportingTsExtensions: true,
    skipLibCheck: true,
  };
  if (tsconfigPath) {
    const read = ts.readConfigFile(tsconfigPath, ts.sys.readFile);
    const parsed = ts.parseJsonConfigFileContent(read.config, ts.sys, path.dirname(tsconfigPath));
    compilerOptions = { ...parsed.options, noEmit: true };
  }
  // A project without hookd in its node_modules (a config in /etc/hookd, say) still type-checks:
  // `hookd`, `hookd/config` and `hookd/catalog` resolve to this installation's own files.
  const resolvesHookd = ts.resolveModuleName("hookd", configFile, compilerOptions, ts.sys).resolvedModule !== undefined;
  if (!resolvesHookd) {
    compilerOptions = {
      ...compilerOptions,
      paths: { ...compilerOptions.paths, hookd: [OWN_FILES.api], "hookd/config": [OWN_FILES.config], "hookd/catalog": [OWN_FILES.catalog] },
    };
  }
  // The config in the project's own program; the plugins in one with exactly the isolate's globals
  // (plugins/tsconfig.json, which `hookd types` writes): `process` or `document` there is an error.
  const configNames = [configFile, envDeclarationPath(configFile)].filter((f) => existsSync(f));
  const pluginNames = [envDeclarationPath(configFile), globalsDeclarationPath(configFile), ...pluginFiles].filter((f) => existsSync(f));
  let pluginOptions = pluginCompilerOptions(pluginsDir, compilerOptions);
  // Where the plugins' own tsconfig cannot resolve `hookd`, the project's way (or this installation's files) is used.
  if (ts.resolveModuleName("hookd", pluginNames.at(-1) ?? configFile, pluginOptions, ts.sys).resolvedModule === undefined) {
    pluginOptions = { ...pluginOptions, paths: compilerOptions.paths, baseUrl: compilerOptions.baseUrl, pathsBasePath: compilerOptions.pathsBasePath };
  }
  return [...diagnose(ts.createProgram({ rootNames: configNames, options: compilerOptions }), configNames), ...diagnose(ts.createProgram({ rootNames: pluginNames, options: pluginOptions }), pluginFiles)];
}

/** The options of the plugins' own tsconfig.json, else the project's with ES2023 and no `types`. */
function pluginCompilerOptions(pluginsDir: string, projectOptions: ts.CompilerOptions): ts.CompilerOptions {
  const found = path.join(pluginsDir, "tsconfig.json");
  if (existsSync(found)) {
    const read = ts.readConfigFile(found, ts.sys.readFile);
    return { ...ts.parseJsonConfigFileContent(read.config, ts.sys, path.dirname(found)).options, noEmit: true };
  }
  return { ...projectOptions, lib: ["lib.es2023.d.ts"], types: [], noEmit: true };
}

function diagnose(program: ts.Program, files: string[]): Problem[] {
  const checked = new Set(files.map((f) => path.resolve(f)));
  return ts
    .getPreEmitDiagnostics(program)
    .filter((d) => d.file === undefined || checked.has(path.resolve(d.file.fileName)))
    .map((d) => {
      const message = ts.flattenDiagnosticMessageText(d.messageText, "\n");
      if (!d.file || d.start === undefined) return { where: "(project)", code: "HOOKD_PLUGIN_TYPECHECK", message };
      const { line, character } = d.file.getLineAndCharacterOfPosition(d.start);
      return {
        where: `${path.relative(process.cwd(), d.file.fileName)}:${line + 1}:${character + 1}`,
        code: "HOOKD_PLUGIN_TYPECHECK",
        message: `TS${d.code}: ${message}`,
      };
    });
}
