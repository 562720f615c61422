// The telephony XML channel without a daemon: bytes -> text -> events -> catalog payloads.
import { describe, expect, it } from "vitest";
import { catalog } from "../../core/catalog/index.ts";
import { readOktellBody } from "../../core/integrations/oktell/ingest.ts";
import { decodeXmlBody, detectXmlEncoding } from "../../core/integrations/oktell/decode.ts";
import { oktellDateTimeToZonedIso } from "../../core/integrations/oktell/time.ts";
import { isValidTimezone } from "../../core/base/time-zone.ts";
import { seed002Events, seed002NotEvents, seed003, TMINTERFACECONFIRM_TEXT_START, tminterfacereserve, utf16be, utf16le } from "./seed-samples.ts";

/** The payload a handler would get: read as the server sends it, then the catalog's schema. */
function typed(xml: string | Buffer, timezone?: string) {
  return readOktellBody(typeof xml === "string" ? utf16le(xml) : xml, timezone).map((event) => ({
    name: event.name,
    payload: (catalog as Record<string, { parse(v: unknown): unknown }>)[event.name]!.parse(event.body),
    mismatch: event.mismatch,
  }));
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    return (error as { code?: string }).code;
  }
  return undefined;
}

describe("seed 003 samples, sent as UTF-16", () => {
  it("turns the body-less events 101-103 and 113 into empty payloads", () => {
    for (const name of ["shutdownrequested", "restartrequested", "connectionlost", "voicemail"] as const) {
      expect(typed(seed003[name])).toEqual([{ name: `oktell.${name}`, payload: {}, mismatch: undefined }]);
    }
  });

  it("userstatechanged: the state's enum name with its code, redirect as a boolean", () => {
    expect(typed(seed003.userstatechanged)[0]!.payload).toEqual({ newstate: "usWOphone", newstateCode: 7, redirect: false });
  });

  it("notify: type name and flag code, booleans, an ISO date, CDATA text", () => {
    expect(typed(seed003.notify)[0]!.payload).toEqual({
      guid: "00000000-0000-0000-0000-000000000000",
      autohide: true,
      backcolor_argb: 0,
      type: "nltPBXinfo",
      typeCode: 8,
      datetime: "2008-07-12T18:35:06",
      dbsaved: true,
      sender: "Системная АТС",
      text: "Зарегистрирована линия 16016",
    });
  });

  it("usermessage: decided by its name although its id says 112 (notify), and the mismatch is reported", () => {
    const [event] = typed(seed003.usermessage);
    expect(event!.name).toBe("oktell.usermessage");
    expect(event!.mismatch).toEqual({ id: "112", idName: "notify", name: "usermessage" });
    expect(event!.payload).toEqual({
      guid: "37ccb224-ff71-3836-c410-a73782ef8d19",
      datetime: "2008-07-12T20:29:11",
      senderid: "d03a522f-b399-aa37-cb2a-943cf24d113e",
      sendername: "Бочкарев Евгений",
      text: "Зайди плиз как освободишься..",
    });
  });

  it("dates take the configured zone's offset at that date (summer and winter time)", () => {
    expect((typed(seed003.notify, "Europe/Moscow")[0]!.payload as { datetime: string }).datetime).toBe("2008-07-12T18:35:06+04:00");
    expect(oktellDateTimeToZonedIso("12.01.2008 18:35:06", "Europe/Moscow")).toBe("2008-01-12T18:35:06+03:00");
    expect(oktellDateTimeToZonedIso("12.07.2008 18:35:06", "+05:30")).toBe("2008-07-12T18:35:06+05:30");
    expect(oktellDateTimeToZonedIso("12.07.2008 18:35:06", "UTC")).toBe("2008-07-12T18:35:06Z");
    expect(isValidTimezone("Mars/Olympus")).toBe(false);
    expect(isValidTimezone("+03:00")).toBe(true);
  });
});

describe("seed 002 samples", () => {
  it("tminterfaceconfirm: ids, the row as a number, the number as text, textb64 decoded into text", () => {
    const payload = typed(seed002Events.tminterfaceconfirm)[0]!.payload as Record<string, unknown>;
    expect(payload).toMatchObject({
      idtask: "0f398eb4-5d78-446c-84f4-6892ab72751b",
      idproject: "ab37c6e6-e983-458a-8621-5e0921ade3d1",
      taskname: "Прозвон клиентов",
      taskcode: "",
      idlist: "9ac6f54c-d042-4e89-b9a3-5ad2e20c3410",
      idinlist: 67,
      number: "120151112",
    });
    expect(String(payload.text).startsWith(TMINTERFACECONFIRM_TEXT_START)).toBe(true);
    expect(payload.text).toContain("Звонок на номер: 120151112");
  });

  it("tminterfacereserve has the same fields; tminterfaceclose carries the task id", () => {
    const [reserve] = typed(tminterfacereserve);
    expect(reserve!.name).toBe("oktell.tminterfacereserve");
    expect((reserve!.payload as { idinlist: number }).idinlist).toBe(67);
    expect(typed(seed002Events.tminterfaceclose)[0]).toMatchObject({ name: "oktell.tminterfaceclose", payload: { idtask: "0f398eb4-5d78-446c-84f4-6892ab72751b" } });
  });

  it("a method's answer (<data name=...>) holds no event: HOOKD_OKTELL_NO_EVENT", () => {
    for (const xml of Object.values(seed002NotEvents)) expect(codeOf(() => readOktellBody(utf16le(xml), undefined))).toBe("HOOKD_OKTELL_NO_EVENT");
  });
});

describe("encodings", () => {
  const xml = seed003.userstatechanged;
  const expected = readOktellBody(utf16le(xml), undefined);

  it.each([
    ["UTF-16 LE with BOM", utf16le(xml)],
    ["UTF-16 LE without BOM", utf16le(xml, false)],
    ["UTF-16 BE with BOM", utf16be(xml)],
    ["UTF-16 BE without BOM", utf16be(xml, false)],
    ["UTF-8 (declaration still saying utf-16)", Buffer.from(xml, "utf8")],
    ["UTF-8 with BOM", Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(xml, "utf8")])],
  ])("reads %s", (_label, bytes) => {
    expect(readOktellBody(bytes, undefined)).toEqual(expected);
  });

  it("tells the byte order from the BOM or from where the zero bytes are", () => {
    expect(detectXmlEncoding(utf16be(xml, false))).toEqual({ encoding: "utf-16be", bomLength: 0 });
    expect(detectXmlEncoding(utf16le(xml))).toEqual({ encoding: "utf-16le", bomLength: 2 });
    expect(decodeXmlBody(utf16be(xml)).text).toBe(xml);
  });

  it("refuses a declared encoding that is neither UTF-16 nor UTF-8, and broken UTF-16", () => {
    const cp1251 = Buffer.concat([Buffer.from('<?xml version="1.0" encoding="windows-1251"?><oktellcommapper><data><event id="114" name="usermessage"><property_cdata key="text"><![CDATA['), Buffer.from([0xcf, 0xf0, 0xe8]), Buffer.from("]]></property_cdata></event></data></oktellcommapper>")]);
    expect(codeOf(() => readOktellBody(cp1251, undefined))).toBe("HOOKD_OKTELL_ENCODING");
    expect(codeOf(() => readOktellBody(utf16le(xml).subarray(0, 41), undefined))).toBe("HOOKD_OKTELL_ENCODING");
  });
});

describe("documents and events", () => {
  it("reads several documents in one body, in order, each with its declaration and BOM", () => {
    const body = Buffer.concat([utf16le(seed003.userstatechanged), utf16le(seed003.voicemail), utf16le(seed002Events.tminterfaceclose)]);
    expect(readOktellBody(body, undefined).map((e) => e.name)).toEqual(["oktell.userstatechanged", "oktell.voicemail", "oktell.tminterfaceclose"]);
  });

  it("reads several events of one <data>", () => {
    const xml = `<oktellcommapper version="80710"><data><event id="113" name="voicemail" /><event id="101" name="shutdownrequested" /></data></oktellcommapper>`;
    expect(readOktellBody(utf16le(xml), undefined).map((e) => [e.index, e.name])).toEqual([[0, "oktell.voicemail"], [1, "oktell.shutdownrequested"]]);
  });

  it("names an event by its id when it has no name, and keeps an unknown name for the catalog to refuse", () => {
    const xml = `<oktellcommapper><data><event id="113" /><event id="111" name="nosuchevent" /></data></oktellcommapper>`;
    expect(readOktellBody(utf16le(xml), undefined).map((e) => e.name)).toEqual(["oktell.voicemail", "oktell.nosuchevent"]);
    expect(codeOf(() => readOktellBody(utf16le(`<oktellcommapper><data><event id="999" /></data></oktellcommapper>`), undefined))).toBe("HOOKD_EVENT_UNKNOWN");
  });

  it("passes the properties of undescribed events through, coded values with their names, sets nested", () => {
    const xml = `<oktellcommapper><data><event id="242" name="linestatechange">
      <property_simple key="state" value="4" name="lsReady" />
      <property_simple key="line" value="16016" />
      <property_simple key="__proto__" value="x" />
      <property_set name="extra"><property_cdata key="note"><![CDATA[a < b]]></property_cdata></property_set>
    </event></data></oktellcommapper>`;
    const [event] = readOktellBody(utf16le(xml), undefined);
    expect(event!.body).toEqual({ state: "lsReady", stateCode: 4, line: "16016", ["__proto__"]: "x", extra: { note: "a < b" } });
    // A `__proto__` key is data, never the payload's prototype.
    expect(Object.getPrototypeOf(event!.body)).toBe(Object.prototype);
    expect(typed(xml)[0]!.payload).toMatchObject({ state: "lsReady", stateCode: 4, line: "16016", extra: { note: "a < b" } });
  });

  it("personalstatechanged (115) and linestatechange (242) decode a bare code to its enum name, the code beside it", () => {
    const personal = `<oktellcommapper><data><event id="115" name="personalstatechanged">
      <property_simple key="newstate" value="2" /><property_simple key="userid" value="u-1" />
    </event></data></oktellcommapper>`;
    expect(typed(personal)[0]!.payload).toEqual({ newstate: "usLunch", newstateCode: 2, userid: "u-1" });
    const line = `<oktellcommapper><data><event id="242" name="linestatechange">
      <property_simple key="state" value="2" /><property_simple key="line" value="16016" />
    </event></data></oktellcommapper>`;
    expect(typed(line)[0]!.payload).toEqual({ state: "lsOff", stateCode: 2, line: "16016" });
    // A code in neither table stays as sent and is refused at its path.
    const unknown = line.replace('value="2"', 'value="3"');
    const [event] = readOktellBody(utf16le(unknown), undefined);
    expect(catalog["oktell.linestatechange"].safeParse(event!.body).error?.issues[0]?.path).toEqual(["state"]);
  });

  it("userstatechanged keeps a property the catalog does not list (userid)", () => {
    const xml = seed003.userstatechanged.replace("</event>", '<property_simple key="userid" value="u-9" /></event>');
    expect(xml).not.toBe(seed003.userstatechanged);
    expect(typed(xml)[0]!.payload).toEqual({ newstate: "usWOphone", newstateCode: 7, redirect: false, userid: "u-9" });
  });

  it("refuses malformed XML, a DOCTYPE, other root elements and an empty body", () => {
    expect(codeOf(() => readOktellBody(utf16le(seed003.notify.replace("</event>", "")), undefined))).toBe("HOOKD_OKTELL_MALFORMED");
    expect(codeOf(() => readOktellBody(utf16le(`<!DOCTYPE x [<!ENTITY a "b">]><oktellcommapper/>`), undefined))).toBe("HOOKD_OKTELL_MALFORMED");
    expect(codeOf(() => readOktellBody(utf16le(`<events><event id="113"/></events>`), undefined))).toBe("HOOKD_OKTELL_MALFORMED");
    expect(codeOf(() => readOktellBody(Buffer.alloc(0), undefined))).toBe("HOOKD_OKTELL_NO_EVENT");
    expect(codeOf(() => readOktellBody(utf16le("{\"json\": true}"), undefined))).toBe("HOOKD_OKTELL_MALFORMED");
  });
});
