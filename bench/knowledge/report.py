"""Turns quality.py's and speed.py's JSON into the Markdown that docs/BENCHMARKS.md quotes.

    report.py [--quality FILE] [--speed FILE]
"""

import argparse
import json
import statistics


def f3(x):
    return f"{x:.3f}"


def where(d):
    if d.get("database") == "postgres":
        pgv = d.get("postgres") or d.get("notes", {}).get("postgres")
        ver = f" (PostgreSQL {pgv[0]}, pgvector {pgv[1]})" if pgv else ""
        return f"kai on PostgreSQL, search in the database{ver}"
    return "kai on SQLite, embedded indexes"


def quality(q):
    out = [f"**Quality: nDCG@10 on the Lee corpus, {where(q)}** (50 documents, each the query for "
           "the other 49; gain = (rating - 0.2) / 0.8, raw rating in the second column)", "",
           "| method | nDCG@10 | nDCG@10, raw gain |", "| --- | ---: | ---: |"]
    for m in q["methods"]:
        out.append(f"| {m['method']} | {f3(m['rescaled'])} | {f3(m['raw'])} |")
    by = {m["method"]: m["rescaled"] for m in q["methods"]}
    kw = next(v for k, v in by.items() if k.startswith("kai keyword"))
    sem = next(v for k, v in by.items() if k.startswith("kai semantic"))
    better = max(kw, sem)
    out.append("")
    for k, v in by.items():
        if k.startswith("kai hybrid"):
            verdict = "meets" if v >= better else "**misses**"
            out.append(f"- {k}: {f3(v)} against the better of keyword and semantic, {f3(better)}: "
                       f"{verdict} the target")
    n = q["notes"]
    out.append(f"- {n['chunks']} chunks for 50 documents ({n['docs_with_several_chunks']} documents "
               f"in more than one); vectors from `/v1/embeddings` against those kai stored: max "
               f"difference {n['max_abs_diff_vs_stored']:.1e}")
    if q.get("sweep"):
        out += ["", "**Hybrid by setting** (server restarted on the same data; nDCG@10, rescaled gain)",
                "", "| keyword_weight_percent | rrf_k | rrf | weighted |", "| ---: | ---: | ---: | ---: |"]
        for row in q["sweep"]:
            w = f3(row["weighted"]["rescaled"]) if "weighted" in row else "(same)"
            out.append(f"| {row['keyword_weight_percent']} | {row['rrf_k']} | "
                       f"{f3(row['rrf']['rescaled'])} | {w} |")
        best = max(((row["rrf"]["rescaled"], f"rrf, keyword weight {row['keyword_weight_percent']}%, rrf_k {row['rrf_k']}")
                    for row in q["sweep"]), default=None)
        bestw = max(((row["weighted"]["rescaled"], f"weighted, keyword weight {row['keyword_weight_percent']}%")
                     for row in q["sweep"] if "weighted" in row), default=None)
        out.append("")
        out.append(f"- Best rrf: {best[1]} ({f3(best[0])}); best weighted: {bestw[1]} ({f3(bestw[0])})")
    return out


def speed(s):
    out = []
    kib = lambda v: f"{v / 1024:.0f} MiB"
    if "runs" not in s and "keyword_only" in s:
        ko = s["keyword_only"]
        return [f"**Indexing with no embedding model at {ko['chunks']:,} chunks, {where(s)}**: "
                f"{ko['seconds']:.1f} s = {ko['chunks_per_s']:.0f} chunks/s (target ≥ 2,000), "
                f"{ko['server_cpu_s']:.0f} s of server CPU"
                + (f", {ko['db_cpu_s']:.0f} s of PostgreSQL backend CPU"
                   if ko.get("db_cpu_s") is not None else "")]
    out.append(f"**Speed at {s['chunks']:,} chunks, {where(s)}** ({s['chunks_requested']:,} sections in "
               f"{s['chunks_requested'] // s['per_artifact']:,} artifacts; {s['distinct_keys']:,} "
               f"distinct (artifact, heading); {s['queries']} queries; servers on CPU "
               f"{s['server_cpu']}, load on CPU {s['load_cpu']}; {s['rounds']} rounds of "
               f"{s['duration_s']:g} s, alternating; medians across rounds)")
    pg = s.get("database") == "postgres"
    if pg:
        out[-1] = out[-1][:-1] + (f"; PostgreSQL's backends serving kai pinned to CPU {s['db_cpu']})"
                                  if s.get("db_cpu") is not None else "; PostgreSQL not pinned)")
    out += ["", "| target | clients | queries/s | p50 ms | p99 ms | CPU ms/query, kai + PostgreSQL "
            "| per round (q/s, p99 ms) |", "| --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    med = {}
    for key in sorted({(r["target"], r["clients"]) for r in s["runs"]}, key=lambda k: (k[1], k[0])):
        rows = [r for r in s["runs"] if (r["target"], r["clients"]) == key]
        m = {x: statistics.median(r[x] for r in rows) for x in ("qps", "p50", "p99")}
        med[key] = m
        per = "; ".join(f"{r['qps']:.0f}, {r['p99']:.1f}" for r in rows)
        cpu = ""
        if all("kai_cpu_ms_per_q" in r for r in rows):
            cpu = f"{statistics.median(r['kai_cpu_ms_per_q'] for r in rows):.2f}"
            if all("db_cpu_ms_per_q" in r for r in rows):
                cpu += f" + {statistics.median(r['db_cpu_ms_per_q'] for r in rows):.2f}"
        out.append(f"| {key[0]} | {key[1]} | {m['qps']:.0f} | {m['p50']:.2f} | {m['p99']:.2f} | {cpu} | {per} |")
    out.append("")
    for c in sorted({k[1] for k in med}):
        for mine, theirs in [("kai hybrid", "Chroma"), ("kai semantic", "Chroma"),
                             ("kai hybrid", "embed + Chroma"), ("kai semantic", "embed + Chroma")]:
            kai, ch = med.get((mine, c)), med.get((theirs, c))
            if kai and ch:
                out.append(f"- {c} client(s): {mine} / {theirs} queries/s = "
                           f"{kai['qps'] / ch['qps']:.2f}× (target ≥ 5×)")
    k1 = med.get(("kai hybrid", 1))
    if k1:
        out.append(f"- kai hybrid p99 at 1 client, one core, query embedding included: "
                   f"{k1['p99']:.1f} ms (target < 30 ms)")
    r = s["recall"]
    chroma_recall = f", Chroma {f3(r['Chroma'])}" if r.get("Chroma") is not None else ""
    out.append(f"- recall@10 against exact search (numpy): kai semantic "
               f"{'(pgvector HNSW) ' if pg else ''}{f3(r['kai semantic'])}{chroma_recall} "
               f"(target ≥ 0.95)")
    db = s.get("db_search_alone")
    if db:
        out.append(f"- The database's own time for kai's search statements (EXPLAIN ANALYZE "
                   f"execution time, {db['queries']} queries × {db['passes']}, not pinned): "
                   f"full-text (ts_rank_cd, limit 40) p50 {db['keyword_p50_ms']:.2f} ms, p99 "
                   f"{db['keyword_p99_ms']:.2f} ms; HNSW (limit 10, ef_search 40) p50 "
                   f"{db['vector_p50_ms']:.2f} ms, p99 {db['vector_p99_ms']:.2f} ms "
                   f"({db.get('vector_plans_using_hnsw', '?')} of "
                   f"{db['queries'] * db['passes']} plans through the HNSW index)")
    va = s.get("vector_alone")
    if va:
        out.append(f"- kai's vector index alone (in process, no HTTP or embedding, one core, "
                   f"{va['vectors']:,} vectors, {va['queries']} queries × 5): p50 "
                   f"{va['p50_ms_limit10']:.2f} ms, p99 {va['p99_ms_limit10']:.2f} ms at limit 10 "
                   f"({va['p50_ms_limit40']:.2f} / {va['p99_ms_limit40']:.2f} ms at hybrid's depth "
                   f"of 40); the exact float scan it replaced: {va['exact_p50_ms']:.2f} / "
                   f"{va['exact_p99_ms']:.2f} ms; recall@10 {f3(va['recall_at_10'])}; "
                   f"{va['add_per_s']:,.0f} vectors/s added (log appends and the 8-bit copy)")
    if s.get("hnsw_sweep"):
        out.append("- pgvector's HNSW index (m 16, ef_construction 64) at limit 10 by "
                   "`hnsw.ef_search` (kai uses 40 at limit 10), recall@10 against exact search and "
                   "the database's own time p50 / p99: " + "; ".join(
                       f"{h['ef_search']}: {f3(h['recall_at_10'])}, {h['p50_ms']:.2f} / "
                       f"{h['p99_ms']:.2f} ms" for h in s["hnsw_sweep"]))
    ix = s["indexing"]
    out.append(f"- Indexing with local/minilm (both cores): {ix['chunks']:,} chunks in {ix['seconds']:.0f} s = "
               f"{ix['chunks_per_s']:.0f} chunks/s"
               + (f" ({s['indexing_db_cpu_s']:.0f} s of PostgreSQL backend CPU)"
                  if s.get("indexing_db_cpu_s") is not None else "")
               + f"; the model alone, same texts in batches of 32: "
               f"{ix['embed_chunks_per_s']:.0f} chunks/s (~{ix['model_seconds_est']:.0f} s of it); "
               + (f"without the model's time: {ix['without_model_chunks_per_s']:.0f} chunks/s"
                  if ix["without_model_chunks_per_s"] else "the model's time is all of it, within noise"))
    ko = s.get("keyword_only")
    if ko:
        out.append(f"- Indexing with no embedding model (keyword_only; chunk sizes estimated, not "
                   f"tokenized): {ko['chunks']:,} chunks in {ko['seconds']:.1f} s = "
                   f"{ko['chunks_per_s']:.0f} chunks/s (target ≥ 2,000), {ko['server_cpu_s']:.0f} s of "
                   f"server CPU"
                   + (f", {ko['db_cpu_s']:.0f} s of PostgreSQL backend CPU"
                      if ko.get("db_cpu_s") is not None else ""))
    if "chroma_version" in s:
        out.append(f"- Chroma {s['chroma_version']}: {s['chroma_count']:,} vectors added in "
                   f"{s['chroma_add_seconds']:.0f} s; resident after the load "
                   f"{kib(s['chroma_rss_after_load_kib'])}")
    if s.get("db_size_bytes"):
        out.append(f"- kai's PostgreSQL database after indexing: {s['db_size_bytes'] / 2**20:,.0f} MiB")
    out.append(f"- kai serve resident: {kib(s['rss_after_indexing_kib']['VmRSS'])} after indexing "
               f"(peak {kib(s['rss_after_indexing_kib']['VmHWM'])}), "
               f"{kib(s['rss_after_restart_kib']['VmRSS'])} after a restart on that data, "
               f"{kib(s['rss_after_load_kib']['VmRSS'])} after the load (peak since the restart "
               f"{kib(s['rss_after_load_kib']['VmHWM'])}); target < 600 MiB")
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quality")
    ap.add_argument("--speed")
    args = ap.parse_args()
    lines = []
    if args.quality:
        lines += quality(json.load(open(args.quality))) + [""]
    if args.speed:
        lines += speed(json.load(open(args.speed))) + [""]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
