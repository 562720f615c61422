/**
 * A sink on 127.0.0.1 that fixture plugins report to (`SINK_URL`): it records every JSON body by
 * path, and answers as the test says (status, delay, or never).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";

export interface SinkRecord {
  path: string;
  body: Record<string, any>;
  /** When the request arrived and when it was answered (ms, this process's clock). */
  at: number;
  answeredAt?: number;
}

export type SinkBehaviour = { status?: number; delayMs?: number; hang?: boolean };

export class Sink {
  readonly records: SinkRecord[] = [];
  url = "";
  /** How to answer a request; the default answers 200 at once. */
  behaviour: (record: SinkRecord) => SinkBehaviour = () => ({});
  private server: Server | undefined;
  private readonly waiters = new Set<() => void>();

  async start(): Promise<this> {
    this.server = createServer((request, response) => this.receive(request, response));
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    const address = this.server.address();
    this.url = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
    return this;
  }

  on(path: string): SinkRecord[] {
    return this.records.filter((r) => r.path === path);
  }

  /** Waits until `check` holds over the records. */
  async waitFor(check: (records: SinkRecord[]) => boolean, timeoutMs = 10_000): Promise<void> {
    if (check(this.records)) return;
    await new Promise<void>((resolve, reject) => {
      const waiter = () => {
        if (!check(this.records)) return;
        clearTimeout(timer);
        this.waiters.delete(waiter);
        resolve();
      };
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new Error(`sink: condition not met within ${timeoutMs} ms (${this.records.length} records)`));
      }, timeoutMs);
      this.waiters.add(waiter);
    });
  }

  async close(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise((resolve) => this.server?.close(resolve));
  }

  private receive(request: IncomingMessage, response: ServerResponse): void {
    let text = "";
    request.setEncoding("utf8").on("data", (chunk: string) => (text += chunk));
    request.on("end", () => {
      let body: Record<string, any> = {};
      try {
        body = JSON.parse(text) as Record<string, any>;
      } catch {
        body = { text };
      }
      const record: SinkRecord = { path: request.url ?? "/", body, at: performance.now() };
      const behaviour = this.behaviour(record);
      this.records.push(record);
      for (const waiter of [...this.waiters]) waiter();
      if (behaviour.hang) return;
      const answer = () => {
        record.answeredAt = performance.now();
        response.statusCode = behaviour.status ?? 200;
        response.end("ok");
      };
      if (behaviour.delayMs) setTimeout(answer, behaviour.delayMs);
      else answer();
    });
  }
}
