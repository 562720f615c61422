import { describe, expect, it } from "vitest";
import { z } from "zod";
import {
  catalog,
  crmEvents,
  decodeTextB64,
  ELineState,
  EOktellEvent,
  EUserState,
  flag,
  int,
  intList,
  oktellDateTimeToIso,
  oktellEventIdByName,
  oktellEventIds,
  oktellEvents,
  operatorEvents,
  params,
} from "../core/catalog/index.ts";

const DESIGN_CRM_EVENTS = [
  "client.import", "client.expressadd", "client.add", "client.edit", "client.delete",
  "client.change.recv", "client.change.user", "person.add", "person.edit", "person.delete",
  "person.change.user", "deal.add", "deal.edit", "deal.delete", "deal.change.user",
  "deal.change.step", "deal.close", "invoice.add", "invoice.edit", "invoice.doit",
  "invoice.expressadd", "task.add", "task.edit", "task.doit", "history.add", "history.edit",
  "history.doit", "lead.do", "entry.add", "entry.status", "contract.add", "contract.edit",
  "contract.delete", "akt.add", "akt.edit", "akt.delete",
];

const TEXT_B64 =
  "0JLRiyDQt9Cw0YDQtdC30LXRgNCy0LjRgNC+0LLQsNC90Ysg0L3QsCDQstGL0L/QvtC70L3QtdC90LjQtSDQt9Cw0LTQsNGH0LgKCtCY0L3RhNC+0YDQvNCw0YbQuNGPOgoK0JfQsNC00LDRh9CwIMKr0JLQuNGA0YLRg9Cw0LvRjNC90LDRjyDQvNCw0YjQuNC90LDCuwoKCtCX0LLQvtC90L7QuiDQvdCwINC90L7QvNC10YA6IDEyMDE1MTExMgoK0J/RgNC+0LTQvtC70LbQuNGC0Ywg0LTQvtC30LLQvtC9INC/0L4g0YPQutCw0LfQsNC90L3Ri9C8INC/0LDRgNCw0LzQtdGC0YDQsNC8PyojKg==";

describe("field builders", () => {
  it("int() takes numbers and numeric strings, rejects the rest", () => {
    expect(int().parse(7)).toBe(7);
    expect(int().parse("12")).toBe(12);
    expect(int().parse(" -3 ")).toBe(-3);
    for (const bad of ["", "abc", 1.5, "1.5", "12abc", null, undefined, true, "99999999999999999999"]) {
      expect(int().safeParse(bad).success, JSON.stringify(bad)).toBe(false);
    }
  });

  it("intList() takes arrays, a single int, and index-keyed PHP objects", () => {
    expect(intList().parse(["1", 2])).toEqual([1, 2]);
    expect(intList().parse("5")).toEqual([5]);
    expect(intList().parse(5)).toEqual([5]);
    expect(intList().parse([])).toEqual([]);
    expect(intList().parse({ "2": "30", "0": 10 })).toEqual([10, 30]);
    expect(intList().safeParse(["1", "x"]).success).toBe(false);
    expect(intList().safeParse("").success).toBe(false);
  });

  it("flag() maps 0/1 spellings to booleans", () => {
    expect([0, 1, "0", "1", true, false, "true", "false"].map((v) => flag().parse(v))).toEqual([
      false, true, false, true, true, false, true, false,
    ]);
    expect(flag().safeParse(2).success).toBe(false);
    expect(flag().safeParse("yes").success).toBe(false);
  });

  it("params() takes an object or a list, not a scalar", () => {
    expect(params().parse({ title: "New", phone: ["1"] })).toEqual({ title: "New", phone: ["1"] });
    expect(params().parse(["a", 1])).toEqual(["a", 1]);
    expect(params().safeParse("title").success).toBe(false);
  });
});

describe("CRM events", () => {
  it("has exactly the 36 events of DESIGN.md", () => {
    expect(Object.keys(crmEvents).sort()).toEqual([...DESIGN_CRM_EVENTS].sort());
    expect(Object.keys(crmEvents)).toHaveLength(36);
  });

  it("deal.close takes PHP form strings and yields numbers", () => {
    const out = crmEvents["deal.close"].parse({ did: "12", autor: "3", summa: "1500.00", status: "won" });
    expect(out).toEqual({ did: 12, autor: 3, summa: "1500.00", status: "won" });
    expect(typeof out.did).toBe("number");
  });

  it("deal.close rejects a non-numeric did with the issue at ['did']", () => {
    const r = crmEvents["deal.close"].safeParse({ did: "abc", autor: "3", summa: "1500.00", status: "won" });
    expect(r.success).toBe(false);
    expect(r.error?.issues.map((i) => i.path)).toEqual([["did"]]);
  });

  it("deal.close rejects a missing status and a malformed amount", () => {
    expect(crmEvents["deal.close"].safeParse({ did: 1, autor: 1, summa: "10" }).success).toBe(false);
    const r = crmEvents["deal.close"].safeParse({ did: 1, autor: 1, summa: "10,340", status: "won" });
    expect(r.error?.issues[0]?.path).toEqual(["summa"]);
  });

  it("client.import takes PHP arrays, single ids, and a missing (empty) list", () => {
    expect(crmEvents["client.import"].parse({ clids: ["1", "2"], pids: "7", autor: "1", user: "2" })).toEqual({
      clids: [1, 2], pids: [7], autor: 1, user: 2,
    });
    expect(crmEvents["client.import"].parse({ clids: [3], autor: 1, user: 2 }).pids).toEqual([]);
  });

  // Was "strips unknown keys": custom CRM fields are kept now (issue 17, item 5).
  it("client.edit requires newparam and keeps unknown keys (custom CRM fields)", () => {
    expect(crmEvents["client.edit"].safeParse({ clid: 1, autor: 1, user: 1 }).success).toBe(false);
    expect(crmEvents["client.edit"].parse({ clid: "1", autor: 1, user: 1, newparam: { title: "X" }, x: 1, input5: "VIP" })).toEqual({
      clid: 1, autor: 1, user: 1, newparam: { title: "X" }, x: 1, input5: "VIP",
    });
  });

  it.each(DESIGN_CRM_EVENTS)("%s keeps a field the seed does not list", (name) => {
    const schema = crmEvents[name as keyof typeof crmEvents] as z.ZodType;
    const r = schema.safeParse({ custom_field: "kept" });
    // The payload fails for its missing arguments, never for the extra field.
    for (const issue of r.error?.issues ?? []) expect(issue.path[0]).not.toBe("custom_field");
  });

  it("person.add: pid, autor and user are strings, as the seed types them", () => {
    expect(crmEvents["person.add"].parse({ pid: "p-7", autor: "3", user: "u-4" })).toEqual({ pid: "p-7", autor: "3", user: "u-4" });
    expect(crmEvents["person.add"].parse({ pid: 7, autor: 3, user: 4 })).toEqual({ pid: "7", autor: "3", user: "4" });
    expect(crmEvents["person.add"].safeParse({ pid: "p-7", autor: "3" }).error?.issues[0]?.path).toEqual(["user"]);
    // The other person events stay integers, as the seed types them there.
    expect(crmEvents["person.edit"].safeParse({ pid: "p-7", autor: 1, user: 1 }).error?.issues[0]?.path).toEqual(["pid"]);
  });

  it("invoice.add / invoice.edit: user is a string; userUID is required but may be empty or null", () => {
    for (const name of ["invoice.add", "invoice.edit"] as const) {
      const out = crmEvents[name].parse({ did: "1", autor: "2", user: "emp-9", userUID: "", summa: "10.00", invoice: "A-1" });
      expect(out).toEqual({ did: 1, autor: 2, user: "emp-9", userUID: "", summa: "10.00", invoice: "A-1" });
      expect(crmEvents[name].parse({ did: 1, autor: 2, user: 9, userUID: null, summa: "1", invoice: "A" }).user).toBe("9");
      expect(crmEvents[name].safeParse({ did: 1, autor: 2, user: "9", summa: "1", invoice: "A" }).error?.issues[0]?.path).toEqual(["userUID"]);
    }
  });

  it("deal.add, invoice.doit, invoice.expressadd: userUID has no qualifier in the seed, so it is required", () => {
    expect(crmEvents["deal.add"].safeParse({ did: 1, autor: 1 }).error?.issues[0]?.path).toEqual(["userUID"]);
    expect(crmEvents["deal.add"].parse({ did: 1, autor: 1, userUID: "ext-1" }).userUID).toBe("ext-1");
    for (const name of ["invoice.doit", "invoice.expressadd"] as const) {
      expect(crmEvents[name].safeParse({ did: 1, autor: 1, invoice: "1", summa: "1", summaNew: "1" }).error?.issues[0]?.path).toEqual(["userUID"]);
    }
  });

  it("akt.delete: the seed lists no autor, so it is optional there (contract.delete keeps it)", () => {
    expect(crmEvents["akt.delete"].parse({ id: "3", did: "" })).toEqual({ id: 3, did: undefined });
    expect(crmEvents["contract.delete"].safeParse({ id: 3 }).error?.issues[0]?.path).toEqual(["autor"]);
  });

  it("lead.do: clid/pid/did are optional, empty string and null count as absent", () => {
    expect(crmEvents["lead.do"].parse({ id: "5", autor: "1", clid: "", pid: null, did: "9" })).toEqual({
      id: 5, autor: 1, clid: undefined, pid: undefined, did: 9,
    });
  });

  it("entry.status only takes 0, 1, 2", () => {
    expect(crmEvents["entry.status"].parse({ id: 1, autor: 2, status: "2" }).status).toBe(2);
    expect(crmEvents["entry.status"].safeParse({ id: 1, autor: 2, status: 3 }).success).toBe(false);
  });

  it("invoice.doit keeps amounts and invoice number as text", () => {
    expect(
      crmEvents["invoice.doit"].parse({ did: "4", autor: "1", userUID: "", invoice: 1021, summa: 500, summaNew: "250.50" }),
    ).toEqual({ did: 4, autor: 1, userUID: "", invoice: "1021", summa: "500", summaNew: "250.50" });
  });
});

describe("operator and session events", () => {
  const schema = operatorEvents["user.operator_status.changed"];
  const ok = { userId: "8a1f-42", status: "offline", previousStatus: "online", reason: "inactivity", changedAt: "2025-05-26T16:15:30+04:00" };

  it("accepts a status change", () => {
    expect(schema.parse(ok)).toEqual(ok);
  });

  it("rejects an unknown reason with the issue at ['reason']", () => {
    const r = schema.safeParse({ ...ok, reason: "other" });
    expect(r.success).toBe(false);
    expect(r.error?.issues[0]?.path).toEqual(["reason"]);
  });

  it("rejects a changedAt that is not ISO-8601", () => {
    expect(schema.safeParse({ ...ok, changedAt: "26.05.2025 16:15" }).success).toBe(false);
  });

  it("seed 000's event has only the id and the status: reason and changedAt are optional", () => {
    expect(schema.parse({ userId: "8a1f-42", status: "Online" })).toEqual({ userId: "8a1f-42", status: "Online" });
    expect(schema.safeParse({ status: "Online" }).error?.issues[0]?.path).toEqual(["userId"]);
    expect(schema.safeParse({ userId: "8a1f-42" }).error?.issues[0]?.path).toEqual(["status"]);
  });

  it.each(["logout", "inactivity", "license_expired"])("an automatic change (%s) must set Offline: another status is an issue at ['status']", (reason) => {
    const r = schema.safeParse({ userId: "u1", status: "online", reason });
    expect(r.success).toBe(false);
    expect(r.error?.issues.map((i) => i.path)).toEqual([["status"]]);
    expect(schema.safeParse({ userId: "u1", status: "Offline", reason }).success).toBe(true);
    expect(schema.safeParse({ userId: "u1", status: "online", reason: "manual" }).success).toBe(true);
  });

  it("keeps fields the seed does not list", () => {
    expect(schema.parse({ userId: "u1", status: "busy", team: "line-2" })).toEqual({ userId: "u1", status: "busy", team: "line-2" });
  });

  it("session.created / session.closed", () => {
    expect(
      operatorEvents["session.created"].parse({ sessionId: "s1", channel: "telegram", createdAt: "2025-05-26T12:00:00Z" }),
    ).toEqual({ sessionId: "s1", channel: "telegram", createdAt: "2025-05-26T12:00:00Z" });
    expect(operatorEvents["session.closed"].safeParse({ sessionId: "s1" }).success).toBe(false);
  });
});

describe("Oktell events", () => {
  it("has one schema per event id of seed 003, named oktell.<lowercase name>", () => {
    expect(Object.keys(EOktellEvent)).toHaveLength(40);
    expect(Object.keys(oktellEvents).sort()).toEqual(Object.values(oktellEventIds).map((n) => `oktell.${n}`).sort());
    expect(oktellEventIds[121]).toBe("tminterfaceconfirm");
    expect(oktellEventIdByName.usermessage).toBe(114);
  });

  it("code tables", () => {
    expect(EUserState[7]).toBe("usWOphone");
    expect(EUserState[1]).toBe("usReady");
    expect(ELineState[4]).toBe("lsReady");
    expect(ELineState[0x1000]).toBe("lsReservedByTask");
  });

  it("userstatechanged accepts a converted payload and checks the code", () => {
    const s = oktellEvents["oktell.userstatechanged"];
    expect(s.parse({ newstate: "usWOphone", newstateCode: 7, redirect: false })).toEqual({
      newstate: "usWOphone", newstateCode: 7, redirect: false,
    });
    expect(s.safeParse({ newstate: "usBogus", redirect: false }).success).toBe(false);
    const r = s.safeParse({ newstate: "usReady", newstateCode: 7, redirect: false });
    expect(r.error?.issues[0]?.path).toEqual(["newstateCode"]);
    // A property the catalog does not list is kept (the code's own comment said so; it was dropped).
    expect(s.parse({ newstate: "usReady", redirect: true, userid: "u-1" })).toEqual({ newstate: "usReady", redirect: true, userid: "u-1" });
  });

  it("personalstatechanged: newstate is an EUserState name, its code beside it", () => {
    const s = oktellEvents["oktell.personalstatechanged"];
    expect(s.parse({ newstate: "usLunch", newstateCode: 2, userid: "u-1" })).toEqual({ newstate: "usLunch", newstateCode: 2, userid: "u-1" });
    expect(s.safeParse({ newstate: "2" }).error?.issues[0]?.path).toEqual(["newstate"]);
    expect(s.safeParse({ newstate: "usReady", newstateCode: 2 }).error?.issues[0]?.path).toEqual(["newstateCode"]);
  });

  it("linestatechange: state is an ELineState name, its code beside it", () => {
    const s = oktellEvents["oktell.linestatechange"];
    expect(s.parse({ state: "lsOff", stateCode: 2, lineid: "L1" })).toEqual({ state: "lsOff", stateCode: 2, lineid: "L1" });
    expect(s.safeParse({ state: "2" }).error?.issues[0]?.path).toEqual(["state"]);
    expect(s.safeParse({ state: "lsReady", stateCode: 2 }).error?.issues[0]?.path).toEqual(["stateCode"]);
  });

  it("notify accepts the seed's example after conversion", () => {
    const out = oktellEvents["oktell.notify"].parse({
      guid: "00000000-0000-0000-0000-000000000000",
      autohide: true,
      backcolor_argb: 0,
      type: "nltPBXinfo",
      typeCode: 8,
      datetime: oktellDateTimeToIso("12.07.2008 18:35:06"),
      dbsaved: true,
      sender: "Системная АТС",
      text: "Зарегистрирована линия 16016",
    });
    expect(out.datetime).toBe("2008-07-12T18:35:06");
    expect(out.type).toBe("nltPBXinfo");
    expect(oktellEvents["oktell.notify"].safeParse({ ...out, type: "nltNope" }).success).toBe(false);
  });

  it("tminterfaceconfirm decodes textb64 into text", () => {
    const input = {
      idtask: "0f398eb4-5d78-446c-84f4-6892ab72751b",
      idproject: "ab37c6e6-e983-458a-8621-5e0921ade3d1",
      taskname: "Прозвон клиентов",
      taskcode: "",
      idlist: "9ac6f54c-d042-4e89-b9a3-5ad2e20c3410",
      idinlist: "67",
      number: "120151112",
      textb64: TEXT_B64,
    };
    const out = oktellEvents["oktell.tminterfaceconfirm"].parse(input);
    expect(out.idinlist).toBe(67);
    expect(out.text.startsWith("Вы зарезервированы на выполнение задачи")).toBe(true);
    expect(out.text).toContain("Звонок на номер: 120151112");
    expect(decodeTextB64(TEXT_B64)).toBe(out.text);
    const { textb64: _drop, ...noText } = input;
    expect(oktellEvents["oktell.tminterfaceconfirm"].safeParse(noText).success).toBe(false);
    expect(oktellEvents["oktell.tminterfaceconfirm"].safeParse({ ...input, textb64: "%%%" }).success).toBe(false);
  });

  it("tminterfaceclose needs idtask; undescribed events pass everything through", () => {
    expect(oktellEvents["oktell.tminterfaceclose"].safeParse({}).success).toBe(false);
    expect(oktellEvents["oktell.linestatechange"].parse({ state: "lsReady", line: "16016" })).toEqual({
      state: "lsReady", line: "16016",
    });
  });

  it("oktellDateTimeToIso rejects what is not a date", () => {
    expect(oktellDateTimeToIso("31.02.2008 10:00:00")).toBeUndefined();
    expect(oktellDateTimeToIso("2008-07-12")).toBeUndefined();
  });
});

describe("the whole catalog", () => {
  it("merges the three catalogs without clashes", () => {
    const n = Object.keys(crmEvents).length + Object.keys(operatorEvents).length + Object.keys(oktellEvents).length;
    expect(Object.keys(catalog)).toHaveLength(n);
    expect(n).toBe(36 + 3 + 40);
  });

  it.each(Object.keys(catalog))("%s converts to JSON Schema (io: input)", (name) => {
    const schema = catalog[name as keyof typeof catalog] as z.ZodType;
    const json = z.toJSONSchema(schema, { io: "input" }) as { type?: string };
    expect(json.type).toBe("object");
  });

  it("JSON Schema still lists the arguments and allows other fields", () => {
    const json = z.toJSONSchema(crmEvents["person.add"], { io: "input" }) as { properties: Record<string, unknown>; additionalProperties?: unknown };
    expect(Object.keys(json.properties).sort()).toEqual(["autor", "pid", "user"]);
    expect(json.additionalProperties).not.toBe(false);
  });

  it("JSON Schema of deal.close lists the seed's arguments as required", () => {
    const json = z.toJSONSchema(crmEvents["deal.close"], { io: "input" }) as { required?: string[] };
    expect(json.required?.sort()).toEqual(["autor", "did", "status", "summa"]);
  });
});
