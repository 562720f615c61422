/**
 * Reads `<oktellcommapper>` documents (seed 003) with a real XML parser and returns their
 * `<event>` elements with the properties as written, before any conversion:
 *
 *   <oktellcommapper version="80710"><data>
 *     <event id="111" name="userstatechanged">
 *       <property_simple key="newstate" value="7" name="usWOphone" />
 *       <property_cdata key="text"><![CDATA[...]]></property_cdata>
 *
 * One body may hold several documents (one after another, each with its declaration), and one
 * `<data>` several events. `property_set` and `property_collection` (seed 002) are kept as
 * nested properties, so events whose fields the seeds do not describe lose nothing.
 */
import { XMLParser, XMLValidator } from "fast-xml-parser";
import { HookdError } from "../../../sandbox/contract/errors.ts";
import { DEFAULT_MAX_DEPTH } from "../../base/depth.ts";

/** One property of an event: a value (with the name of a coded value), a set, or a collection. */
export type RawProperty =
  | { kind: "value"; key: string; value: string; label?: string | undefined }
  | { kind: "set"; key: string; properties: RawProperty[] }
  | { kind: "collection"; key: string; items: RawProperty[][] };

export interface RawOktellEvent {
  /** Position among the events of the body (0-based), for messages. */
  index: number;
  id: string | undefined;
  name: string | undefined;
  properties: RawProperty[];
}

const ROOT = "hookd-body";
const LIST_TAGS = new Set(["oktellcommapper", "data", "event", "property_simple", "property_cdata", "property_set", "property_collection"]);

/** Elements around the first property: hookd-body, oktellcommapper, data, event. */
const WRAPPER_LEVELS = 4;

const parserOptions = {
  ignoreAttributes: false,
  attributeNamePrefix: "@",
  // Values stay text: "0012" is a number to dial, not 12. The catalog's schemas coerce.
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: false,
  cdataPropName: "#cdata",
  ignoreDeclaration: true,
  ignorePiTags: true,
  processEntities: true,
  htmlEntities: true,
  isArray: (tag: string) => LIST_TAGS.has(tag),
};

/** One parser per nesting bound (config `server.maxDepth` rarely changes). */
const parsers = new Map<number, XMLParser>();
function parserFor(maxDepth: number): XMLParser {
  let parser = parsers.get(maxDepth);
  if (!parser) {
    parser = new XMLParser({ ...parserOptions, maxNestedTags: maxDepth + WRAPPER_LEVELS });
    parsers.set(maxDepth, parser);
  }
  return parser;
}

/**
 * The deepest element nesting of a document, counted on the text (a linear scan: it cannot
 * overflow a stack whatever the body): start tags up, end tags down, self-closing tags neither.
 */
function xmlTooDeep(text: string, maxDepth: number): boolean {
  let depth = 0;
  const tags = /<(\/?)([^\s>/!?]+)[^>]*?(\/?)>|<!\[CDATA\[[\s\S]*?\]\]>|<!--[\s\S]*?-->/g;
  for (let match = tags.exec(text); match !== null; match = tags.exec(text)) {
    if (match[2] === undefined) continue; // CDATA or a comment: no element
    if (match[1] === "/") depth--;
    else if (match[3] !== "/" && ++depth > maxDepth) return true;
  }
  return false;
}

type Node = Record<string, unknown>;

/** The `<oktellcommapper>` documents of a text, checked and parsed; throws HOOKD_OKTELL_MALFORMED. */
function parseDocuments(text: string, maxDepth: number): Node[] {
  // Entity declarations are the one way XML text can make the parser do unbounded work;
  // the server never sends a DOCTYPE.
  if (/<!DOCTYPE/i.test(text)) throw new HookdError("HOOKD_OKTELL_MALFORMED", ["a DOCTYPE is not accepted"]);
  // Several documents become children of one root; their declarations go (they were checked
  // when the body was decoded), as does any BOM a concatenated document brought along.
  const wrapped = `<${ROOT}>${text.replace(/<\?xml(?:\s[^>]*?)?\?>/gi, "").replace(/\uFEFF/g, "")}</${ROOT}>`;
  // A nesting bound of its own (400, not the parser's "Maximum nested tags exceeded" as a 500).
  if (xmlTooDeep(wrapped, maxDepth + WRAPPER_LEVELS)) throw new HookdError("HOOKD_HTTP_TOO_DEEP", ["the XML body", maxDepth]);
  const valid = XMLValidator.validate(wrapped);
  if (valid !== true) {
    throw new HookdError("HOOKD_OKTELL_MALFORMED", [`${valid.err.msg} (line ${valid.err.line})`]);
  }
  let document: Node;
  try {
    document = parserFor(maxDepth).parse(wrapped) as Node;
  } catch (error) {
    // The parser's own bound, should the scan above have counted differently.
    if (error instanceof Error && /nested tags/i.test(error.message)) throw new HookdError("HOOKD_HTTP_TOO_DEEP", ["the XML body", maxDepth], { cause: error });
    throw new HookdError("HOOKD_OKTELL_MALFORMED", [error instanceof Error ? error.message : String(error)], { cause: error });
  }
  const parsed = document[ROOT];
  // A root with nothing but text is parsed as that text.
  const root: Node = typeof parsed === "object" && parsed !== null ? (parsed as Node) : { "#text": parsed };
  const loose = root["#text"];
  if (typeof loose === "string" && loose.trim() !== "") {
    throw new HookdError("HOOKD_OKTELL_MALFORMED", [`text outside any element ("${loose.trim().slice(0, 40)}"): expected <oktellcommapper> documents`]);
  }
  const stray = elementNames(root).filter((tag) => tag !== "oktellcommapper");
  if (stray.length > 0) {
    throw new HookdError("HOOKD_OKTELL_MALFORMED", [`expected <oktellcommapper> documents, found <${stray[0]}>`]);
  }

  return list(root.oktellcommapper);
}

/** Parses the text of a body; throws HOOKD_OKTELL_MALFORMED or HOOKD_OKTELL_NO_EVENT. */
export function parseOktellXml(text: string, maxDepth = DEFAULT_MAX_DEPTH): RawOktellEvent[] {
  const documents = parseDocuments(text, maxDepth);
  const events: RawOktellEvent[] = [];
  for (const document of documents) {
    for (const data of list(document.data)) {
      for (const event of list(data.event)) {
        events.push({ index: events.length, id: attr(event, "id"), name: attr(event, "name"), properties: propertiesOf(event) });
      }
    }
  }
  if (events.length === 0) {
    const names = documents.flatMap((d) => list(d.data)).map((d) => attr(d, "name")).filter((n) => n !== undefined);
    throw new HookdError("HOOKD_OKTELL_NO_EVENT", [
      documents.length === 0
        ? "the body holds no <oktellcommapper> document"
        : names.length > 0
          ? `<data name="${names[0]}"> is a method's answer, not an event (a workstation bridge posts it to /oktell/commands/{id}/result)`
          : "the <oktellcommapper> document has no <data><event>",
    ]);
  }
  return events;
}

/** One `<data name="...">` of a method's document (seed 002: `userstate`, `settaskactiveresult`, ...). */
export interface RawOktellData {
  name: string | undefined;
  properties: RawProperty[];
}

/**
 * The `<data>` elements of method documents (an answer posted by a workstation bridge), with
 * their properties as written; the same checks as for events. Throws HOOKD_OKTELL_MALFORMED.
 */
export function parseOktellData(text: string, maxDepth = DEFAULT_MAX_DEPTH): RawOktellData[] {
  return parseDocuments(text, maxDepth).flatMap((document) => list(document.data).map((data) => ({ name: attr(data, "name"), properties: propertiesOf(data) })));
}

function propertiesOf(node: Node): RawProperty[] {
  const properties: RawProperty[] = [];
  for (const simple of list(node.property_simple)) {
    const key = attr(simple, "key");
    if (key !== undefined) properties.push({ kind: "value", key, value: attr(simple, "value") ?? "", label: attr(simple, "name") });
  }
  for (const cdata of list(node.property_cdata)) {
    const key = attr(cdata, "key");
    if (key === undefined) continue;
    const text = textOf(cdata);
    // With a value attribute the CDATA is the name of that value (seed 002: a role's id and title).
    const value = attr(cdata, "value");
    properties.push(value === undefined ? { kind: "value", key, value: text } : { kind: "value", key, value, label: text });
  }
  for (const set of list(node.property_set)) {
    properties.push({ kind: "set", key: attr(set, "name") ?? attr(set, "key") ?? "set", properties: propertiesOf(set) });
  }
  for (const collection of list(node.property_collection)) {
    properties.push({ kind: "collection", key: attr(collection, "name") ?? "items", items: list(collection.property_set).map(propertiesOf) });
  }
  return properties;
}

function list(value: unknown): Node[] {
  if (Array.isArray(value)) return value.filter((v): v is Node => typeof v === "object" && v !== null);
  return typeof value === "object" && value !== null ? [value as Node] : [];
}

function attr(node: Node, name: string): string | undefined {
  const value = node[`@${name}`];
  return typeof value === "string" ? value : undefined;
}

function textOf(node: Node): string {
  const cdata = node["#cdata"];
  if (Array.isArray(cdata)) return cdata.join("");
  if (typeof cdata === "string") return cdata;
  const text = node["#text"];
  return typeof text === "string" ? text : "";
}

function elementNames(node: Node): string[] {
  return Object.keys(node).filter((key) => !key.startsWith("@") && !key.startsWith("#"));
}
