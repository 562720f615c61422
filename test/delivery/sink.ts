/**
 * A sink on 127.0.0.1 that fixture plugins report to (`SINK_URL`): it records every JSON body by
 * path, and answers as the test says (status, delay, or never).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { afterAll, beforeAll } from "vitest";
import { TestDaemon, TestProject, type ProjectOptions } from "../helpers/daemon.ts";
import { readBody, startLocalServer, type LocalServer } from "../helpers/http.ts";
import { Arrivals } from "../helpers/wait.ts";

export interface SinkRecord {
  path: string;
  body: Record<string, any>;
  /** When the request arrived and when it was answered (ms, this process's clock). */
  at: number;
  answeredAt?: number;
}

export type SinkBehaviour = { status?: number; delayMs?: number; hang?: boolean };

export class Sink {
  url = "";
  /** How to answer a request; the default answers 200 at once. */
  behaviour: (record: SinkRecord) => SinkBehaviour = () => ({});
  private server: LocalServer | undefined;
  private readonly arrived = new Arrivals<SinkRecord>();

  /** Every request so far, in arrival order. */
  get records(): SinkRecord[] {
    return this.arrived.items;
  }

  async start(): Promise<this> {
    this.server = await startLocalServer((request, response) => void this.receive(request, response));
    this.url = this.server.origin;
    return this;
  }

  on(path: string): SinkRecord[] {
    return this.records.filter((r) => r.path === path);
  }

  /** Waits until `check` holds over the records. */
  async waitFor(check: (records: SinkRecord[]) => boolean, timeoutMs = 10_000): Promise<void> {
    await this.arrived.when(() => check(this.records), { timeoutMs, what: "the sink's condition", show: (r) => `${(r as SinkRecord).path} ${JSON.stringify((r as SinkRecord).body)}` });
  }

  async close(): Promise<void> {
    await this.server?.close();
  }

  private async receive(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const text = await readBody(request);
    let body: Record<string, any> = {};
    try {
      body = JSON.parse(text) as Record<string, any>;
    } catch {
      body = { text };
    }
    const record: SinkRecord = { path: request.url ?? "/", body, at: performance.now() };
    const behaviour = this.behaviour(record);
    this.arrived.push(record);
    if (behaviour.hang) return;
    const answer = () => {
      record.answeredAt = performance.now();
      response.statusCode = behaviour.status ?? 200;
      response.end("ok");
    };
    if (behaviour.delayMs) setTimeout(answer, behaviour.delayMs);
    else answer();
  }
}

/**
 * A sink and a real daemon that reports to it (`SINK_URL`) for one describe block: both started
 * before its tests, stopped and removed after them.
 */
export function useSinkDaemon(projectOptions: ProjectOptions, behaviour?: Sink["behaviour"]): { sink: Sink; project: TestProject; daemon: TestDaemon } {
  const sink = new Sink();
  if (behaviour) sink.behaviour = behaviour;
  const project = new TestProject(projectOptions);
  const daemon = new TestDaemon(project);
  beforeAll(async () => {
    await sink.start();
    await daemon.start({ env: { SINK_URL: sink.url } });
  });
  afterAll(async () => {
    await daemon.stop();
    await sink.close();
    project.remove();
  });
  return { sink, project, daemon };
}
