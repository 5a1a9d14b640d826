#!/usr/bin/env python3
"""Parse wrk --latency output and summarise benchmark rounds (stdlib only).

    wrkstats.py parse NAME ROUND WRK_OUTPUT_FILE   -> one JSON line on stdout; exit 1 on errors
    wrkstats.py report ROUNDS_JSONL                -> Markdown summary (metadata from KAI_BENCH_META_* env)

`parse` fails loudly when wrk saw non-2xx/3xx responses, socket errors (unless
ALLOW_SOCKET_ERRORS=1) or no requests at all: a benchmark of 401s is worthless, and wrk
leaves timed-out requests out of its latency figures.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import sys

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([0-9.]+)(us|ms|s|m|h)", text)
    if not m:
        raise ValueError(f"unrecognised wrk time {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse(text: str) -> dict:
    def grab(pattern: str) -> re.Match | None:
        return re.search(pattern, text, re.MULTILINE)

    rps = grab(r"^Requests/sec:\s+([0-9.]+)")
    p50 = grab(r"^\s+50%\s+(\S+)")
    p99 = grab(r"^\s+99%\s+(\S+)")
    total = grab(r"^\s+(\d+) requests in ([0-9.]+\w+)")
    if not (rps and p50 and p99 and total):
        raise ValueError("wrk output lacks Requests/sec, the 50%/99% latency lines or the request count")
    non2xx = grab(r"^\s*Non-2xx or 3xx responses:\s+(\d+)")
    sock = grab(r"^\s*Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
    return {
        "rps": float(rps.group(1)),
        "p50_ms": _ms(p50.group(1)),
        "p99_ms": _ms(p99.group(1)),
        "requests": int(total.group(1)),
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": dict(zip(("connect", "read", "write", "timeout"), map(int, sock.groups())))
        if sock
        else {},
    }


def cmd_parse(name: str, rnd: str, path: str) -> int:
    with open(path) as f:
        text = f.read()
    try:
        res = parse(text)
    except ValueError as e:
        print(f"FAIL {name} round {rnd}: {e}\n--- wrk output ---\n{text}", file=sys.stderr)
        return 1
    problems = []
    if res["requests"] == 0:
        problems.append("no requests completed")
    if res["non2xx"]:
        problems.append(f"{res['non2xx']} of {res['requests']} responses were not 2xx/3xx")
    if any(res["socket_errors"].values()) and os.environ.get("ALLOW_SOCKET_ERRORS") != "1":
        problems.append(f"socket errors {res['socket_errors']} (ALLOW_SOCKET_ERRORS=1 to accept)")
    if problems:
        print(
            f"FAIL {name} round {rnd}: " + "; ".join(problems) + f"\n--- wrk output ---\n{text}",
            file=sys.stderr,
        )
        return 1
    res.update(name=name, round=int(rnd))
    print(
        f"[bench]   {name}: {res['rps']:,.0f} req/s, p50 {_fmt_ms(res['p50_ms'])}, p99 {_fmt_ms(res['p99_ms'])}",
        file=sys.stderr,
    )
    print(json.dumps(res))
    return 0


def _fmt_ms(v: float) -> str:
    return f"{v:.2f} ms" if v < 10 else f"{v:.1f} ms"


def cmd_report(path: str) -> int:
    with open(path) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    env = os.environ.get
    labels = {"kai": env("KAI_BENCH_META_KAI", "kai"), "fastapi": env("KAI_BENCH_META_FASTAPI", "FastAPI")}
    names = [n for n in ("kai", "fastapi") if any(r["name"] == n for r in rows)]
    med = {}
    for n in names:
        rs = [r for r in rows if r["name"] == n]
        med[n] = {k: statistics.median(r[k] for r in rs) for k in ("rps", "p50_ms", "p99_ms")}
        med[n]["rounds"] = len(rs)

    out = []
    out.append(f"### GET /api/v1/me with an API key, {env('KAI_BENCH_META_CONNECTIONS', '64')} connections — {env('KAI_BENCH_META_DATE', '?')}")
    out.append("")
    out.append(f"- Machine: {env('KAI_BENCH_META_NPROC', '?')} CPUs (nproc), {env('KAI_BENCH_META_CPU', '?')}, Linux {env('KAI_BENCH_META_KERNEL', '?')}")
    out.append(f"- Load: `{env('KAI_BENCH_META_WRK_CMD', 'wrk')}` ({env('KAI_BENCH_META_WRK_VERSION', 'wrk')}), {env('KAI_BENCH_META_PINNING', '')}")
    out.append(f"- Rounds: {env('KAI_BENCH_META_ROUNDS', '?')}, alternating order; figures are medians across rounds")
    out.append("")
    out.append("| server | requests/s | p50 | p99 |")
    out.append("| --- | ---: | ---: | ---: |")
    for n in names:
        m = med[n]
        out.append(f"| {labels[n]} | {m['rps']:,.0f} | {_fmt_ms(m['p50_ms'])} | {_fmt_ms(m['p99_ms'])} |")
    out.append("")
    if "kai" in med and "fastapi" in med:
        ratio = med["kai"]["rps"] / med["fastapi"]["rps"]
        out.append(
            f"**kai / FastAPI requests/s: {ratio:.2f}×** — p99 kai {_fmt_ms(med['kai']['p99_ms'])} "
            f"vs FastAPI {_fmt_ms(med['fastapi']['p99_ms'])}"
        )
        out.append("")
    out.append("Per round (requests/s, p50, p99):")
    out.append("")
    for n in names:
        per = "; ".join(
            f"{r['rps']:,.0f}, {_fmt_ms(r['p50_ms'])}, {_fmt_ms(r['p99_ms'])}"
            for r in sorted((r for r in rows if r["name"] == n), key=lambda r: r["round"])
        )
        out.append(f"- {n}: {per}")
    print("\n".join(out))
    return 0


def main(argv: list[str]) -> int:
    if len(argv) == 5 and argv[1] == "parse":
        return cmd_parse(*argv[2:])
    if len(argv) == 3 and argv[1] == "report":
        return cmd_report(argv[2])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
