"""Part B: search latency and throughput at N chunks, kai against Chroma on the same vectors;
indexing throughput; kai serve's resident memory.

1. A corpus of N short chunks: English-like text from a word-bigram chain trained on gensim's
   Lee background corpus (seeded, so every run makes the same text), one Markdown section per
   chunk (`## c0000042` and a paragraph of 24 to 28 words), PER_ARTIFACT sections per artifact.
   kai runs with `knowledge.chunk_tokens = 64` and `chunk_overlap = 0`, so that each section is
   one chunk (one fits in 64 tokens, two do not, as a rule: the run reports how many chunks and
   distinct headings it got) and a hit's (artifact, heading) names its chunk.
2. Indexing without the embedding model: a kai serve whose embedding model does not exist
   (`KAI_KNOWLEDGE_EMBEDDING_MODEL=local/absent`): every upload is extracted, chunked, stored
   and put in the keyword index, then ends `keyword_only`. Chunks/s from the first upload until
   all are keyword_only.
3. Indexing with the model: a fresh kai serve indexes the same corpus for real (keyword and
   vector indexes). Chunks/s overall; then the model's own throughput on the same chunk texts in
   the indexer's batches of 32 through `POST /v1/embeddings` (a sample), and the rate with the
   model's time subtracted: N / (T - N / embed_rate).
4. kai serve restarted on that data pinned to SERVER_CPU (its pools then have one thread),
   Chroma (`chroma run`, also pinned to SERVER_CPU) given the very vectors kai stored (read
   from kai's database), with the chunk texts as documents, cosine space, default HNSW settings.
5. Q queries (other text from the same chain) embedded by kai's `/v1/embeddings`; exact top 10
   by numpy over the stored vectors; recall@10 of kai's semantic search and of Chroma's query.
6. Closed-loop load from this process, pinned to LOAD_CPU, one keep-alive connection per
   client, 1 and 8 clients, rounds alternating the targets: kai hybrid search (its query
   embedded inside, passages returned, limit 10) and Chroma's query with the query's vector
   (n_results 10, documents and distances) through Chroma's HTTP API. Chroma is handed the
   vector, so its figures leave out the embedding that kai's include; the `embed-chroma`
   target adds it back: the query embedded by the same MiniLM through kai's /v1/embeddings
   (on the same core), then Chroma's query.
7. VmRSS/VmHWM of kai serve after the restart and after the load.
8. With --vector-bench, kai's vector index alone (in process: no HTTP, no embedding) on the
   same vectors and queries, pinned to SERVER_CPU: the ignored test `search_speed` of
   kai-knowledge, which also times the exact scan the index used before.

With --postgres URL, kai's database is that PostgreSQL database (dropped and made afresh for
each new server, with pgvector) and search runs inside it (full-text search and pgvector's
HNSW index). Chroma is then left out unless a Chroma target is asked for, the vector index
alone (8.) is replaced by the database's own time for kai's two search statements (EXPLAIN
ANALYZE, 200 queries × 3, in one psql session), and the backends serving kai's connections are
pinned to --db-cpu (by default the server's core; `none` leaves them where the scheduler puts
them) before each warm-up and round, their CPU time read from /proc beside kai's.

Prints a JSON summary on stdout.
"""

import argparse
import contextlib
import http.client
import json
import os
import random
import re
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
import urllib.request

import numpy as np

import kaictl

CHROMA_PREFIX = "/api/v2/tenants/default_tenant/databases/default_database"


def log(msg):
    print(f"[speed] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------ corpus

class Chain:
    """A word-bigram chain over the Lee background corpus."""

    def __init__(self):
        import gensim
        path = os.path.join(os.path.dirname(gensim.__file__), "test", "test_data",
                            "lee_background.cor")
        with open(path, encoding="latin-1") as f:
            words = f.read().split()
        self.next = {}
        for a, b in zip(words, words[1:]):
            self.next.setdefault(a, []).append(b)
        self.starts = [w for w in self.next if w[:1].isupper()]

    def paragraph(self, rng, n_words):
        w = rng.choice(self.starts)
        out = [w]
        while len(out) < n_words:
            nxt = self.next.get(w)
            w = rng.choice(nxt) if nxt else rng.choice(self.starts)
            out.append(w)
        text = " ".join(out)
        return text if text.endswith(".") else text + "."


def make_corpus(n_chunks, per_artifact, seed=1):
    chain = Chain()
    rng = random.Random(seed)
    artifacts = []
    for start in range(0, n_chunks, per_artifact):
        parts = []
        for c in range(start, min(start + per_artifact, n_chunks)):
            parts.append(f"## c{c:07d}\n\n{chain.paragraph(rng, rng.randint(24, 28))}\n")
        artifacts.append("\n".join(parts).encode("utf-8"))
    qrng = random.Random(seed + 1000)
    return artifacts, chain, qrng


# ------------------------------------------------------------------------------ helpers

def read_vectors(kai):
    """kai's stored chunks: ids, (item, heading) keys, vectors (N x d, float32)."""
    ids, keys, texts, vecs = [], [], [], []
    for cid, item, heading, text, blob in kai.read_chunks(only_embedded=True):
        ids.append(cid)
        keys.append((item, heading))
        texts.append(text)
        vecs.append(np.frombuffer(blob, dtype="<f4"))
    return ids, keys, texts, np.vstack(vecs).astype(np.float32)


def pct(values, p):
    values = sorted(values)
    if not values:
        return float("nan")
    k = (len(values) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def rss_kib(pid):
    vals = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                vals[line.split(":")[0]] = int(line.split()[1])
    return vals


def tree_rss_kib(pid):
    """VmRSS summed over a process and its children (chroma run may fork)."""
    total = rss_kib(pid).get("VmRSS", 0)
    try:
        out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
        for child in out.split():
            total += tree_rss_kib(int(child))
    except (FileNotFoundError, ProcessLookupError):
        pass
    return total


# ------------------------------------------------------------------------------ targets

class Step:
    """One HTTP request of a target's query: host, port, headers, body(query) and check(body),
    which returns what the next step needs (or None on a wrong answer)."""

    def __init__(self, host, port, headers, path, body, check):
        self.host, self.port, self.headers = host, int(port), headers
        self.path, self.body, self.check = path, body, check


class KaiTarget:
    def __init__(self, kai, mode):
        host, port = kai.base.replace("http://", "").split(":")
        self.name = f"kai {mode}"
        self.steps = [Step(host, port, kai.headers(), "/api/v1/search",
                           lambda q, _: json.dumps({"query": q[0], "mode": mode,
                                                    "limit": 10}).encode(),
                           lambda body: len(json.loads(body)["hits"]) > 0 or None)]


def chroma_step(port, collection_id, vector_of):
    return Step("127.0.0.1", port, {"Content-Type": "application/json"},
                f"{CHROMA_PREFIX}/collections/{collection_id}/query",
                lambda q, prev: json.dumps({"query_embeddings": [vector_of(q, prev)],
                                            "n_results": 10,
                                            "include": ["documents", "distances"]}).encode(),
                lambda body: len(json.loads(body)["ids"][0]) == 10 or None)


class ChromaTarget:
    """Chroma's query through its HTTP API, handed the query's vector."""

    def __init__(self, port, collection_id):
        self.name = "Chroma"
        self.steps = [chroma_step(port, collection_id, lambda q, _: q[1])]


class EmbedChromaTarget:
    """The query embedded first, by the same MiniLM through kai's /v1/embeddings (on the same
    core), then Chroma's query: what a Chroma client that embeds its queries waits for."""

    def __init__(self, kai, port, collection_id):
        host, kport = kai.base.replace("http://", "").split(":")
        self.name = "embed + Chroma"
        self.steps = [
            Step(host, kport, kai.headers(), "/v1/embeddings",
                 lambda q, _: json.dumps({"model": "local/minilm", "input": [q[0]]}).encode(),
                 lambda body: json.loads(body)["data"][0]["embedding"]),
            chroma_step(port, collection_id, lambda q, prev: prev),
        ]


def closed_loop(target, queries, clients, duration):
    """`clients` threads, each with a keep-alive connection per step, sending the next query
    as soon as the last answered; returns (latencies in ms, completed per second, errors)."""
    lat, errors = [], []
    lock = threading.Lock()
    start_evt = threading.Event()
    stop_at = [0.0]

    def connect(step):
        return http.client.HTTPConnection(step.host, step.port, timeout=60)

    def worker(offset):
        conns = [connect(step) for step in target.steps]
        mine = []
        i = offset
        start_evt.wait()
        while True:
            query = queries[i % len(queries)]
            i += clients
            t0 = time.perf_counter()
            if t0 >= stop_at[0]:
                break
            prev = None
            try:
                for n, step in enumerate(target.steps):
                    conns[n].request("POST", step.path, step.body(query, prev), step.headers)
                    resp = conns[n].getresponse()
                    data = resp.read()
                    prev = step.check(data) if resp.status == 200 else None
                    if prev is None:
                        with lock:
                            errors.append(f"{step.path}: {resp.status} {data[:200]!r}")
                        break
                else:
                    mine.append((time.perf_counter() - t0) * 1000)
            except (OSError, http.client.HTTPException) as err:
                with lock:
                    errors.append(repr(err))
                for c in conns:
                    c.close()
                conns = [connect(step) for step in target.steps]
        for c in conns:
            c.close()
        with lock:
            lat.extend(mine)

    threads = [threading.Thread(target=worker, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    t_start = time.perf_counter()
    stop_at[0] = t_start + duration
    start_evt.set()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t_start
    return lat, len(lat) / wall, errors


class DbWatch:
    """CPU time of the PostgreSQL backends serving kai, sampled every half second from a
    thread (backends come and go with kai's pool): the most each pid was seen to use."""

    def __init__(self, kai):
        self.kai, self.seen, self.stop_evt = kai, {}, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self):
        try:
            pids = self.kai.postgres.backend_pids()
        except kaictl.KaiError:
            return
        for pid in pids:
            self.seen[pid] = max(self.seen.get(pid, 0.0), kaictl.proc_cpu_seconds(pid))

    def _run(self):
        while not self.stop_evt.wait(0.5):
            self._sample()

    def __enter__(self):
        self._sample()
        self.base = dict(self.seen)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop_evt.set()
        self.thread.join()
        self._sample()

    def seconds(self):
        return sum(v - self.base.get(pid, 0.0) for pid, v in self.seen.items())


def pin_backends(kai, cpu):
    """Pins the PostgreSQL backends now serving kai to `cpu`; returns how many."""
    if not kai.postgres or cpu is None:
        return 0
    n = 0
    for pid in kai.postgres.backend_pids():
        try:
            os.sched_setaffinity(pid, {int(cpu)})
            n += 1
        except (ProcessLookupError, PermissionError):
            pass
    return n


def hnsw_sweep(pg, qvecs, exact_ids, efs):
    """Recall@10 and the database's own time of the HNSW query (limit 10, as kai sends it)
    at other `hnsw.ef_search` values (kai uses max(limit × 4, 40)), one psql session each:
    what a wider search would buy."""
    owner = pg.rows("SELECT owner_id FROM chunks LIMIT 1")[0][0]
    table = "vector_index_" + pg.rows("SELECT id FROM vector_indexes "
                                      "WHERE model = 'local/minilm'")[0][0]
    out = []
    for ef in efs:
        lines = [f"SET hnsw.ef_search = {ef};", "SET hnsw.iterative_scan = relaxed_order;",
                 "\\pset format unaligned", "\\pset tuples_only on"]
        for vec in qvecs:
            vtext = "[" + ",".join(repr(float(x)) for x in vec) + "]"
            sql = (f"SELECT chunk_id FROM {table} WHERE owner_id = '{owner}' "
                   f"ORDER BY embedding <=> '{vtext}'::vector LIMIT 10")
            lines.append("SELECT string_agg(chunk_id::text, ' ') FROM (" + sql + ") x;")
            lines.append("EXPLAIN (ANALYZE, TIMING OFF) " + sql + ";")
        text = subprocess.run([pg.psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d",
                               getattr(pg, "_db_admin", pg.url), "-f", "-"],
                              input="\n".join(lines) + "\n", capture_output=True, text=True,
                              check=True).stdout
        got = [l for l in text.splitlines() if re.fullmatch(r"[0-9 ]+", l.strip() or "x")]
        times = [float(m) for m in re.findall(r"Execution Time: ([0-9.]+) ms", text)]
        rec = [len({int(x) for x in g.split()} & truth) / 10 for g, truth in zip(got, exact_ids)]
        out.append({"ef_search": ef, "recall_at_10": float(np.mean(rec)) if rec else None,
                    "answers": len(rec), "p50_ms": pct(times, 50), "p99_ms": pct(times, 99)})
        log(f"  HNSW at ef_search {ef}: {out[-1]}")
    return out


def db_search_alone(pg, qtexts, qvecs, passes=3):
    """The database's own time (EXPLAIN ANALYZE's execution time, no planning, no client)
    for kai's two search statements as kai-store's search.rs sends them: the full-text query
    (an OR of the query's words, ts_rank_cd, limit 40: hybrid's depth for a limit of 10) and
    the HNSW query (limit 10, ef_search 40, iterative scan relaxed_order)."""
    owner = pg.rows("SELECT owner_id FROM chunks LIMIT 1")[0][0]
    table = "vector_index_" + pg.rows("SELECT id FROM vector_indexes "
                                      "WHERE model = 'local/minilm'")[0][0]
    hnsw = [r[0] for r in pg.rows("SELECT indexname FROM pg_indexes WHERE tablename = "
                                   f"'{table}' AND indexdef ILIKE '%USING hnsw%'")]
    lines = ["SET hnsw.ef_search = 40;", "SET hnsw.iterative_scan = relaxed_order;"]
    for _ in range(passes):
        for text, vec in zip(qtexts, qvecs):
            words = []
            for w in re.split(r"[^\w]+", text.lower()):
                if w and w not in words and not w.startswith("_"):
                    words.append(w)
            tsq = " | ".join(f"''{w}''" for w in words[:64])
            lines.append("EXPLAIN (ANALYZE, TIMING OFF) SELECT c.id, ts_rank_cd(c.search_text, q)::real "
                         f"AS score FROM chunks c, to_tsquery('english', '{tsq}') q WHERE c.owner_id = "
                         f"'{owner}' AND c.search_text @@ q ORDER BY score DESC, c.id LIMIT 40;")
            vtext = "[" + ",".join(repr(float(x)) for x in vec) + "]"
            lines.append(f"EXPLAIN (ANALYZE, TIMING OFF) SELECT chunk_id, (1 - (embedding <=> "
                         f"'{vtext}'::vector))::real AS score FROM {table} WHERE owner_id = "
                         f"'{owner}' ORDER BY embedding <=> '{vtext}'::vector LIMIT 10;")
    script = "\n".join(lines) + "\n"
    out = subprocess.run([pg.psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d",
                          getattr(pg, "_db_admin", pg.url), "-f", "-"],
                         input=script, capture_output=True, text=True, check=True).stdout
    times = [float(m) for m in re.findall(r"Execution Time: ([0-9.]+) ms", out)]
    kw, vec = times[0::2], times[1::2]
    return {"queries": len(qtexts), "passes": passes, "vector_table": table,
            "keyword_p50_ms": pct(kw, 50), "keyword_p99_ms": pct(kw, 99),
            "vector_p50_ms": pct(vec, 50), "vector_p99_ms": pct(vec, 99),
            "vector_plans_using_hnsw": sum(
                1 for plan in out.split("Execution Time")
                if any(f"Index Scan using {ix} " in plan for ix in hnsw)),
            "hnsw_indexes": hnsw}


def vector_search_alone(binary, cpu, work, vecs, qvecs):
    """kai's vector index by itself (VectorIndex::search, in process, no HTTP and no
    embedding) on the same vectors and queries: the ignored test `search_speed` of
    kai-knowledge, pinned to the server's core."""
    vpath, qpath = os.path.join(work, "vectors.f32"), os.path.join(work, "queries.f32")
    vecs.astype("<f4").tofile(vpath)
    qvecs.astype("<f4").tofile(qpath)
    env = dict(os.environ, KAI_BENCH_VECTORS=vpath, KAI_BENCH_QUERIES=qpath,
               KAI_BENCH_DIMS=str(vecs.shape[1]))
    out = subprocess.run(["taskset", "-c", cpu, binary, "vectors::tests::search_speed",
                          "--exact", "--ignored", "--nocapture"],
                         env=env, capture_output=True, text=True, check=True).stdout
    line = next(l for l in out.splitlines() if "{" in l)
    return json.loads(line[line.index("{"):])


def start_chroma(args, cleanup, res, ids, vecs, texts, n):
    """`chroma run` on the server's core, given kai's vectors and chunk texts."""
    chroma_port = free_port()
    chroma_dir = os.path.join(args.work, "chroma")
    chroma_log = open(os.path.join(args.work, "chroma.log"), "wb")
    chroma = subprocess.Popen(["taskset", "-c", args.server_cpu, args.chroma, "run",
                               "--path", chroma_dir, "--port", str(chroma_port)],
                              stdout=chroma_log, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL)
    cleanup.append(chroma)
    base = f"http://127.0.0.1:{chroma_port}"
    deadline = time.time() + 120
    while True:
        try:
            urllib.request.urlopen(base + "/api/v2/heartbeat", timeout=2).read()
            break
        except OSError:
            if chroma.poll() is not None or time.time() > deadline:
                raise RuntimeError("chroma run did not start; see chroma.log")
            time.sleep(0.2)
    import chromadb
    client = chromadb.HttpClient(host="127.0.0.1", port=chroma_port)
    res["chroma_version"] = chromadb.__version__
    coll = client.create_collection("bench", metadata={"hnsw:space": "cosine"})
    batch = min(client.get_max_batch_size(), 5000)
    c0 = time.time()
    for at in range(0, n, batch):
        coll.add(ids=[str(i) for i in ids[at:at + batch]],
                 embeddings=vecs[at:at + batch],
                 documents=texts[at:at + batch])
    res["chroma_add_seconds"] = time.time() - c0
    res["chroma_count"] = coll.count()
    log(f"Chroma: {res['chroma_count']} vectors added in {res['chroma_add_seconds']:.1f} s")
    return chroma_port, coll


# ------------------------------------------------------------------------------ main

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kai", required=True)
    ap.add_argument("--models", required=True)
    ap.add_argument("--chroma", required=True, help="the chroma CLI")
    ap.add_argument("--work", required=True)
    ap.add_argument("--chunks", type=int, default=100_000)
    ap.add_argument("--per-artifact", type=int, default=100)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--embed-sample", type=int, default=3200)
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--warmup", type=float, default=3)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--clients", default="1 8")
    ap.add_argument("--targets", default="kai-hybrid chroma")
    ap.add_argument("--server-cpu", default="0")
    ap.add_argument("--load-cpu", type=int, default=1)
    ap.add_argument("--skip-keyword-only", action="store_true")
    ap.add_argument("--keyword-only-alone", action="store_true",
                    help="stop after indexing without the model (no model, no load)")
    ap.add_argument("--vector-bench", help="kai-knowledge's test binary, for search_speed")
    ap.add_argument("--postgres", help="kai's database: postgres://ROLE:PASSWORD@HOST:PORT/DB, "
                    "dropped and made afresh; search runs inside it")
    ap.add_argument("--postgres-admin", help="a superuser URL on that server (default: user "
                    "postgres, database postgres)")
    ap.add_argument("--psql", default="psql")
    ap.add_argument("--ef-sweep", default="40 100 200 400",
                    help="hnsw.ef_search values for the HNSW recall sweep (PostgreSQL)")
    ap.add_argument("--db-cpu", default=None, help="the core for PostgreSQL's backends serving "
                    "kai (default: --server-cpu; `none`: not pinned)")
    args = ap.parse_args()
    pg = kaictl.Postgres(args.postgres, args.psql, args.postgres_admin) if args.postgres else None
    db_cpu = None
    if pg:
        db_cpu = args.server_cpu if args.db_cpu is None else args.db_cpu
        db_cpu = None if db_cpu == "none" else db_cpu

    chunk_env = {"KAI_KNOWLEDGE_CHUNK_TOKENS": "64", "KAI_KNOWLEDGE_CHUNK_OVERLAP": "0"}
    res = {"chunks_requested": args.chunks, "per_artifact": args.per_artifact,
           "queries": args.queries, "duration_s": args.duration, "rounds": args.rounds,
           "server_cpu": args.server_cpu, "load_cpu": args.load_cpu,
           "database": "postgres" if pg else "sqlite", "db_cpu": db_cpu}
    t = time.time()
    artifacts, chain, qrng = make_corpus(args.chunks, args.per_artifact)
    res["corpus_bytes"] = sum(len(a) for a in artifacts)
    log(f"corpus: {len(artifacts)} artifacts, {res['corpus_bytes'] / 1e6:.1f} MB "
        f"({time.time() - t:.1f} s to generate)")
    os.makedirs(args.work, exist_ok=True)
    cleanup = []

    def upload_all(kai):
        t0 = time.time()
        for n, data in enumerate(artifacts):
            kai.upload(f"part-{n:05d}.md", data)
        return t0, time.time() - t0

    def progress(st):
        log(f"  status: {st}")

    try:
        # -------------------------------------------------- indexing, no embedding model
        if not args.skip_keyword_only:
            env = dict(chunk_env, KAI_KNOWLEDGE_EMBEDDING_MODEL="local/absent")
            kai = kaictl.Kai(args.kai, args.models, env=env,
                             data_dir=os.path.join(args.work, "kai-keyword-only"), postgres=pg)
            cleanup.append(kai)
            kai.start()
            log("indexing without an embedding model (keyword_only)")
            cpu0 = kai.cpu_seconds()
            with DbWatch(kai) if pg else contextlib.nullcontext() as watch:
                t0, up = upload_all(kai)
                st = kai.wait_indexed(len(artifacts), allow_keyword_only=True, progress=progress)
                wall = time.time() - t0
            n = kai.count_chunks()
            res["keyword_only"] = {"chunks": n, "seconds": wall, "upload_seconds": up,
                                   "chunks_per_s": n / wall,
                                   "server_cpu_s": kai.cpu_seconds() - cpu0,
                                   "db_cpu_s": watch.seconds() if pg else None,
                                   "status": st}
            log(f"  {n} chunks keyword_only in {wall:.1f} s ({n / wall:.0f}/s)")
            kai.remove()
            cleanup.remove(kai)
            if args.keyword_only_alone:
                json.dump(res, sys.stdout, indent=1)
                print()
                return

        # -------------------------------------------------- indexing with the model
        kai = kaictl.Kai(args.kai, args.models, env=chunk_env,
                         data_dir=os.path.join(args.work, "kai"), postgres=pg)
        cleanup.append(kai)
        kai.start()
        log("indexing with local/minilm")
        cpu0 = kai.cpu_seconds()
        with DbWatch(kai) if pg else contextlib.nullcontext() as watch:
            t0, up = upload_all(kai)
            st = kai.wait_indexed(len(artifacts), progress=progress)
            wall = time.time() - t0
        cpu = kai.cpu_seconds() - cpu0
        res["indexing_db_cpu_s"] = watch.seconds() if pg else None
        if pg:
            res["postgres"] = pg.version()
            res["search_index"] = kai.status().get("search_index")
            res["db_size_bytes"] = int(pg.rows("SELECT pg_database_size(current_database())")[0][0])
        ids, keys, texts, vecs = read_vectors(kai)
        n = len(ids)
        res["chunks"] = n
        res["distinct_keys"] = len(set(keys))
        log(f"  {n} chunks indexed in {wall:.1f} s ({n / wall:.0f}/s); "
            f"{len(set(keys))} distinct (item, heading)")
        res["rss_after_indexing_kib"] = kai.rss_kib()
        # The model's own time: the same texts, the indexer's batches of 32, same server.
        sample_rng = random.Random(7)
        sample = [texts[i] for i in sample_rng.sample(range(n), min(args.embed_sample, n))]
        e0 = time.time()
        kai.embed(sample, batch=32)
        e_wall = time.time() - e0
        embed_rate = len(sample) / e_wall
        model_time = n / embed_rate
        res["indexing"] = {"chunks": n, "seconds": wall, "upload_seconds": up,
                           "chunks_per_s": n / wall, "server_cpu_s": cpu,
                           "embed_sample": len(sample), "embed_chunks_per_s": embed_rate,
                           "model_seconds_est": model_time,
                           "without_model_chunks_per_s":
                               n / (wall - model_time) if wall > model_time else None}
        log(f"  embedding alone: {embed_rate:.0f} chunks/s -> model ~{model_time:.0f} s of "
            f"{wall:.0f} s")

        # -------------------------------------------------- restart pinned
        kai.stop()
        kai.cpus = args.server_cpu
        kai.start(create_user=False)
        res["rss_after_restart_kib"] = kai.rss_kib()
        log(f"kai serve restarted on CPU {args.server_cpu}: {res['rss_after_restart_kib']}")

        # -------------------------------------------------- Chroma with the same vectors
        use_chroma = any(t in ("chroma", "embed-chroma") for t in args.targets.split())
        if use_chroma:
            chroma_port, coll = start_chroma(args, cleanup, res, ids, vecs, texts, n)
        else:
            chroma_port = coll = None

        # -------------------------------------------------- queries, exact answers, recall
        qtexts = [chain.paragraph(qrng, qrng.randint(8, 16)) for _ in range(args.queries)]
        # -------------------------------------------------- queries, exact answers, recall
        qtexts = [chain.paragraph(qrng, qrng.randint(8, 16)) for _ in range(args.queries)]
        qvecs = np.array(kai.embed(qtexts), dtype=np.float32)
        norm = vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
        qn = qvecs / np.linalg.norm(qvecs, axis=1, keepdims=True)
        exact = np.argsort(-(qn @ norm.T), axis=1, kind="stable")[:, :10]
        key_index = {k: i for i, k in enumerate(keys)}
        kai_rec, chroma_rec, unknown = [], [], 0
        for q in range(args.queries):
            # kai's hits name an (artifact, heading), not a chunk id: compared as such (the
            # rare section cut in two shares its key with its other half).
            truth_keys = {keys[i] for i in exact[q]}
            hits = kai.search(qtexts[q], "semantic", 10)["hits"]
            got = {(h["item_id"], h["heading"]) for h in hits}
            unknown += len([k for k in got if k not in key_index])
            kai_rec.append(len(got & truth_keys) / 10)
            truth = {ids[i] for i in exact[q]}
            if coll is not None:
                r = coll.query(query_embeddings=[qvecs[q]], n_results=10, include=[])
                chroma_rec.append(len({int(x) for x in r["ids"][0]} & truth) / 10)
        res["recall"] = {"kai semantic": float(np.mean(kai_rec)),
                         "Chroma": float(np.mean(chroma_rec)) if chroma_rec else None,
                         "kai_unmapped_hits": unknown}
        log(f"recall@10: {res['recall']}")
        if pg:
            res["db_search_alone"] = db_search_alone(pg, qtexts, qvecs)
            if args.ef_sweep.split():
                res["hnsw_sweep"] = hnsw_sweep(pg, qvecs, [{ids[i] for i in exact[q]}
                                                           for q in range(args.queries)],
                                               [int(e) for e in args.ef_sweep.split()])
            log(f"the database's own search time: {res['db_search_alone']}")
        elif args.vector_bench:
            res["vector_alone"] = vector_search_alone(args.vector_bench, args.server_cpu,
                                                      args.work, vecs, qvecs)
            log(f"kai's vector index alone: {res['vector_alone']}")

        # -------------------------------------------------- load
        os.sched_setaffinity(0, {args.load_cpu})
        coll_id = str(coll.id) if coll is not None else None
        targets = []
        for name in args.targets.split():
            if name.startswith("kai-"):
                targets.append(KaiTarget(kai, name[4:]))
            elif name == "chroma":
                targets.append(ChromaTarget(chroma_port, coll_id))
            elif name == "embed-chroma":
                targets.append(EmbedChromaTarget(kai, chroma_port, coll_id))
        queries = list(zip(qtexts, [v.tolist() for v in qvecs]))
        runs = []
        for clients in [int(c) for c in args.clients.split()]:
            for tgt in targets:
                pin_backends(kai, db_cpu)
                lat, qps, errs = closed_loop(tgt, queries, clients, args.warmup)
                if errs:
                    raise RuntimeError(f"{tgt.name} warm-up errors: {errs[:3]}")
            for rnd in range(args.rounds):
                order = targets[rnd % len(targets):] + targets[:rnd % len(targets)]
                for tgt in order:
                    pinned = pin_backends(kai, db_cpu)
                    kcpu0 = kai.cpu_seconds()
                    with DbWatch(kai) if pg else contextlib.nullcontext() as watch:
                        lat, qps, errs = closed_loop(tgt, queries, clients, args.duration)
                    if errs:
                        raise RuntimeError(f"{tgt.name}: {len(errs)} errors, e.g. {errs[:3]}")
                    row = {"target": tgt.name, "clients": clients, "round": rnd + 1,
                           "qps": qps, "p50": pct(lat, 50), "p99": pct(lat, 99),
                           "n": len(lat)}
                    if len(lat):
                        row["kai_cpu_ms_per_q"] = (kai.cpu_seconds() - kcpu0) * 1000 / len(lat)
                        if pg:
                            row["db_cpu_ms_per_q"] = watch.seconds() * 1000 / len(lat)
                            row["db_backends_pinned"] = pinned
                    runs.append(row)
                    log(f"  {tgt.name} x{clients} round {rnd + 1}: {qps:.0f} q/s, "
                        f"p50 {row['p50']:.2f} ms, p99 {row['p99']:.2f} ms")
                    time.sleep(1)
        res["runs"] = runs
        res["rss_after_load_kib"] = kai.rss_kib()
        if use_chroma:
            res["chroma_rss_after_load_kib"] = tree_rss_kib(cleanup[-1].pid)
        log(f"kai serve after the load: {res['rss_after_load_kib']}; "
            f"Chroma: {res.get('chroma_rss_after_load_kib')} KiB")
    finally:
        for thing in reversed(cleanup):
            if isinstance(thing, kaictl.Kai):
                thing.remove()
            else:
                thing.terminate()
                try:
                    thing.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    thing.kill()
    json.dump(res, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
