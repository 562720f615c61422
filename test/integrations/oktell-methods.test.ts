// The method table of the workstation bridge (core/integrations/oktell/methods.ts): arguments in
// the seed's XML shapes, answers decoded from the seed's documents, and the in-isolate ctx.oktell
// offering exactly the methods the daemon serves.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { decodeAnswer, OKTELL_METHODS, specOfComponentMethod } from "../../core/integrations/oktell/methods.ts";
import { parseOktellData } from "../../core/integrations/oktell/xml.ts";
import { seed002NotEvents } from "./seed-samples.ts";

const answerOf = (method: string, xml: string) => decodeAnswer(specOfComponentMethod(method)!, { data: parseOktellData(xml) });

describe("workstation methods", () => {
  it("writes SetUserState as the seed's first example, with the description as CDATA", () => {
    const { xml } = OKTELL_METHODS.setUserState.build([{ state: "usLunch", description: "Ушел на обед", redirect: false }]);
    // The same properties, in the same order, as seed 002's `Пример 1`.
    const normalise = (text: string) => text.replace(/\s+/g, " ").replace(/> </g, "><").trim();
    expect(normalise(xml!)).toBe(normalise(seed002NotEvents.setuserstate));
  });

  it("writes TM_SetConfirmResult with the result's code, and ']]>' in a description cannot close its CDATA", () => {
    expect(OKTELL_METHODS.confirmResult.build(["delete"]).xml).toContain('<property_simple key="result" value="2" />');
    const { xml } = OKTELL_METHODS.setUserState.build([{ state: "usReady", description: "a]]>b" }]);
    expect(parseOktellData(xml!)[0]!.properties).toContainEqual(expect.objectContaining({ kind: "set" }));
    expect(JSON.stringify(parseOktellData(xml!))).toContain("a]]>b");
  });

  it("decodes the seed's userstate and linestate answers, and refuses a code outside the enum", () => {
    expect(answerOf("GetUserState", seed002NotEvents.userstate)).toEqual({ state: "usReady", stateCode: 1, redirect: false });
    expect(answerOf("GetLineState", seed002NotEvents.linestate)).toEqual({ state: "lsReady", stateCode: 4 });
    expect(() => answerOf("GetUserState", seed002NotEvents.userstate.replace('value="1" name="usReady"', 'value="4"'))).toThrow(expect.objectContaining({ code: "HOOKD_OKTELL_ANSWER_INVALID" }));
    expect(() => answerOf("GetUserState", seed002NotEvents.linestate)).toThrow(expect.objectContaining({ code: "HOOKD_OKTELL_ANSWER_MISMATCH" }));
  });

  it("refuses wrong arguments with HOOKD_OKTELL_BAD_ARGUMENT", () => {
    expect(() => OKTELL_METHODS.setUserState.build([{ state: "usNap" }])).toThrow(expect.objectContaining({ code: "HOOKD_OKTELL_BAD_ARGUMENT" }));
    expect(() => OKTELL_METHODS.setTaskActive.build([{ tasktype: "call", idtask: "x", active: 1 }])).toThrow(expect.objectContaining({ code: "HOOKD_OKTELL_BAD_ARGUMENT" }));
    expect(() => OKTELL_METHODS.setConfirmUsage.build(["yes"])).toThrow(expect.objectContaining({ code: "HOOKD_OKTELL_BAD_ARGUMENT" }));
  });

  it("ctx.oktell in the isolate runtime names exactly the daemon's methods", () => {
    const runtime = readFileSync(new URL("../../sandbox/runtime/bootstrap.ts", import.meta.url), "utf8");
    const list = /const OKTELL_METHOD_NAMES = \[([\s\S]*?)\] as const;/.exec(runtime)![1]!;
    const names = [...list.matchAll(/"([A-Za-z]+)"/g)].map((m) => m[1]);
    expect(names.sort()).toEqual(Object.keys(OKTELL_METHODS).sort());
  });
});
