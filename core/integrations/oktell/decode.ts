/**
 * The bytes of a `POST /ingest/oktell` body -> text. The telephony server writes its XML in
 * UTF-16 and says so in the declaration; what relays it sends UTF-16 LE or BE, with or without a
 * BOM, and some re-encode it as UTF-8 but keep `encoding="utf-16"`. So the bytes decide (BOM,
 * else where the zero bytes of the ASCII markup sit), not the declaration or a Content-Type
 * charset, which relays get wrong. A declared encoding that is neither UTF-16 nor UTF-8
 * (windows-1251, say) is refused rather than misread.
 */
import { HookdError } from "../../../sandbox/contract/errors.ts";

export type XmlEncoding = "utf-16le" | "utf-16be" | "utf-8";

/** Declared encodings that name what the bytes can be (`unicode` is the Windows name of UTF-16). */
const ACCEPTED_LABELS = new Set(["utf-16", "utf-16le", "utf-16be", "unicode", "utf-8", "utf8", "us-ascii", "ascii"]);

/** How many leading bytes the byte-order guess looks at: the declaration and the first tags. */
const SNIFF_BYTES = 512;

/** The encoding of an XML body and the length of its BOM (0 without one). */
export function detectXmlEncoding(bytes: Uint8Array): { encoding: XmlEncoding; bomLength: number } {
  if (bytes[0] === 0xff && bytes[1] === 0xfe) return { encoding: "utf-16le", bomLength: 2 };
  if (bytes[0] === 0xfe && bytes[1] === 0xff) return { encoding: "utf-16be", bomLength: 2 };
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) return { encoding: "utf-8", bomLength: 3 };
  // Without a BOM: markup is ASCII, so UTF-16 shows a zero in every other byte; which half
  // holds the zeros gives the byte order. UTF-8 text has no zero bytes at all.
  let zerosAtEven = 0;
  let zerosAtOdd = 0;
  for (let i = 0; i < Math.min(bytes.length, SNIFF_BYTES); i++) {
    if (bytes[i] === 0) i % 2 === 0 ? zerosAtEven++ : zerosAtOdd++;
  }
  if (zerosAtOdd === 0 && zerosAtEven === 0) return { encoding: "utf-8", bomLength: 0 };
  return { encoding: zerosAtOdd >= zerosAtEven ? "utf-16le" : "utf-16be", bomLength: 0 };
}

/** Decodes an XML body; throws HOOKD_OKTELL_ENCODING for an unsupported or broken encoding. */
export function decodeXmlBody(bytes: Uint8Array): { text: string; encoding: XmlEncoding } {
  const { encoding, bomLength } = detectXmlEncoding(bytes);
  const body = bytes.subarray(bomLength);
  let text: string;
  try {
    text = new TextDecoder(encoding, { fatal: true, ignoreBOM: true }).decode(body);
  } catch (error) {
    // Say what the declaration claims when it names something else: that is the usual cause.
    const declared = declaredEncodings(new TextDecoder(encoding).decode(body)).find((label) => !ACCEPTED_LABELS.has(label));
    throw new HookdError("HOOKD_OKTELL_ENCODING", [declared ?? `${encoding} (the bytes are not valid ${encoding})`], { cause: error });
  }
  const unsupported = declaredEncodings(text).find((label) => !ACCEPTED_LABELS.has(label));
  if (unsupported !== undefined) throw new HookdError("HOOKD_OKTELL_ENCODING", [unsupported]);
  return { text, encoding };
}

/** The `encoding` of every XML declaration in the text (a body may hold several documents). */
export function declaredEncodings(text: string): string[] {
  const labels: string[] = [];
  for (const match of text.matchAll(/<\?xml\s[^>]*?encoding\s*=\s*["']([^"']*)["']/gi)) labels.push(match[1]!.trim().toLowerCase());
  return labels;
}
