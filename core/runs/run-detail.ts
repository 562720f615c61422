/**
 * Run detail, put together once for the daemon: the recorder the host services and webhook
 * sender report to, the dispatcher's sink that takes an attempt's activity (with the error's
 * TypeScript lines) into the finish it is stored with, and the limits it is bounded by (the
 * plugin's own log-line and emit limits over the config's, `log.maxFieldChars`).
 */
import type { RunActivitySink } from "../delivery/dispatcher.ts";
import type { RunActivity, RunAttemptError, RunError } from "../store/types.ts";
import { RunActivityRecorder, type ActivityLimits } from "./activity.ts";
import { SourceContext } from "./source-context.ts";

export interface RunDetailOptions {
  /** Limits as configured now, for a plugin (its declared overrides included). */
  limits: (plugin: string) => ActivityLimits;
  /** The plugins folder: error locations are read from there. */
  root: () => string;
  entryFile?: (plugin: string) => string | undefined;
}

export class RunDetail implements RunActivitySink {
  readonly recorder: RunActivityRecorder;
  private readonly source: SourceContext;

  constructor(options: RunDetailOptions) {
    this.recorder = new RunActivityRecorder(options.limits);
    this.source = new SourceContext({ root: options.root, entryFile: options.entryFile });
  }

  begin(runId: string, plugin: string): void {
    this.recorder.begin(runId, plugin);
  }

  take(runId: string): RunActivity {
    return this.recorder.take(runId);
  }

  describeError(plugin: string, error: RunError): RunAttemptError {
    return this.source.describe(plugin, error);
  }
}
