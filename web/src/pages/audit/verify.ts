/**
 * Checking kai's audit log in the browser, by the rules of crates/kai-audit:
 *
 * - An entry is canonical JSON (RFC 8785: members sorted, no whitespace). Its leaf hash is
 *   `SHA-256(0x00 || entry)` (RFC 6962 §2.1), and the node signs the entry's bytes with Ed25519.
 * - The log is an RFC 6962 / 9162 Merkle tree over the leaf hashes; interior nodes are
 *   `SHA-256(0x01 || left || right)`. An inclusion proof is verified with RFC 9162 §2.1.3.2.
 * - A checkpoint's body is canonical JSON `{"log": did, "root": hex, "size": n, "time": t}`,
 *   signed with Ed25519 by the key the `did:key` in `log` names (multicodec 0xed01, base58btc).
 *
 * Hashes are lower-case hex and signatures standard base64, as the API writes them. Nothing here
 * touches the network: the page fetches, this module checks.
 */

export type Hash = Uint8Array;

const encoder = new TextEncoder();

function subtle(): SubtleCrypto {
  const api = globalThis.crypto?.subtle;
  if (!api) throw new Error("WebCrypto is not available");
  return api;
}

/** Bytes as lower-case hex. */
export function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** Lower-case hex (the only spelling kai writes) as bytes; null if it is anything else. */
export function fromHex(text: string): Uint8Array | null {
  if (text.length % 2 !== 0 || !/^[0-9a-f]*$/.test(text)) return null;
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(i * 2, i * 2 + 2), 16);
  return out;
}

/** A 32-byte hash from hex; null if it is not one. */
export function hashFromHex(text: string): Hash | null {
  const bytes = fromHex(text);
  return bytes && bytes.length === 32 ? bytes : null;
}

/** Standard base64 (with padding) as bytes; null if malformed. */
export function fromBase64(text: string): Uint8Array | null {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) return null;
  try {
    const binary = atob(text);
    return Uint8Array.from(binary, (char) => char.charCodeAt(0));
  } catch {
    return null;
  }
}

const BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/** Bitcoin-alphabet base58 as bytes; null on a character outside it. */
export function fromBase58(text: string): Uint8Array | null {
  let value = 0n;
  for (const char of text) {
    const digit = BASE58.indexOf(char);
    if (digit < 0) return null;
    value = value * 58n + BigInt(digit);
  }
  const bytes: number[] = [];
  while (value > 0n) {
    bytes.unshift(Number(value & 0xffn));
    value >>= 8n;
  }
  for (const char of text) {
    if (char !== "1") break;
    bytes.unshift(0);
  }
  return Uint8Array.from(bytes);
}

/**
 * The Ed25519 public key a `did:key:z6Mk…` (or `kid:z6Mk…`, with or without a `#fragment`)
 * names; null if it names none.
 */
export function publicKeyFromDid(did: string): Uint8Array | null {
  const id = did.startsWith("did:key:")
    ? did.slice("did:key:".length)
    : did.startsWith("kid:")
      ? did.slice("kid:".length)
      : null;
  if (!id) return null;
  const multibase = id.split("#")[0] ?? "";
  if (!multibase.startsWith("z")) return null;
  const bytes = fromBase58(multibase.slice(1));
  if (!bytes || bytes.length !== 34 || bytes[0] !== 0xed || bytes[1] !== 0x01) return null;
  return bytes.slice(2);
}

/** A copy backed by a plain ArrayBuffer, as WebCrypto's types ask. */
function owned(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return new Uint8Array(bytes);
}

async function sha256(...parts: Uint8Array[]): Promise<Hash> {
  const length = parts.reduce((sum, part) => sum + part.length, 0);
  const data = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    data.set(part, offset);
    offset += part.length;
  }
  return new Uint8Array(await subtle().digest("SHA-256", data));
}

/** `SHA-256(0x00 || data)`: a log entry's Merkle leaf. */
export function leafHash(data: Uint8Array | string): Promise<Hash> {
  const bytes = typeof data === "string" ? encoder.encode(data) : data;
  return sha256(Uint8Array.of(0x00), bytes);
}

/** `SHA-256(0x01 || left || right)`: an interior node. */
export function nodeHash(left: Hash, right: Hash): Promise<Hash> {
  return sha256(Uint8Array.of(0x01), left, right);
}

/** The Merkle Tree Hash (RFC 9162 §2.1.1) of leaf hashes. Splits at the largest power of two below n. */
export async function merkleRoot(leaves: Hash[]): Promise<Hash> {
  if (leaves.length === 0) return sha256();
  if (leaves.length === 1) return leaves[0] as Hash;
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  return nodeHash(await merkleRoot(leaves.slice(0, k)), await merkleRoot(leaves.slice(k)));
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

/**
 * The root an inclusion proof leads to from `leaf` at `index` in a tree of `size` leaves
 * (RFC 9162 §2.1.3.2), or null if the proof is too short, too long, or the index out of range.
 * Positions are BigInts: JavaScript's bitwise operators work on 32 bits only.
 */
export async function rootFromInclusionProof(
  leaf: Hash,
  index: number,
  size: number,
  proof: Hash[],
): Promise<Hash | null> {
  if (!(index >= 0 && index < size)) return null;
  let fn = BigInt(index);
  let sn = BigInt(size - 1);
  let r = leaf;
  for (const p of proof) {
    if (sn === 0n) return null;
    if ((fn & 1n) === 1n || fn === sn) {
      r = await nodeHash(p, r);
      if ((fn & 1n) === 0n) {
        while ((fn & 1n) === 0n && fn !== 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  return sn === 0n ? r : null;
}

/** Whether `proof` shows `leaf` is leaf `index` of the tree of `size` leaves with `root`. */
export async function verifyInclusion(
  leaf: Hash,
  index: number,
  size: number,
  proof: Hash[],
  root: Hash,
): Promise<boolean> {
  const computed = await rootFromInclusionProof(leaf, index, size, proof);
  return computed !== null && equalBytes(computed, root);
}

/** Whether WebCrypto here verifies Ed25519 (Chromium, Firefox 129+, Safari 17+, Node 20). */
export async function ed25519Supported(): Promise<boolean> {
  try {
    await subtle().importKey("raw", new Uint8Array(32), { name: "Ed25519" }, false, ["verify"]);
    return true;
  } catch {
    return false;
  }
}

/** Whether `signature` is `publicKey`'s Ed25519 signature over `message`. */
export async function verifyEd25519(
  publicKey: Uint8Array,
  message: Uint8Array | string,
  signature: Uint8Array,
): Promise<boolean> {
  if (publicKey.length !== 32 || signature.length !== 64) return false;
  const key = await subtle().importKey("raw", owned(publicKey), { name: "Ed25519" }, false, [
    "verify",
  ]);
  const data = typeof message === "string" ? encoder.encode(message) : owned(message);
  return subtle().verify({ name: "Ed25519" }, key, owned(signature), data);
}

export interface CheckpointBody {
  log: string;
  root: string;
  size: number;
  time: string;
}

/**
 * A checkpoint's signed body, if it is exactly what kai writes: canonical JSON with just `log`,
 * `root`, `size` and `time`, in that (sorted) order.
 */
export function parseCheckpointBody(body: string): CheckpointBody | null {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    return null;
  }
  if (typeof value !== "object" || value === null) return null;
  const { log, root, size, time } = value as Record<string, unknown>;
  if (typeof log !== "string" || typeof root !== "string" || typeof time !== "string") return null;
  if (typeof size !== "number" || !Number.isSafeInteger(size)) return null;
  const canonical = `{"log":${JSON.stringify(log)},"root":${JSON.stringify(root)},"size":${size},"time":${JSON.stringify(time)}}`;
  return canonical === body ? { log, root, size, time } : null;
}

export interface SignedCheckpoint {
  size: number;
  root: string;
  body: string;
  signature: string;
}

export interface CheckpointCheck {
  /** The signature over the body verifies with the node's key. */
  signature: boolean;
  /** The body is canonical, names the node's did:key, and states the checkpoint's size and root. */
  body: boolean;
  ok: boolean;
  /** The root the signature vouches for, when the body could be read. */
  root: Hash | null;
}

/** Checks a checkpoint against the node's did:key. */
export async function verifyCheckpoint(
  checkpoint: SignedCheckpoint,
  did: string,
): Promise<CheckpointCheck> {
  const key = publicKeyFromDid(did);
  const signature = fromBase64(checkpoint.signature);
  const signed = key && signature ? await verifyEd25519(key, checkpoint.body, signature) : false;
  const body = parseCheckpointBody(checkpoint.body);
  const bodyOk =
    body !== null &&
    body.log === did &&
    body.size === checkpoint.size &&
    body.root === checkpoint.root;
  return {
    signature: signed,
    body: bodyOk,
    ok: signed && bodyOk,
    root: body ? hashFromHex(body.root) : null,
  };
}

export interface LogEntry {
  seq: number;
  entry: string;
  hash: string;
  signature?: string | null;
}

export interface EntryFields {
  action: string;
  actor: string;
  details: Record<string, unknown>;
  outcome: string;
  prev: string;
  seq: number;
  target: string;
  time: string;
}

/** An entry's fields from its canonical JSON; null if it is not an object with them. */
export function parseEntry(text: string): EntryFields | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof value !== "object" || value === null) return null;
  const fields = value as Record<string, unknown>;
  const strings = ["action", "actor", "outcome", "prev", "target", "time"] as const;
  if (strings.some((name) => typeof fields[name] !== "string")) return null;
  if (typeof fields.seq !== "number") return null;
  if (typeof fields.details !== "object" || fields.details === null) return null;
  return fields as unknown as EntryFields;
}

export interface EntryCheck {
  /** SHA-256(0x00 || entry) is the hash the server lists, and the entry states its own seq. */
  hash: boolean;
  /** The node's signature over the entry verifies; null when it has none (vault was locked). */
  signature: boolean | null;
  /** The inclusion proof leads from the entry's leaf to the signed checkpoint's root. */
  inclusion: boolean;
  ok: boolean;
}

/**
 * Checks an entry: its hash, its signature (with the node's key, when it has one), and that the
 * proof places it in the tree of the checkpoint (one whose signature was verified): the proof
 * must be for that tree's size, and lead to its root.
 */
export async function verifyEntry(
  entry: LogEntry,
  proof: { seq: number; size: number; proof: string[] },
  checkpoint: { size: number; root: Hash },
  publicKey: Uint8Array | null,
): Promise<EntryCheck> {
  const leaf = await leafHash(entry.entry);
  const fields = parseEntry(entry.entry);
  const listed = hashFromHex(entry.hash);
  const hash = listed !== null && equalBytes(leaf, listed) && fields?.seq === entry.seq;
  let signature: boolean | null = null;
  if (entry.signature) {
    const bytes = fromBase64(entry.signature);
    signature = publicKey && bytes ? await verifyEd25519(publicKey, entry.entry, bytes) : false;
  }
  const path = proof.proof.map(hashFromHex);
  const inclusion =
    proof.seq === entry.seq &&
    proof.size === checkpoint.size &&
    path.every((hash): hash is Hash => hash !== null) &&
    (await verifyInclusion(leaf, entry.seq, checkpoint.size, path, checkpoint.root));
  return { hash, signature, inclusion, ok: hash && signature !== false && inclusion };
}
