#!/usr/bin/env python3
"""Parse oha's JSON output and summarise the gateway benchmark's rounds (stdlib only).

    ohastats.py parse TARGET MODE RATE ROUND DURATION_S CPU_S OHA_JSON  -> one JSON line; exit 1 on errors
    ohastats.py report ROUNDS_JSONL                                -> Markdown (metadata from KAI_BENCH_META_*)

`parse` fails loudly when a run of `direct` or `kai` saw a non-2xx response or any error
(refused connections, timeouts, …) or completed no request: a benchmark of errors is
worthless. The peer (`litellm`) is expected to saturate at the higher rates; its errors and
non-2xx answers are recorded, not fatal, unless it completed nothing at all.

Latency percentiles are oha's with `--latency-correction`: measured from when each request
was due by the fixed rate, not from when a free connection sent it, so a server that falls
behind shows its queueing (no coordinated omission). The overhead of a gateway is, per round,
its percentile minus the direct run's percentile in the same round; the report gives the
median across rounds of every figure.
"""

from __future__ import annotations

import json
import os
import statistics
import sys

STRICT = {"direct", "kai"}
LABELS = {"direct": "direct to the mock", "kai": "through kai", "litellm": "through LiteLLM"}
ORDER = ["direct", "kai", "litellm"]
MODES = {"plain": "Non-streaming", "stream": "Streaming (time to the whole response)"}
# An offered rate counts as held when this share of it was completed.
HELD = 0.95


def parse(data: dict, duration_s: float, cpu_s: float) -> dict:
    summary = data["summary"]
    pct = data["latencyPercentiles"]
    codes = {str(k): int(v) for k, v in (data.get("statusCodeDistribution") or {}).items()}
    errors = {str(k): int(v) for k, v in (data.get("errorDistribution") or {}).items()}
    ok = sum(n for code, n in codes.items() if code.startswith("2"))
    non2xx = sum(n for code, n in codes.items() if not code.startswith("2"))

    def ms(key: str) -> float | None:
        value = pct.get(key)
        return None if value is None else float(value) * 1e3

    return {
        "ok": ok,
        "non2xx": non2xx,
        "codes": codes,
        "errors": errors,
        # Completed 2xx answers per second of the fixed run, not oha's figure (which counts
        # failures and the time spent waiting for the last answers too).
        "achieved_rps": ok / duration_s,
        "p50_ms": ms("p50"),
        "p99_ms": ms("p99"),
        # For streams, when the first bytes of the answer arrived (oha's first-byte figures).
        "ttfb_p50_ms": fb(data, "p50"),
        "ttfb_p99_ms": fb(data, "p99"),
        # The server's own CPU time (all its threads; the mock's, for direct runs) per answer.
        "cpu_us_per_req": cpu_s * 1e6 / ok if ok else None,
        "success_rate": summary.get("successRate"),
    }


def fb(data: dict, key: str) -> float | None:
    value = (data.get("firstBytePercentiles") or {}).get(key)
    return None if value is None else float(value) * 1e3


def cmd_parse(target: str, mode: str, rate: str, rnd: str, duration_s: str, cpu_s: str, path: str) -> int:
    label = f"{target} {mode} {rate} rps round {rnd}"
    try:
        with open(path) as f:
            data = json.load(f)
        res = parse(data, float(duration_s), float(cpu_s))
    except (OSError, ValueError, KeyError, TypeError) as e:
        text = open(path).read() if os.path.exists(path) else "(no output)"
        print(f"FAIL {label}: cannot read oha's output: {e!r}\n--- oha output ---\n{text[:4000]}", file=sys.stderr)
        return 1
    problems = []
    if res["ok"] == 0 or res["p50_ms"] is None:
        problems.append("no request completed")
    if target in STRICT:
        if res["non2xx"]:
            problems.append(f"{res['non2xx']} responses were not 2xx: {res['codes']}")
        if res["errors"]:
            problems.append(f"errors: {res['errors']}")
    if problems:
        print(f"FAIL {label}: " + "; ".join(problems), file=sys.stderr)
        return 1
    res.update(target=target, mode=mode, rate=int(rate), round=int(rnd))
    note = ""
    if res["achieved_rps"] < HELD * int(rate):
        note += " (rate NOT held)"
    if res["non2xx"] or res["errors"]:
        note += f" non-2xx {res['codes']}, errors {res['errors']}"
    print(
        f"[bench]   {target}: {res['achieved_rps']:,.0f} of {int(rate):,} req/s, "
        f"p50 {fmt_ms(res['p50_ms'])}, p99 {fmt_ms(res['p99_ms'])}, CPU {fmt_us(res['cpu_us_per_req'])}/req{note}",
        file=sys.stderr,
    )
    print(json.dumps(res))
    return 0


def fmt_ms(v: float | None) -> str:
    if v is None:
        return "—"
    if abs(v) < 10:
        return f"{v:.2f} ms"
    if abs(v) < 1000:
        return f"{v:.1f} ms"
    return f"{v / 1e3:.2f} s"


def fmt_us(v: float | None) -> str:
    if v is None:
        return "—"
    return f"{v:,.0f} µs" if v < 1000 else f"{v / 1e3:.1f} ms"


def fmt_delta(v: float | None) -> str:
    return "—" if v is None else ("+" if v >= 0 else "−") + fmt_ms(abs(v))


def summarise(rows: list[dict]) -> dict:
    """Per (mode, rate, target): medians across rounds, with overheads paired by round."""
    out: dict = {}
    keys = sorted({(r["mode"], r["rate"]) for r in rows}, key=lambda k: (list(MODES).index(k[0]), k[1]))
    for mode, rate in keys:
        point = [r for r in rows if r["mode"] == mode and r["rate"] == rate]
        direct = {r["round"]: r for r in point if r["target"] == "direct"}
        for target in ORDER:
            rs = [r for r in point if r["target"] == target]
            if not rs:
                continue
            s = {
                "rounds": len(rs),
                "achieved_rps": statistics.median(r["achieved_rps"] for r in rs),
                "p50_ms": statistics.median(r["p50_ms"] for r in rs),
                "p99_ms": statistics.median(r["p99_ms"] for r in rs),
                "cpu_us_per_req": statistics.median(r["cpu_us_per_req"] for r in rs),
                "failed": sum(r["non2xx"] + sum(r["errors"].values()) for r in rs),
                "held": all(r["achieved_rps"] >= HELD * rate for r in rs),
                "per_round": sorted(rs, key=lambda r: r["round"]),
            }
            if target != "direct" and direct:
                paired = [(r, direct[r["round"]]) for r in rs if r["round"] in direct]
                if paired:
                    s["over_p50_ms"] = statistics.median(r["p50_ms"] - d["p50_ms"] for r, d in paired)
                    s["over_p99_ms"] = statistics.median(r["p99_ms"] - d["p99_ms"] for r, d in paired)
            out[(mode, rate, target)] = s
    return out


def cmd_report(path: str) -> int:
    with open(path) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    env = os.environ.get
    labels = dict(LABELS)
    labels["kai"] = f"through {env('KAI_BENCH_META_KAI', 'kai')}"
    labels["litellm"] = f"through {env('KAI_BENCH_META_LITELLM', 'LiteLLM')}"
    s = summarise(rows)

    out = [
        f"### Gateway overhead over a loopback mock — {env('KAI_BENCH_META_DATE', '?')}",
        "",
        f"- Machine: {env('KAI_BENCH_META_NPROC', '?')} CPUs (nproc), {env('KAI_BENCH_META_CPU', '?')}, Linux {env('KAI_BENCH_META_KERNEL', '?')}; "
        f"{env('KAI_BENCH_META_LOAD', '')}",
        f"- Load: `{env('KAI_BENCH_META_OHA_CMD', 'oha')}` ({env('KAI_BENCH_META_OHA_VERSION', 'oha')}), {env('KAI_BENCH_META_PINNING', '')}",
        f"- kai: {env('KAI_BENCH_META_KAI_SETTINGS', 'shipped defaults')}",
        f"- Rounds: {env('KAI_BENCH_META_ROUNDS', '?')} × {env('KAI_BENCH_META_DURATION', '?')} per point after a warm-up, "
        "rotating order; figures are medians across rounds; overhead = through-X minus direct, paired by round",
        "",
    ]
    for mode, title in MODES.items():
        if not any(k[0] == mode for k in s):
            continue
        out += [f"**{title}**", "", "| offered | target | achieved req/s | p50 | p99 | overhead p50 | overhead p99 | server CPU/req |",
                "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for (m, rate, target), v in s.items():
            if m != mode:
                continue
            held = "" if v["held"] else " (not held)"
            failed = f", {v['failed']:,} failed" if v["failed"] else ""
            out.append(
                f"| {rate:,}/s | {labels[target]} | {v['achieved_rps']:,.0f}{held}{failed} | {fmt_ms(v['p50_ms'])} | "
                f"{fmt_ms(v['p99_ms'])} | {fmt_delta(v.get('over_p50_ms'))} | {fmt_delta(v.get('over_p99_ms'))} | "
                f"{fmt_us(v['cpu_us_per_req'])} |"
            )
        out.append("")

    # The targets: kai's p99 overhead under 1 ms at 1,000/s; at least 20× lower than LiteLLM's.
    # A ratio means something only where both held the rate: past its saturation point a
    # server's latency is its queue, which grows with the run's length.
    verdicts = []
    for mode, title in MODES.items():
        for rate in sorted({k[1] for k in s if k[0] == mode}):
            k, lt = s.get((mode, rate, "kai")), s.get((mode, rate, "litellm"))
            if not k or "over_p99_ms" not in k:
                continue
            line = f"- {title.split(' (')[0].lower()}, {rate:,}/s: kai p99 overhead {fmt_delta(k['over_p99_ms'])}"
            if not k["held"]:
                line += f" (kai could not hold the rate: {k['achieved_rps']:,.0f}/s completed)"
            if rate == 1000:
                met = k["held"] and k["over_p99_ms"] < 1.0
                line += f": {'under' if met else 'NOT under'} 1 ms"
            if lt and "over_p99_ms" in lt:
                line += f"; LiteLLM's {fmt_delta(lt['over_p99_ms'])}"
                if lt["held"] and k["held"]:
                    ratio = lt["over_p99_ms"] / max(k["over_p99_ms"], 1e-3)
                    line += f", {ratio:,.1f}× kai's"
                elif not lt["held"]:
                    line += f" (LiteLLM could not hold the rate: {lt['achieved_rps']:,.0f}/s completed; no ratio)"
            verdicts.append(line)
    if verdicts:
        out += ["Targets (p99 overhead):", ""] + verdicts + [""]

    out += ["Per round (achieved req/s, p50, p99):", ""]
    for (mode, rate, target), v in s.items():
        per = "; ".join(
            f"{r['achieved_rps']:,.0f}, {fmt_ms(r['p50_ms'])}, {fmt_ms(r['p99_ms'])}" for r in v["per_round"]
        )
        out.append(f"- {mode} {rate:,}/s {target}: {per}")
    print("\n".join(out))
    return 0


def main(argv: list[str]) -> int:
    if len(argv) == 9 and argv[1] == "parse":
        return cmd_parse(*argv[2:])
    if len(argv) == 3 and argv[1] == "report":
        return cmd_report(argv[2])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
