/**
 * A stand-in for systemd's notify socket: a unix datagram socket (Node has none, so a small
 * python3 process binds it) that records every message the daemon sends. It also closes the
 * file descriptor `systemd-notify` passes with its BARRIER=1 message, which is how the real
 * service manager tells the sender that its messages were processed.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Arrivals } from "../helpers/wait.ts";

const RECEIVER = String.raw`
import array, json, os, socket, sys
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind(sys.argv[1])
print(json.dumps({"listening": sys.argv[1]}), flush=True)
while True:
    data, ancillary, _flags, _addr = sock.recvmsg(65536, socket.CMSG_SPACE(64 * 4))
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds = array.array("i")
            fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
            for fd in fds:
                os.close(fd)
    print(json.dumps({"message": data.decode("utf-8", "replace")}), flush=True)
`;

/** One datagram: `READY=1\nSTATUS=...` as a map, plus the raw text. */
export type NotifyMessage = Record<string, string> & { raw: string };

/** Why the systemd tests cannot run here, or undefined when they can. */
export function notifySocketUnsupported(): string | undefined {
  if (process.platform !== "linux") return "unix datagram notify sockets are tested on Linux only";
  if (spawnSync("python3", ["-c", "import socket; socket.AF_UNIX"]).status !== 0) return "python3 is not installed (it binds the fake notify socket)";
  if (spawnSync("systemd-notify", ["--version"]).status !== 0) return "systemd-notify is not installed";
  return undefined;
}

export class FakeNotifySocket {
  private readonly arrived = new Arrivals<NotifyMessage>();

  private constructor(
    readonly path: string,
    private readonly dir: string,
    private readonly receiver: ChildProcess,
  ) {}

  static async open(): Promise<FakeNotifySocket> {
    const dir = mkdtempSync(path.join(tmpdir(), "hookd-notify-"));
    const socketPath = path.join(dir, "notify.sock");
    const receiver = spawn("python3", ["-u", "-c", RECEIVER, socketPath], { stdio: ["ignore", "pipe", "pipe"] });
    const socket = new FakeNotifySocket(socketPath, dir, receiver);
    let stderr = "";
    receiver.stderr!.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    await new Promise<void>((resolve, reject) => {
      let buffered = "";
      const fail = (code: number | null) => reject(new Error(`notify socket receiver exited with ${code}: ${stderr}`));
      receiver.once("exit", fail);
      receiver.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
        buffered += chunk;
        let newline: number;
        while ((newline = buffered.indexOf("\n")) >= 0) {
          const line = JSON.parse(buffered.slice(0, newline)) as { listening?: string; message?: string };
          buffered = buffered.slice(newline + 1);
          if (line.listening) {
            receiver.off("exit", fail);
            resolve();
          } else if (line.message !== undefined) socket.record(line.message);
        }
      });
    });
    return socket;
  }

  /** Resolves with the first message (past or future) that matches. */
  waitFor(match: (m: NotifyMessage) => boolean, timeoutMs = 10_000): Promise<NotifyMessage> {
    return this.arrived.first(match, { timeoutMs, what: "a matching notify message", show: (m) => JSON.stringify((m as NotifyMessage).raw) });
  }

  /** Every message so far, in order. */
  get messages(): NotifyMessage[] {
    return this.arrived.items;
  }

  /** Messages other than the BARRIER=1 that follows each of systemd-notify's sends. */
  get notifications(): NotifyMessage[] {
    return this.messages.filter((m) => m.BARRIER === undefined);
  }

  async close(): Promise<void> {
    if (this.receiver.exitCode === null && this.receiver.signalCode === null) {
      const exited = new Promise((resolve) => this.receiver.once("exit", resolve));
      this.receiver.kill("SIGTERM");
      await exited;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  private record(raw: string): void {
    const message = { raw } as NotifyMessage;
    for (const line of raw.split("\n")) {
      const eq = line.indexOf("=");
      if (eq > 0) message[line.slice(0, eq)] = line.slice(eq + 1);
    }
    this.arrived.push(message);
  }
}
