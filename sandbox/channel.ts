/**
 * The wire between the daemon and the sandbox process: a socket (fd 3 of the child) carrying one
 * message per line, everything sent during one turn of the event loop in one write.
 *
 * Runs and their results, the only messages sent at the rate events arrive, have a wire form of
 * their own: a run's payload is JSON already (the daemon serializes it once), and it travels as
 * is, after a tab, instead of being escaped into another JSON document and unescaped on the
 * other side. JSON text never holds a raw tab or newline, so both are safe separators.
 */
import type { Duplex } from "node:stream";
import { MessageBatcher } from "./batching.ts";
import type { FromSandbox, ToSandbox } from "./protocol.ts";

export class LineChannel<In, Out> {
  private readonly outbox: MessageBatcher<Out>;
  private buffered = "";

  constructor(
    private readonly socket: Duplex,
    private readonly codec: { encode(message: Out): string; decode(line: string): In },
    onMessage: (message: In) => void,
    onUnsendable?: (message: Out, error: unknown) => void,
  ) {
    this.outbox = new MessageBatcher<Out>(
      (batch) => {
        let text = "";
        for (const message of batch) text += `${this.codec.encode(message)}\n`;
        if (!this.socket.destroyed && this.socket.writable) this.socket.write(text);
      },
      onUnsendable,
    );
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => {
      this.buffered += chunk;
      let start = 0;
      let end: number;
      while ((end = this.buffered.indexOf("\n", start)) !== -1) {
        const line = this.buffered.slice(start, end);
        start = end + 1;
        if (line.length > 0) onMessage(this.codec.decode(line));
      }
      this.buffered = start === 0 ? this.buffered : this.buffered.slice(start);
    });
    // A broken pipe surfaces as 'close' too; the owner watches the process itself.
    socket.on("error", () => undefined);
  }

  send(message: Out): void {
    this.outbox.send(message);
  }

  /** Sends what is queued now, not at the end of this turn. */
  flush(): void {
    this.outbox.flush();
  }

  /** Drops what was not sent yet (the other side is gone). */
  discard(): void {
    this.outbox.discard();
  }

  /** Sends what is queued, then ends the stream: the other side sees its end. */
  end(): void {
    this.outbox.flush();
    this.socket.end();
  }
}

/** The daemon's side: encodes what goes to the sandbox, decodes what comes back. */
export const daemonCodec = {
  encode(message: ToSandbox): string {
    if (message.t === "run") return `R${JSON.stringify(message.request)}\t${message.payload}`;
    return `J${JSON.stringify(message)}`;
  },
  decode(line: string): FromSandbox {
    if (line[0] === "r") {
      const tab = line.indexOf("\t");
      return { t: "result", runId: JSON.parse(line.slice(1, tab)) as string, outcome: JSON.parse(line.slice(tab + 1)) };
    }
    return JSON.parse(line.slice(1)) as FromSandbox;
  },
};

/** The sandbox process's side. */
export const sandboxCodec = {
  encode(message: FromSandbox): string {
    if (message.t === "result") return `r${JSON.stringify(message.runId)}\t${JSON.stringify(message.outcome)}`;
    return `J${JSON.stringify(message)}`;
  },
  decode(line: string): ToSandbox {
    if (line[0] === "R") {
      const tab = line.indexOf("\t");
      return { t: "run", request: JSON.parse(line.slice(1, tab)) as Extract<ToSandbox, { t: "run" }>["request"], payload: line.slice(tab + 1) };
    }
    return JSON.parse(line.slice(1)) as ToSandbox;
  },
};
