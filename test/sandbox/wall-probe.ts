// Test-only entry, launched by test/sandbox/wall.test.ts with exactly the wall of the sandbox
// process (sandbox/wall.ts's sandboxCommand). It stands in for native code that escaped an
// isolate: it runs in the process's own realm and tries what such code would try, then prints
// what each attempt got as one JSON line. No production path starts it.
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { connect } from "node:net";

const targets = JSON.parse(process.env.HOOKD_WALL_PROBE ?? "{}") as { files: string[]; writes: string[]; port: number; daemonPid: number };
const results: Record<string, string> = {};

function attempt(name: string, action: () => unknown): void {
  try {
    const value = action();
    results[name] = `ok${typeof value === "string" ? `: ${value.slice(0, 80)}` : ""}`;
  } catch (error) {
    results[name] = `denied: ${(error as { code?: string }).code ?? String(error)}`;
  }
}

for (const file of targets.files) attempt(`read ${file}`, () => readFileSync(file, "utf8"));
attempt("read daemon environ", () => readFileSync(`/proc/${targets.daemonPid}/environ`, "utf8"));
for (const file of targets.writes) attempt(`write ${file}`, () => writeFileSync(file, "escaped"));
attempt("spawn /bin/sh", () => {
  const child = spawnSync("/bin/sh", ["-c", "echo spawned"], { encoding: "utf8" });
  if (child.error) throw child.error;
  return child.stdout;
});
attempt("spawn node", () => {
  const child = spawnSync(process.execPath, ["-e", "0"], { encoding: "utf8" });
  if (child.error) throw child.error;
  return `exit ${child.status}`;
});
results.env = Object.keys(process.env).sort().join(",");
attempt("capabilities", () => (/^CapEff:\s*(\S+)/m.exec(readFileSync("/proc/self/status", "utf8"))?.[1] ?? "unknown"));

await new Promise<void>((resolve) => {
  const socket = connect({ host: "127.0.0.1", port: targets.port });
  const timer = setTimeout(() => {
    results["connect 127.0.0.1"] = "denied: timeout";
    socket.destroy();
    resolve();
  }, 5000);
  socket.once("connect", () => {
    results["connect 127.0.0.1"] = "ok";
    clearTimeout(timer);
    socket.destroy();
    resolve();
  });
  socket.once("error", (error: NodeJS.ErrnoException) => {
    results["connect 127.0.0.1"] = `denied: ${error.code}`;
    clearTimeout(timer);
    resolve();
  });
});

process.stdout.write(`${JSON.stringify(results)}\n`);
