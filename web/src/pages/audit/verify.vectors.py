# Builds verify.vectors.json: a three-entry audit log by the rules of crates/kai-audit (canonical
# entries chained by prev, SHA-256 leaf and node hashes with 0x00/0x01 prefixes, the RFC 6962 root
# and paths, a canonical checkpoint body) signed with Ed25519 by a fixed key. Independent of the
# TypeScript under test: python3 verify.vectors.py > verify.vectors.json (needs `cryptography`).
import hashlib, json, base64
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives import serialization

seed = bytes(range(32))
sk = Ed25519PrivateKey.from_private_bytes(seed)
pk = sk.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
ALPH = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
def b58(b):
    n = int.from_bytes(b, 'big'); out = ''
    while n: n, r = divmod(n, 58); out = ALPH[r] + out
    for c in b:
        if c == 0: out = '1' + out
        else: break
    return out
did = "did:key:z" + b58(bytes([0xed, 0x01]) + pk)

def canon_str(s): return json.dumps(s, ensure_ascii=False)
def leaf(d): return hashlib.sha256(b'\x00' + d).digest()
def node(l, r): return hashlib.sha256(b'\x01' + l + r).digest()
def mth(leaves):
    n = len(leaves)
    if n == 0: return hashlib.sha256(b'').digest()
    if n == 1: return leaves[0]
    k = 1
    while k * 2 < n: k *= 2
    return node(mth(leaves[:k]), mth(leaves[k:]))
def path(m, leaves):
    n = len(leaves)
    if n <= 1: return []
    k = 1
    while k * 2 < n: k *= 2
    if m < k: return path(m, leaves[:k]) + [mth(leaves[k:])]
    return path(m - k, leaves[k:]) + [mth(leaves[:k])]

events = [
  ("auth.login", "user:0190f1e2-0000-7000-8000-000000000001", {"ip": "127.0.0.1"}, "success", "user:0190f1e2-0000-7000-8000-000000000001", "2025-11-24T16:00:00.123Z"),
  ("agent.tool.call", "agent:0190f1e2-0000-7000-8000-0000000000aa", {"arguments": {"path": "a \"b\"\n"}, "key": "k1", "tool": "fs.write"}, "success", "run:0190f1e2-0000-7000-8000-0000000000bb", "2025-11-24T16:00:01.000Z"),
  ("secret.read", "user:0190f1e2-0000-7000-8000-000000000001", {}, "denied", "secret:node/openai", "2025-11-24T16:00:02.050Z"),
]
entries = []
prev = bytes(32)
for seq, (action, actor, details, outcome, target, time) in enumerate(events):
    text = ('{"action":' + canon_str(action) + ',"actor":' + canon_str(actor) + ',"details":' +
            json.dumps(details, ensure_ascii=False, separators=(',', ':'), sort_keys=True) +
            ',"outcome":"' + outcome + '","prev":"' + prev.hex() + '","seq":' + str(seq) +
            ',"target":' + canon_str(target) + ',"time":"' + time + '"}')
    h = leaf(text.encode())
    sig = sk.sign(text.encode())
    entries.append({"seq": seq, "entry": text, "hash": h.hex(), "signature": base64.b64encode(sig).decode()})
    prev = h
leaves = [bytes.fromhex(e["hash"]) for e in entries]
root = mth(leaves)
body = '{"log":' + canon_str(did) + ',"root":"' + root.hex() + '","size":3,"time":"2025-11-24T16:00:05.000Z"}'
cp = {"size": 3, "root": root.hex(), "body": body, "signature": base64.b64encode(sk.sign(body.encode())).decode()}
proofs = {e["seq"]: [p.hex() for p in path(e["seq"], leaves)] for e in entries}
print(json.dumps({"did": did, "publicKey": pk.hex(), "entries": entries, "checkpoint": cp, "proofs": proofs}, indent=2, ensure_ascii=False))
