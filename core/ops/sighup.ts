/**
 * SIGHUP reloads the config and the plugins (`systemctl reload hookd` sends it through the
 * unit's ExecReload=), wrapped in RELOADING=1 ... READY=1 so systemd sees when the new versions
 * serve. Signals that arrive during a reload make one more reload after it, never two at once;
 * a reload that fails leaves the previous config and plugins serving.
 */
import type { ConfigReloadResult } from "../config/watch.ts";
import type { Logger } from "../base/log.ts";
import type { ReloadResult } from "../plugins/manager.ts";
import type { PluginStatus } from "../plugins/status.ts";
import type { ServiceNotifications } from "./systemd.ts";

export interface ReloadTarget {
  reload(): Promise<{ config: ConfigReloadResult | undefined; plugins: ReloadResult[] }>;
  readonly url: string;
  readonly plugins: { list(): PluginStatus[] };
}

export interface SighupOptions {
  daemon: ReloadTarget;
  service: ServiceNotifications;
  logger: Logger;
  /** A stopping daemon ignores SIGHUP. */
  stopping: () => boolean;
}

/** Installs the SIGHUP handler; returns the function that removes it. */
export function reloadOnSighup(options: SighupOptions): () => void {
  const log = options.logger.child({ component: "daemon" });
  let running: Promise<void> | undefined;
  let again = false;

  const reloadOnce = async (): Promise<void> => {
    log.info({ signal: "SIGHUP" }, "reloading config and plugins");
    try {
      const result = await options.service.reload(
        () => options.daemon.reload(),
        (done, error) =>
          error !== undefined
            ? `reload failed: ${(error as Error).message ?? String(error)}; the previous config and plugins serve`
            : done?.config?.ok === false
              ? `config reload failed (${done.config.error?.code}); the previous config serves; ${pluginSummary(options.daemon)}`
              : `reloaded; ${readyStatus(options.daemon)}`,
      );
      const failed = result.plugins.filter((p) => !p.ok).map((p) => p.plugin);
      const fields = { config: result.config?.ok ?? null, changed: result.config?.changed, plugins: result.plugins.length - failed.length, failed };
      if (result.config?.ok === false || failed.length > 0) log.warn(fields, "reload done with errors; what failed keeps its previous version");
      else log.info(fields, "reload done");
    } catch (error) {
      log.error({ err: error }, "reload failed; the previous config and plugins keep serving");
    }
  };

  const onSignal = (): void => {
    if (options.stopping()) return;
    if (running) {
      again = true;
      return;
    }
    running = (async () => {
      do {
        again = false;
        await reloadOnce();
      } while (again && !options.stopping());
    })().finally(() => {
      running = undefined;
    });
  };

  process.on("SIGHUP", onSignal);
  return () => process.off("SIGHUP", onSignal);
}

/** STATUS= text for `systemctl status`: where hookd listens and how its plugins fare. */
export function readyStatus(daemon: Pick<ReloadTarget, "url" | "plugins">): string {
  return `listening on ${daemon.url}; ${pluginSummary(daemon)}`;
}

function pluginSummary(daemon: Pick<ReloadTarget, "plugins">): string {
  const plugins = daemon.plugins.list().filter((p) => p.state !== "removed");
  const failed = plugins.filter((p) => p.state === "failed").length;
  return `${plugins.length - failed} plugin${plugins.length - failed === 1 ? "" : "s"} loaded${failed > 0 ? `, ${failed} failed` : ""}`;
}
