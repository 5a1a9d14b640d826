"""Part A: retrieval quality on the Lee corpus, kai against Open WebUI's hybrid recipe.

The Lee corpus (gensim's test data: lee.cor, 50 news documents, and similarities0-1.txt, the
mean human similarity rating of every pair, 1 to 5 scaled to 0.2 to 1): every document is
uploaded to a fresh `kai serve` as one artifact, then each document's text is the query, the
document itself is left out of its own ranking, and the first ten other documents are scored
with nDCG@10, the ratings being graded relevance.

Gains: `(rating - 0.2) / 0.8`, so "highly unrelated" (the lowest rating) gains nothing and
an identical document gains 1 (the headline column); the raw 0.2-1 rating as gain is the second
column (it rewards every document returned, so every method scores high).

Methods, each returning documents best first (hits are chunks: the first hit of a document
counts, later ones are dropped):

- kai keyword, semantic, hybrid (rrf) and hybrid (weighted) through `POST /api/v1/search`,
  then, with the server restarted on the same data under other `knowledge.keyword_weight_percent`
  and `knowledge.rrf_k` values, both fusions again (the sweep).
- Peers, over the very chunks kai made (their text read from kai's database) and kai's vectors
  for them (`POST /v1/embeddings`, model `local/minilm`, checked equal to what kai stored):
  - Open WebUI's hybrid recipe (backend/open_webui/retrieval/utils.py,
    query_doc_with_hybrid_search): LangChain's `BM25Retriever.from_texts` (rank-bm25's
    BM25Okapi on whitespace tokens) and a vector retriever (cosine), each returning `top_k`
    chunks, merged by LangChain's `EnsembleRetriever` (weighted reciprocal rank fusion, c = 60)
    with weights `[hybrid_bm25_weight, 1 - hybrid_bm25_weight]`, 0.5 by default.
  - The same with Open WebUI's last step when no reranking model is set: its RerankCompressor
    re-sorts the ensemble's documents by cosine similarity to the query.
  - LangChain's BM25Retriever alone; rank-bm25's BM25Okapi on lower-cased word tokens; exact
    cosine (numpy) over the same vectors (a check on kai's semantic ranking).

With --postgres URL, kai's database is that PostgreSQL database (dropped and made afresh, with
pgvector) and its search runs inside it: keyword is PostgreSQL's full-text search (ts_rank_cd
over an OR of the query's words), semantic pgvector's HNSW index. The peers' figures do not
depend on it (same chunks, same vectors) and are printed again as a check.

Prints a JSON summary on stdout; run.sh turns it into Markdown.
"""

import argparse
import json
import math
import os
import re
import sys
import time
import warnings

import numpy as np

import kaictl

warnings.filterwarnings("ignore")

K = 10


def log(msg):
    print(f"[quality] {msg}", file=sys.stderr, flush=True)


def lee_paths():
    import gensim
    base = os.path.join(os.path.dirname(gensim.__file__), "test", "test_data")
    return os.path.join(base, "lee.cor"), os.path.join(base, "similarities0-1.txt")


def load_lee():
    cor, sims = lee_paths()
    with open(cor, encoding="latin-1") as f:
        docs = [line.strip() for line in f if line.strip()]
    matrix = np.loadtxt(sims)
    # The file holds the upper triangle; the lower is 0.
    matrix = np.maximum(matrix, matrix.T)
    assert len(docs) == 50 and matrix.shape == (50, 50), (len(docs), matrix.shape)
    return docs, matrix


def ndcg(ranking, query, gains):
    """nDCG@K of `ranking` (document indices, best first, the query left out)."""
    ranking = [d for d in ranking if d != query][:K]
    dcg = sum(gains[query][d] / math.log2(r + 2) for r, d in enumerate(ranking))
    ideal = sorted((gains[query][d] for d in range(len(gains)) if d != query), reverse=True)[:K]
    idcg = sum(g / math.log2(r + 2) for r, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def dedupe(doc_ids):
    seen, out = set(), []
    for d in doc_ids:
        if d not in seen:
            seen.add(d)
            out.append(d)
    return out


def score_all(rankings, gains_sets):
    """Mean nDCG@K per gain set, over all queries."""
    return {name: float(np.mean([ndcg(rankings[q], q, gains) for q in range(len(rankings))]))
            for name, gains in gains_sets.items()}


def kai_rankings(kai, docs, item_doc, mode, fusion, limit):
    out = []
    for q, text in enumerate(docs):
        hits = kai.search(text, mode, limit, fusion)["hits"]
        out.append(dedupe(item_doc[h["item_id"]] for h in hits))
    return out


def read_chunks(kai):
    """kai's chunks of the current versions: (id, item_id, heading, text, stored vector)."""
    out = []
    for cid, item, heading, text, blob in kai.read_chunks():
        vec = np.frombuffer(blob, dtype="<f4").astype(np.float32) if blob else None
        out.append((cid, item, heading, text, vec))
    return out


def embedding_text(heading, text):
    # What kai embeds for a chunk (kai-knowledge service.rs, embedding_text).
    return f"{heading}\n\n{text}" if heading else text


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kai", required=True)
    ap.add_argument("--models", required=True)
    ap.add_argument("--limit", type=int, default=30, help="hits asked of kai per query")
    ap.add_argument("--top-k", type=int, default=20, help="Open WebUI's top_k for the peer")
    ap.add_argument("--bm25-weight", type=float, default=0.5, help="Open WebUI's hybrid_bm25_weight")
    ap.add_argument("--sweep-weights", default="0 10 20 30 40 50 60 70 80 90 100")
    ap.add_argument("--sweep-rrf-k", default="60 10")
    ap.add_argument("--cpus", default=None)
    ap.add_argument("--postgres", help="kai's database: postgres://ROLE:PASSWORD@HOST:PORT/DB, "
                    "dropped and made afresh; search runs inside it")
    ap.add_argument("--postgres-admin", help="a superuser URL on that server (default: user "
                    "postgres, database postgres)")
    ap.add_argument("--psql", default="psql")
    args = ap.parse_args()
    pg = kaictl.Postgres(args.postgres, args.psql, args.postgres_admin) if args.postgres else None

    docs, sims = load_lee()
    gains_sets = {
        "rescaled": np.clip((sims - 0.2) / 0.8, 0.0, 1.0),
        "raw": sims,
    }
    results = {"methods": [], "sweep": [], "notes": {},
               "database": "postgres" if pg else "sqlite"}

    kai = kaictl.Kai(args.kai, args.models, cpus=args.cpus, postgres=pg)
    try:
        kai.start()
        log(f"kai serve at {kai.base}; uploading {len(docs)} documents")
        item_doc = {}
        t0 = time.time()
        for i, text in enumerate(docs):
            art = kai.upload(f"lee-{i:02d}.txt", (text + "\n").encode("utf-8"))
            item_doc[art["id"]] = i
        st = kai.wait_indexed(len(docs))
        log(f"indexed in {time.time() - t0:.1f} s: {st}")
        if pg:
            results["notes"]["postgres"] = pg.version()
        results["notes"]["search_index"] = kai.get_json("/api/v1/knowledge/status").get("search_index")

        chunks = read_chunks(kai)
        per_doc = {}
        for _, item, _, _, _ in chunks:
            per_doc[item_doc[item]] = per_doc.get(item_doc[item], 0) + 1
        results["notes"]["chunks"] = len(chunks)
        results["notes"]["max_chunks_per_doc"] = max(per_doc.values())
        results["notes"]["docs_with_several_chunks"] = sum(1 for v in per_doc.values() if v > 1)

        if pg:
            kw_label = "kai keyword (PostgreSQL full-text, ts_rank_cd)"
            sem_label = "kai semantic (pgvector HNSW)"
        else:
            kw_label = "kai keyword (BM25, tantivy)"
            sem_label = "kai semantic (8-bit scan, exact re-rank)"
        for label, mode, fusion in [(kw_label, "keyword", None),
                                    (sem_label, "semantic", None),
                                    ("kai hybrid, rrf", "hybrid", "rrf"),
                                    ("kai hybrid, weighted (default)", "hybrid", "weighted")]:
            t = time.time()
            rankings = kai_rankings(kai, docs, item_doc, mode, fusion, args.limit)
            scores = score_all(rankings, gains_sets)
            log(f"{label}: {scores} ({time.time() - t:.1f} s)")
            short = sum(1 for q, r in enumerate(rankings) if len([d for d in r if d != q]) < K)
            results["methods"].append({"method": label, "side": "kai", **scores, "short": short})

        # The peers: kai's own chunks, and vectors for them from /v1/embeddings.
        texts = [embedding_text(h, t) for _, _, h, t, _ in chunks]
        chunk_doc = [item_doc[item] for _, item, _, _, _ in chunks]
        vecs = np.array(kai.embed(texts), dtype=np.float32)
        stored = np.array([v for *_, v in chunks], dtype=np.float32)
        results["notes"]["max_abs_diff_vs_stored"] = float(np.abs(vecs - stored).max())
        log(f"/v1/embeddings vs stored vectors: max |diff| {results['notes']['max_abs_diff_vs_stored']:.2e}")
        qvecs = np.array(kai.embed(docs), dtype=np.float32)
        vnorm = vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
        qnorm = qvecs / np.linalg.norm(qvecs, axis=1, keepdims=True)

        # Exact cosine over the same vectors.
        cos = qnorm @ vnorm.T
        rankings = [dedupe(chunk_doc[c] for c in np.argsort(-cos[q], kind="stable"))
                    for q in range(len(docs))]
        results["methods"].append({"method": "exact cosine, numpy (same vectors)", "side": "check",
                                   **score_all(rankings, gains_sets)})

        from langchain_community.retrievers import BM25Retriever
        from langchain_classic.retrievers import EnsembleRetriever
        from langchain_core.callbacks import CallbackManagerForRetrieverRun
        from langchain_core.documents import Document
        from langchain_core.retrievers import BaseRetriever
        from rank_bm25 import BM25Okapi

        metadatas = [{"doc": d, "chunk": n} for n, d in enumerate(chunk_doc)]
        query_vec = {docs[q]: qnorm[q] for q in range(len(docs))}

        class VectorSearchRetriever(BaseRetriever):
            """Open WebUI's VectorSearchRetriever, the vector database being exact cosine."""
            top_k: int

            def _get_relevant_documents(self, query, *, run_manager: CallbackManagerForRetrieverRun):
                sims_ = vnorm @ query_vec[query]
                order = np.argsort(-sims_, kind="stable")[: self.top_k]
                return [Document(page_content=texts[c], metadata=dict(metadatas[c])) for c in order]

        bm25 = BM25Retriever.from_texts(texts=texts, metadatas=metadatas)
        bm25.k = args.top_k
        vector = VectorSearchRetriever(top_k=args.top_k)
        w = args.bm25_weight
        ensemble = EnsembleRetriever(retrievers=[bm25, vector], weights=[w, 1.0 - w])

        owui, owui_cos, lc_bm25 = [], [], []
        for q, text in enumerate(docs):
            fused = ensemble.invoke(text)
            owui.append(dedupe(d.metadata["doc"] for d in fused))
            # Open WebUI's RerankCompressor without a reranking model: cosine of query and docs.
            reranked = sorted(fused, key=lambda d: -float(vnorm[d.metadata["chunk"]] @ qnorm[q]))
            owui_cos.append(dedupe(d.metadata["doc"] for d in reranked))
            lc_bm25.append(dedupe(d.metadata["doc"] for d in bm25.invoke(text)))
        results["methods"].append({"method": f"Open WebUI hybrid: LangChain BM25Retriever + vector, EnsembleRetriever (weighted RRF, weights {w}/{1 - w:g}, top_k {args.top_k})",
                                   "side": "peer", **score_all(owui, gains_sets)})
        results["methods"].append({"method": "the same, re-sorted by cosine (Open WebUI without a reranking model)",
                                   "side": "peer", **score_all(owui_cos, gains_sets)})
        results["methods"].append({"method": f"LangChain BM25Retriever alone (rank-bm25 BM25Okapi, whitespace tokens, k {args.top_k})",
                                   "side": "peer", **score_all(lc_bm25, gains_sets)})
        tokenized = [re.findall(r"\w+", t.lower()) for t in texts]
        okapi = BM25Okapi(tokenized)
        rb = []
        for text in docs:
            s = okapi.get_scores(re.findall(r"\w+", text.lower()))
            rb.append(dedupe(chunk_doc[c] for c in np.argsort(-s, kind="stable")))
        results["methods"].append({"method": "rank-bm25 BM25Okapi alone, lower-cased word tokens",
                                   "side": "peer", **score_all(rb, gains_sets)})

        # The fusion sweep: the same data, the server restarted with other settings.
        weights = [int(x) for x in args.sweep_weights.split()]
        rrf_ks = [int(x) for x in args.sweep_rrf_k.split()]
        for rrf_k in rrf_ks:
            for weight in weights:
                kai.stop()
                kai.extra_env = {"KAI_KNOWLEDGE_KEYWORD_WEIGHT_PERCENT": str(weight),
                                 "KAI_KNOWLEDGE_RRF_K": str(rrf_k)}
                kai.start(create_user=False)
                row = {"keyword_weight_percent": weight, "rrf_k": rrf_k}
                for fusion in ("rrf", "weighted"):
                    if fusion == "weighted" and rrf_k != rrf_ks[0]:
                        continue  # rrf_k does not change weighted fusion
                    rankings = kai_rankings(kai, docs, item_doc, "hybrid", fusion, args.limit)
                    row[fusion] = score_all(rankings, gains_sets)
                log(f"sweep {row}")
                results["sweep"].append(row)
    finally:
        kai.remove()
    json.dump(results, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
