import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { errorCodes, HookdError } from "../sandbox/contract/errors.ts";

const REPO = fileURLToPath(new URL("..", import.meta.url));

function listSources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === "node_modules" ? [] : listSources(file);
    return /\.(ts|js|mjs)$/.test(entry.name) ? [file] : [];
  });
}

describe("error registry", () => {
  it("holds HOOKD_<AREA>_<PROBLEM> codes with a status and a message each", () => {
    const codes = Object.keys(errorCodes);
    expect(codes.length).toBeGreaterThanOrEqual(40);
    for (const code of codes) {
      expect(code).toMatch(/^HOOKD_[A-Z]+(_[A-Z0-9]+)+$/);
      const { status, message } = errorCodes[code as keyof typeof errorCodes];
      expect(status).toBeGreaterThanOrEqual(400);
      expect(status).toBeLessThan(600);
      expect(message.length).toBeGreaterThan(1);
    }
  });

  it("builds errors that carry code, status, cause and the JSON answer", () => {
    const cause = new Error("inner");
    const error = new HookdError("HOOKD_EVENT_UNKNOWN", ["deal.closed"], { cause, issues: [{ path: ["x"] }] });
    expect(error.code).toBe("HOOKD_EVENT_UNKNOWN");
    expect(error.statusCode).toBe(404);
    expect(error.cause).toBe(cause);
    expect(error.message).toContain("deal.closed");
    expect(error.toJSON()).toEqual({ error: { code: "HOOKD_EVENT_UNKNOWN", message: error.message, issues: [{ path: ["x"] }] } });
  });

  it("knows every HOOKD_* code the source uses (a code the registry lacks is a typo or a missing entry)", () => {
    const files = ["core", "sandbox", "bin", "plugins"].flatMap((dir) => listSources(path.join(REPO, dir)));
    const sources = files.map((file) => [file, readFileSync(file, "utf8")] as const);
    // HOOKD_TOKEN, HOOKD_SANDBOX_WALL, ...: environment variables share the prefix; they are read as env.NAME.
    const variables = new Set(sources.flatMap(([, text]) => [...text.matchAll(/env\.(HOOKD_[A-Z0-9_]+)/g)].map((m) => m[1]!)));
    const unknown: Record<string, string> = {};
    for (const [file, text] of sources) {
      for (const [, code] of text.matchAll(/["'`](HOOKD_[A-Z0-9_]+)["'`]/g)) {
        if (!(code! in errorCodes) && !variables.has(code!)) unknown[code!] = path.relative(REPO, file);
      }
    }
    expect(unknown).toEqual({});
    // The scan sees the registry's own users: a planted unknown code would be found.
    expect(sources.some(([, text]) => text.includes('"HOOKD_EVENT_UNKNOWN"'))).toBe(true);
  });
});
