/**
 * The live part of the console: the daemon tells the hub what happened (an event accepted, a run
 * finished, a plugin reloaded) and the hub pushes it to every open `GET /api/stream` as
 * server-sent events. With nobody watching it does nothing, so it costs the daemon nothing.
 */
import type { ServerResponse } from "node:http";
import type { PluginStatus } from "../plugins/status.ts";
import type { DeliveryRecord, EventRecord, Store } from "../store/types.ts";
import type { RunFinished } from "../delivery/dispatcher.ts";

/** The SSE event names a console client listens to; the type of each one's data. */
export interface ConsoleMessages {
  /** Sent once on connect. */
  hello: { time: string };
  /** A stored event, as `GET /api/events` lists it. */
  event: EventRecord;
  /** More events arrived than the stream carries one by one: reload the list. */
  "events-skipped": { count: number };
  /** A run finished (done, back to pending for a retry, or dead). */
  run: Pick<DeliveryRecord, "id" | "eventId" | "eventName" | "kind" | "plugin" | "target" | "status" | "attempts" | "maxAttempts" | "durationMs" | "lastError">;
  /** The plugins after a load, reload, failed attempt or removal. */
  plugins: PluginStatus[];
}

export interface ConsoleHubOptions {
  store: Pick<Store, "getEvent">;
  plugins: () => PluginStatus[];
  /** Keep-alive comment interval, so proxies and browsers keep an idle stream open. */
  heartbeatMs?: number;
}

/** Events pushed one by one per flush; beyond this the clients are told to reload the list. */
const MAX_EVENTS_PER_FLUSH = 50;
const FLUSH_MS = 25;
/** A client that lets this much pile up unread is cut off; its browser reconnects and reloads. */
const MAX_BUFFERED_BYTES = 1024 * 1024;

export class ConsoleHub {
  private readonly clients = new Set<ServerResponse>();
  private pendingEvents: string[] = [];
  private flushTimer: NodeJS.Timeout | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly options: ConsoleHubOptions) {}

  get watching(): number {
    return this.clients.size;
  }

  /** Takes over a hijacked response as an SSE stream until the client goes or the hub closes. */
  attach(response: ServerResponse): void {
    if (this.closed) {
      response.writeHead(503).end();
      return;
    }
    response.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache, no-transform",
      // The socket goes with the stream: a kept-alive socket left idle by a stream ended at
      // stop would hold the closing server open until the browser drops it.
      connection: "close",
      // nginx and friends would otherwise buffer the stream.
      "x-accel-buffering": "no",
    });
    this.clients.add(response);
    response.on("close", () => this.detach(response));
    this.write(response, "hello", { time: new Date().toISOString() });
    this.heartbeat ??= setInterval(() => {
      for (const client of this.clients) this.writeRaw(client, ": ping\n\n");
    }, this.options.heartbeatMs ?? 15_000).unref();
  }

  /** An event was stored; it reaches the clients within a flush interval. */
  eventAccepted(id: string): void {
    if (this.clients.size === 0) return;
    this.pendingEvents.push(id);
    this.flushTimer ??= setTimeout(() => void this.flushEvents(), FLUSH_MS);
  }

  runFinished({ delivery, plugin, outcome, status }: RunFinished): void {
    if (this.clients.size === 0) return;
    this.broadcast("run", {
      id: delivery.id,
      eventId: delivery.event.id,
      eventName: delivery.event.name,
      kind: delivery.kind,
      plugin,
      target: delivery.target,
      status,
      attempts: delivery.attempt,
      maxAttempts: delivery.maxAttempts,
      durationMs: outcome.durationMs,
      lastError: outcome.ok ? null : outcome.error,
    });
  }

  pluginsChanged(): void {
    if (this.clients.size === 0) return;
    this.broadcast("plugins", this.options.plugins());
  }

  /** Ends every stream: a stopping server waits for open connections otherwise. */
  close(): void {
    this.closed = true;
    clearTimeout(this.flushTimer);
    clearInterval(this.heartbeat);
    // The socket goes too, once the end is written: a closing server waits for every socket.
    for (const client of this.clients) client.end(() => client.socket?.destroy());
    this.clients.clear();
  }

  private async flushEvents(): Promise<void> {
    this.flushTimer = undefined;
    const ids = this.pendingEvents;
    this.pendingEvents = [];
    if (ids.length > MAX_EVENTS_PER_FLUSH) {
      this.broadcast("events-skipped", { count: ids.length });
      return;
    }
    for (const id of ids) {
      const event = await this.options.store.getEvent(id).catch(() => null);
      if (event) this.broadcast("event", event);
    }
  }

  private broadcast<K extends keyof ConsoleMessages>(name: K, data: ConsoleMessages[K]): void {
    for (const client of this.clients) this.write(client, name, data);
  }

  private write<K extends keyof ConsoleMessages>(client: ServerResponse, name: K, data: ConsoleMessages[K]): void {
    this.writeRaw(client, `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  private writeRaw(client: ServerResponse, text: string): void {
    if (client.writableLength > MAX_BUFFERED_BYTES) {
      client.destroy();
      this.detach(client);
      return;
    }
    client.write(text);
  }

  private detach(client: ServerResponse): void {
    this.clients.delete(client);
    if (this.clients.size === 0) {
      clearInterval(this.heartbeat);
      this.heartbeat = undefined;
    }
  }
}
