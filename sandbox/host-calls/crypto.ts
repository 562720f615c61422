/**
 * crypto.subtle's digest, HMAC and AES-GCM for the runtime's web globals (sandbox/runtime/web.ts),
 * answered in the sandbox with Node's crypto: bytes travel as base64, at most 4 MiB of them.
 */
import { createCipheriv, createDecipheriv, createHash, createHmac } from "node:crypto";
import { HookdError } from "../contract/errors.ts";
import type { HostCallSpec } from "./spec.ts";

const HASHES = new Set(["sha1", "sha256", "sha384", "sha512"]);
/** Base64 of at most 4 MiB, what the runtime sends at most. */
const MAX_CRYPTO_BASE64 = Math.ceil((4 * 1024 * 1024) / 3) * 4;
const TAG_BITS = [32, 64, 96, 104, 112, 120, 128];

export const digest: HostCallSpec<"crypto.digest"> = {
  check: (raw) => [hashOf("crypto.digest", raw[0]), base64("crypto.digest", raw[1])],
  serve: ([hash, data]) => createHash(hash).update(Buffer.from(data, "base64")).digest("base64"),
};

export const hmac: HostCallSpec<"crypto.hmac"> = {
  check: (raw) => [hashOf("crypto.hmac", raw[0]), base64("crypto.hmac", raw[1]), base64("crypto.hmac", raw[2])],
  serve: ([hash, key, data]) => createHmac(hash, Buffer.from(key, "base64")).update(Buffer.from(data, "base64")).digest("base64"),
};

/** [op, key, iv, additionalData, tag length in bits, data]; the ciphertext carries its tag last. */
export const aesGcm: HostCallSpec<"crypto.aesgcm"> = {
  check: (raw) => {
    const op = raw[0] === "encrypt" ? "encrypt" : "decrypt";
    const [key, iv, aad, data] = [raw[1], raw[2], raw[3], raw[5]].map((value) => base64("crypto.aesgcm", value)) as [string, string, string, string];
    return [op, key, iv, aad, Number(raw[4]), data];
  },
  serve: ([op, keyText, ivText, aadText, tagBits, dataText]) => {
    const [key, iv, aad, data] = [keyText, ivText, aadText, dataText].map((text) => Buffer.from(text, "base64")) as [Buffer, Buffer, Buffer, Buffer];
    if ((key.length !== 16 && key.length !== 24 && key.length !== 32) || iv.length === 0 || !TAG_BITS.includes(tagBits)) {
      throw new HookdError("HOOKD_HOST_CALL_INVALID", ["crypto.aesgcm", "bad key, iv or tag length"]);
    }
    const algorithm = `aes-${key.length * 8}-gcm` as "aes-256-gcm";
    const tagLength = tagBits / 8;
    if (op === "encrypt") {
      const cipher = createCipheriv(algorithm, key, iv, { authTagLength: tagLength });
      if (aad.length > 0) cipher.setAAD(aad);
      return Buffer.concat([cipher.update(data), cipher.final(), cipher.getAuthTag()]).toString("base64");
    }
    if (data.length < tagLength) throw new HookdError("HOOKD_HOST_CALL_INVALID", ["crypto.aesgcm", "the data is shorter than its tag"]);
    const decipher = createDecipheriv(algorithm, key, iv, { authTagLength: tagLength });
    decipher.setAuthTag(data.subarray(data.length - tagLength));
    if (aad.length > 0) decipher.setAAD(aad);
    return Buffer.concat([decipher.update(data.subarray(0, data.length - tagLength)), decipher.final()]).toString("base64");
  },
};

function hashOf(call: string, hash: unknown): string {
  if (typeof hash !== "string" || !HASHES.has(hash)) throw new HookdError("HOOKD_HOST_CALL_INVALID", [call, `unknown hash ${String(hash)}`]);
  return hash;
}

function base64(call: string, value: unknown): string {
  if (typeof value !== "string" || value.length > MAX_CRYPTO_BASE64) throw new HookdError("HOOKD_HOST_CALL_INVALID", [call, "data must be base64 of at most 4 MiB"]);
  return value;
}
