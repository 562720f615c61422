import { describe, expect, it } from "vitest";
import { errorCodes, HookdError } from "../core/errors.ts";

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
});
