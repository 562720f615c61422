/**
 * A workstation bridge played by a program (`hookd oktell-sim --user A`), for tests and demos:
 * it posts the telephony server's events as one operator's workstation would (the seed's XML, in
 * UTF-16 LE with a BOM, as the Oktell client hands them over), long-polls for that operator's
 * commands and answers each with the seed's answer document for its method (seed 002), or what
 * the caller says. It speaks only the pinned HTTP protocol, so it shows what a real relay does.
 */
import type { OktellComponentMethod } from "./methods.ts";

export interface SimulatedCommand {
  id: string;
  method: OktellComponentMethod;
  xml: string | null;
  arg?: boolean;
}

/** What the simulated component returns: its XML document, a boolean, nothing (`null`), or a failure. */
export type SimulatedAnswer = { xml: string } | { returned: boolean | null } | { error: string };

export interface OktellSimulatorOptions {
  /** The daemon, `http://127.0.0.1:8711`. */
  url: string;
  token?: string | undefined;
  /** The operator's login this workstation is signed in as. */
  user: string;
  /** Seconds each long-poll may wait (default 5). */
  waitSeconds?: number;
  /** Answers by method, overriding the seed's (a function may look at the command's XML). */
  answers?: Partial<Record<OktellComponentMethod, SimulatedAnswer | ((command: SimulatedCommand) => SimulatedAnswer)>>;
  /** Called for each command received, before it is answered. */
  onCommand?: (command: SimulatedCommand) => void;
}

/** The seed's answer documents (seed 002), as the component returns them. */
export const SEED_ANSWERS: Record<OktellComponentMethod, SimulatedAnswer> = {
  GetUserState: { xml: document("userstate", `<property_set name="currentstateinfo">\n <property_simple key="state" value="1" name="usReady" />\n <property_simple key="redirect" value="0" />\n</property_set>`) },
  GetLineState: { xml: document("linestate", `<property_set name="currentlinestateinfo">\n <property_simple key="state" value="4" name="lsReady" />\n</property_set>`) },
  GetCurrentUserFullInfo: {
    xml: document(
      "userinfo",
      [
        `<property_simple key="id" value="da803f01-ea77-40fa-bc9d-e2efb36fd5a8" />`,
        `<property_simple key="type" value="1" name="utUser" />`,
        `<property_cdata key="name"><![CDATA[Петр]]></property_cdata>`,
        `<property_simple key="isoperator" value="1" />`,
        `<property_simple key="group" value="c4e3b424-3048-4cce-a2e4-033c532a7d99" name="Программисты" />`,
        `<property_cdata key="login"><![CDATA[Peter]]></property_cdata>`,
        `<property_cdata key="password"><![CDATA[123]]></property_cdata>`,
        `<property_cdata key="role" value="41fbf675-8f73-488e-83ca-c108b915f51d"><![CDATA[Администратор]]></property_cdata>`,
        `<property_simple key="callerid" value="" />`,
        `<property_cdata key="info"><![CDATA[]]></property_cdata>`,
        `<property_collection name="properties" count="1">`,
        ` <property_set name="role" id="41fbf675-8f73-488e-83ca-c108b915f51d">`,
        `  <property_cdata key="extwp" value="1"><![CDATA[Расширенное рабочее место]]></property_cdata>`,
        `  <property_cdata key="viewcallcenter" value="1"><![CDATA[Call-центр]]></property_cdata>`,
        ` </property_set>`,
        `</property_collection>`,
      ].join("\n"),
    ),
  },
  TM_SetTaskActive: {
    xml: document("settaskactiveresult", `<property_set name="settaskactiveresult">\n <property_simple key="success" value="0" />\n <property_cdata key="errormessage"><![CDATA[Задачу монопольно редактирует Сидоров Иван]]></property_cdata>\n</property_set>`),
  },
  SetUserState: { returned: null },
  CallCenter_Exit: { returned: null },
  TM_SetConfirmUsage: { returned: null },
  CallCenter_IsInside: { returned: true },
  CallCenter_Enter: { returned: true },
  CallCenter_SetBusyInExternalTask: { returned: true },
  CallCenter_SetFreeInExternalTask: { returned: true },
  CallCenter_CheckBusyInExternalTask: { returned: false },
  TM_SetConfirmResult: { returned: true },
};

export class OktellSimulator {
  /** Every command this workstation received, in order (a re-sent one appears again). */
  readonly received: SimulatedCommand[] = [];
  /** Answers posted, with the daemon's status for each. */
  readonly answered: Array<{ id: string; method: string; status: number }> = [];
  private running: Promise<void> | undefined;
  private stopRequested = false;
  private poll: AbortController | undefined;

  constructor(private readonly options: OktellSimulatorOptions) {}

  /** Posts service events (`<oktellcommapper>` XML) as this workstation, UTF-16 LE with a BOM; resolves to the daemon's answer. */
  async sendEvents(xml: string, encoding: "utf-16le" | "utf-8" = "utf-16le"): Promise<{ status: number; body: unknown }> {
    const bytes = encoding === "utf-8" ? Buffer.from(xml, "utf8") : Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(xml, "utf16le")]);
    const response = await fetch(`${this.options.url}/ingest/oktell?user=${encodeURIComponent(this.options.user)}`, {
      method: "POST",
      headers: { ...this.auth(), "content-type": "text/xml" },
      body: bytes,
      signal: AbortSignal.timeout(30_000),
    });
    return { status: response.status, body: await readBody(response) };
  }

  /** Starts polling and answering until stop(). */
  start(): void {
    this.stopRequested = false;
    this.running ??= this.loop().finally(() => (this.running = undefined));
  }

  async stop(): Promise<void> {
    this.stopRequested = true;
    this.poll?.abort();
    await this.running;
  }

  /** One long-poll: the commands it brought (each answered unless `answer` is false). */
  async pollOnce(answer = true, waitSeconds = this.options.waitSeconds ?? 5): Promise<SimulatedCommand[]> {
    const wait = waitSeconds;
    this.poll = new AbortController();
    const timeout = AbortSignal.timeout((wait + 30) * 1000);
    const response = await fetch(`${this.options.url}/oktell/commands?user=${encodeURIComponent(this.options.user)}&wait=${wait}`, {
      headers: this.auth(),
      signal: AbortSignal.any([this.poll.signal, timeout]),
    });
    if (response.status === 204) return [];
    const body = (await readBody(response)) as { commands?: SimulatedCommand[] };
    if (response.status !== 200 || !Array.isArray(body.commands)) throw new Error(`GET /oktell/commands answered ${response.status}: ${JSON.stringify(body)}`);
    for (const command of body.commands) {
      this.received.push(command);
      this.options.onCommand?.(command);
      if (answer) await this.answer(command);
    }
    return body.commands;
  }

  /** Posts the answer for a command: the configured one, or the seed's for its method. */
  async answer(command: SimulatedCommand, answer: SimulatedAnswer = this.answerFor(command)): Promise<number> {
    const init: RequestInit =
      "xml" in answer
        ? { method: "POST", headers: { ...this.auth(), "content-type": "text/xml; charset=utf-16" }, body: Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(answer.xml, "utf16le")]) }
        : { method: "POST", headers: { ...this.auth(), "content-type": "application/json" }, body: JSON.stringify(answer) };
    const response = await fetch(`${this.options.url}/oktell/commands/${encodeURIComponent(command.id)}/result?user=${encodeURIComponent(this.options.user)}`, { ...init, signal: AbortSignal.timeout(30_000) });
    await response.arrayBuffer();
    this.answered.push({ id: command.id, method: command.method, status: response.status });
    return response.status;
  }

  private answerFor(command: SimulatedCommand): SimulatedAnswer {
    const configured = this.options.answers?.[command.method];
    if (typeof configured === "function") return configured(command);
    return configured ?? SEED_ANSWERS[command.method] ?? { error: `the simulator has no answer for ${command.method}` };
  }

  private async loop(): Promise<void> {
    let failures = 0;
    while (!this.stopRequested) {
      try {
        await this.pollOnce();
        failures = 0;
      } catch (error) {
        if (this.stopRequested) return;
        // A daemon restarting or not up yet: try again, a little later each time (at most 5 s).
        failures++;
        await new Promise((resolve) => setTimeout(resolve, Math.min(5000, 100 * 2 ** Math.min(failures, 6))));
        if (failures === 1) process.stderr.write(`oktell-sim ${this.options.user}: ${(error as Error).message}\n`);
      }
    }
  }

  private auth(): Record<string, string> {
    return this.options.token ? { authorization: `Bearer ${this.options.token}` } : {};
  }
}

/** A seed-shaped method document (`<?xml ... utf-16?><oktellcommapper><data name=...>`). */
function document(name: string, inner: string): string {
  return `<?xml version="1.0" encoding="utf-16"?>\n<oktellcommapper version="80710">\n<data name="${name}">\n${inner}\n</data>\n</oktellcommapper>`;
}

async function readBody(response: Response): Promise<unknown> {
  const text = await response.text();
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
