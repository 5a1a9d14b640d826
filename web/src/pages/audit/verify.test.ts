import { describe, expect, it } from "vitest";

import kaiLog from "./verify.kai-log.json";
import vectors from "./verify.vectors.json";
import {
  ed25519Supported,
  fromBase58,
  fromBase64,
  fromHex,
  hashFromHex,
  leafHash,
  merkleRoot,
  parseCheckpointBody,
  publicKeyFromDid,
  rootFromInclusionProof,
  toHex,
  verifyCheckpoint,
  verifyEd25519,
  verifyEntry,
  verifyInclusion,
  type Hash,
} from "./verify";

function h(text: string): Hash {
  const hash = hashFromHex(text);
  if (!hash) throw new Error(`not a hash: ${text}`);
  return hash;
}

// The Certificate Transparency reference tree, as crates/kai-audit/src/merkle.rs tests it
// (google/certificate-transparency merkle_tree_test.cc, transparency-dev/merkle verify_test.go).
const EMPTY_TREE_HASH = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const KAT_INPUTS = [
  "",
  "00",
  "10",
  "2021",
  "3031",
  "40414243",
  "5051525354555657",
  "606162636465666768696a6b6c6d6e6f",
];
const KAT_ROOTS = [
  "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
  "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
  "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
  "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
  "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
  "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
  "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
  "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];
/** (leaf, tree size, path); `leaf` is 1-based as in the sources. */
const KAT_PATHS: [number, number, string[]][] = [
  [1, 1, []],
  [
    1,
    8,
    [
      "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
      "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
  ],
  [
    6,
    8,
    [
      "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
      "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
      "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
  ],
  [3, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]],
  [
    2,
    5,
    [
      "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
      "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    ],
  ],
];

async function katLeaves(): Promise<Hash[]> {
  return Promise.all(KAT_INPUTS.map((input) => leafHash(fromHex(input) ?? new Uint8Array())));
}

describe("Merkle hashing (RFC 6962 known answers)", () => {
  it("hashes leaves with the 0x00 prefix", async () => {
    expect(toHex(await leafHash(new Uint8Array()))).toBe(KAT_ROOTS[0]);
    expect(toHex(await leafHash("L123456"))).toBe(
      "395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56",
    );
    expect(toHex(await merkleRoot([]))).toBe(EMPTY_TREE_HASH);
  });

  it("computes the roots of the reference tree", async () => {
    const leaves = await katLeaves();
    for (let size = 1; size <= 8; size++) {
      expect(toHex(await merkleRoot(leaves.slice(0, size)))).toBe(KAT_ROOTS[size - 1]);
    }
  });

  it("verifies the reference inclusion proofs", async () => {
    const leaves = await katLeaves();
    for (const [leaf, size, path] of KAT_PATHS) {
      const index = leaf - 1;
      const proof = path.map(h);
      const root = h(KAT_ROOTS[size - 1] ?? "");
      const leafHashed = leaves[index] as Hash;
      expect(await verifyInclusion(leafHashed, index, size, proof, root)).toBe(true);
    }
  });

  it("rejects corrupted inclusion proofs", async () => {
    const leaves = await katLeaves();
    for (const [leaf, size, path] of KAT_PATHS) {
      const index = leaf - 1;
      const proof = path.map(h);
      const root = h(KAT_ROOTS[size - 1] ?? "");
      const leafHashed = leaves[index] as Hash;
      const rejects = async (l: Hash, i: number, s: number, p: Hash[], r: Hash) =>
        expect(await verifyInclusion(l, i, s, p, r)).toBe(false);
      await rejects(leafHashed, index - 1, size, proof, root);
      await rejects(leafHashed, index + 1, size, proof, root);
      await rejects(leafHashed, index ^ 2, size, proof, root);
      await rejects(leafHashed, index, size * 2, proof, root);
      await rejects(leafHashed, index, Math.floor(size / 2), proof, root);
      await rejects(await leafHash("WrongLeaf"), index, size, proof, root);
      await rejects(leafHashed, index, size, proof, h(EMPTY_TREE_HASH));
      await rejects(leafHashed, index, size, [...proof, root], root);
      await rejects(leafHashed, index, size, [root, ...proof], root);
      for (let i = 0; i < proof.length; i++) {
        const wrong = proof.map((hash) => hash.slice());
        (wrong[i] as Hash)[0] ^= 8;
        await rejects(leafHashed, index, size, wrong, root);
      }
      if (proof.length > 0) await rejects(leafHashed, index, size, proof.slice(0, -1), root);
    }
  });

  it("handles tree positions beyond 32 bits", async () => {
    // Leaf 2^32 of a tree of 2^32 + 1 leaves is the last one, alone on the right: its proof is
    // one hash, the root of the first 2^32 leaves. 32-bit bitwise arithmetic would get this wrong.
    const leaf = await leafHash("x");
    const left = await leafHash("left");
    const root = await rootFromInclusionProof(leaf, 2 ** 32, 2 ** 32 + 1, [left]);
    expect(root).not.toBeNull();
    expect(await rootFromInclusionProof(leaf, 2 ** 32, 2 ** 32 + 1, [])).toBeNull();
  });
});

describe("keys and encodings", () => {
  it("reads a did:key as kai-vault does (acapy's published example)", () => {
    const did = "did:key:z6MkmjY8GnV5i9YTDtPETC2uUAW6ejw3nk5mXF5yci5ab7th";
    const expected = fromBase58("8HH5gYEeNc3z7PYXmd54d4x6qAfCNrqQqEB3nS7Zfu7K");
    expect(expected).not.toBeNull();
    expect(publicKeyFromDid(did)).toEqual(expected);
    expect(publicKeyFromDid("kid:z6MkmjY8GnV5i9YTDtPETC2uUAW6ejw3nk5mXF5yci5ab7th")).toEqual(
      expected,
    );
    expect(publicKeyFromDid(`${did}#z6MkmjY8GnV5i9YTDtPETC2uUAW6ejw3nk5mXF5yci5ab7th`)).toEqual(
      expected,
    );
    // An X25519 did:key (multicodec 0xec01) is not a signing key.
    expect(publicKeyFromDid("did:key:z6LShpNhGwSupbB7zjuivH156vhLJBDDzmQtA4BY9S94pe1K")).toBeNull();
    expect(publicKeyFromDid("did:web:example.com")).toBeNull();
    expect(publicKeyFromDid(vectors.did)).toEqual(fromHex(vectors.publicKey));
  });

  it("reads only canonical hex and base64", () => {
    expect(fromHex("0aFF")).toBeNull();
    expect(fromHex("0a0")).toBeNull();
    expect(fromHex("0aff")).toEqual(Uint8Array.of(10, 255));
    expect(fromBase64("AQID")).toEqual(Uint8Array.of(1, 2, 3));
    expect(fromBase64("AQI")).toBeNull();
    expect(fromBase64("A_ID")).toBeNull();
  });
});

describe("signatures", () => {
  it("WebCrypto here verifies Ed25519", async () => {
    expect(await ed25519Supported()).toBe(true);
  });

  it("verifies RFC 8032's test vectors", async () => {
    // RFC 8032 section 7.1, TEST 1 (empty message) and TEST 2 (one byte, 0x72).
    const key1 = fromHex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
    const sig1 = fromHex(
      "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    );
    const key2 = fromHex("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c");
    const sig2 = fromHex(
      "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    );
    if (!key1 || !sig1 || !key2 || !sig2) throw new Error("bad vector");
    expect(await verifyEd25519(key1, new Uint8Array(), sig1)).toBe(true);
    expect(await verifyEd25519(key2, Uint8Array.of(0x72), sig2)).toBe(true);
    expect(await verifyEd25519(key2, Uint8Array.of(0x73), sig2)).toBe(false);
    expect(await verifyEd25519(key1, new Uint8Array(), sig2)).toBe(false);
  });
});

// A three-entry log built by verify.vectors.py with the Rust code's rules: canonical entries
// chained by `prev`, leaf hashes, RFC 6962 root and paths, a canonical checkpoint body, Ed25519
// signatures by a fixed key.
describe("a log built by kai's rules", () => {
  const checkpoint = vectors.checkpoint;

  it("verifies the signed checkpoint", async () => {
    const check = await verifyCheckpoint(checkpoint, vectors.did);
    expect(check).toMatchObject({ signature: true, body: true, ok: true });
    expect(check.root && toHex(check.root)).toBe(checkpoint.root);
    expect(parseCheckpointBody(checkpoint.body)).toMatchObject({ size: 3 });
  });

  it("refuses a checkpoint that was edited or signed by another key", async () => {
    const edited = { ...checkpoint, body: checkpoint.body.replace('"size":3', '"size":2'), size: 2 };
    expect((await verifyCheckpoint(edited, vectors.did)).signature).toBe(false);
    const otherKey = "did:key:z6MkmjY8GnV5i9YTDtPETC2uUAW6ejw3nk5mXF5yci5ab7th";
    const check = await verifyCheckpoint(checkpoint, otherKey);
    expect(check.signature).toBe(false);
    expect(check.body).toBe(false);
    // A signed body stating another root than the listed one.
    const lying = { ...checkpoint, root: vectors.entries[0]?.hash ?? "" };
    expect(await verifyCheckpoint(lying, vectors.did)).toMatchObject({ signature: true, ok: false });
    expect(parseCheckpointBody(checkpoint.body.replace(":3,", ": 3,"))).toBeNull();
  });

  it("verifies each entry's hash, signature and inclusion", async () => {
    const key = publicKeyFromDid(vectors.did);
    const root = h(checkpoint.root);
    const leaves: Hash[] = [];
    for (const entry of vectors.entries) {
      const proof = vectors.proofs[String(entry.seq) as keyof typeof vectors.proofs];
      const check = await verifyEntry(
        entry,
        { seq: entry.seq, size: 3, proof },
        { size: 3, root },
        key,
      );
      expect(check).toEqual({ hash: true, signature: true, inclusion: true, ok: true });
      leaves.push(await leafHash(entry.entry));
    }
    expect(toHex(await merkleRoot(leaves))).toBe(checkpoint.root);
  });

  it("fails an entry that was changed after it was logged", async () => {
    const key = publicKeyFromDid(vectors.did);
    const root = h(checkpoint.root);
    const entry = vectors.entries[2];
    if (!entry) throw new Error("no entry");
    const proof = { seq: 2, size: 3, proof: vectors.proofs["2"] };
    const edited = { ...entry, entry: entry.entry.replace('"denied"', '"success"') };
    expect(await verifyEntry(edited, proof, { size: 3, root }, key)).toEqual({
      hash: false,
      signature: false,
      inclusion: false,
      ok: false,
    });
    // Re-hashed to match, it still fails the signature and the signed root.
    const rehashed = { ...edited, hash: toHex(await leafHash(edited.entry)) };
    expect(await verifyEntry(rehashed, proof, { size: 3, root }, key)).toMatchObject({
      hash: true,
      signature: false,
      inclusion: false,
    });
    // A proof for another tree size than the checkpoint's is not accepted.
    expect(
      (await verifyEntry(entry, { ...proof, size: 4 }, { size: 3, root }, key)).inclusion,
    ).toBe(false);
    // An unsigned entry (vault locked when it was appended) is still proven by inclusion.
    const unsigned = { ...entry, signature: null };
    expect(await verifyEntry(unsigned, proof, { size: 3, root }, key)).toEqual({
      hash: true,
      signature: null,
      inclusion: true,
      ok: true,
    });
  });
});

// What a real `kai serve` answered (see the file's _comment): the server's own hashing, tree and
// signatures, checked with this module.
describe("a log written by kai itself", () => {
  it("verifies every checkpoint, and every entry against the newest", async () => {
    for (const checkpoint of kaiLog.checkpoints) {
      expect(await verifyCheckpoint(checkpoint, kaiLog.did)).toMatchObject({ ok: true });
    }
    const latest = kaiLog.checkpoints.at(-1);
    if (!latest) throw new Error("no checkpoint");
    const key = publicKeyFromDid(kaiLog.did);
    for (const entry of kaiLog.entries) {
      const proof = kaiLog.proofs[String(entry.seq) as keyof typeof kaiLog.proofs];
      expect(proof.root).toBe(latest.root);
      const check = await verifyEntry(entry, proof, { size: latest.size, root: h(latest.root) }, key);
      expect(check).toEqual({ hash: true, signature: true, inclusion: true, ok: true });
    }
    const leaves = await Promise.all(kaiLog.entries.map((entry) => leafHash(entry.entry)));
    expect(toHex(await merkleRoot(leaves))).toBe(latest.root);
  });
});
