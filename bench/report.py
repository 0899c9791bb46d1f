"""Turns bench/e2e.sh's runs.tsv into the Markdown tables and the target check.

Usage: python3 bench/report.py target/bench-e2e/runs.tsv
"""

import csv
import statistics
import sys
from collections import OrderedDict

MB = 1_000_000
MIB = 1024 * 1024

CURL = "curl -o FILE"
CURL_CSV = "curl -o FILE (CSV)"
CLI = "iterable-export (NDJSON)"
CLI_CSV = "iterable-export (CSV)"
DECODE = "decode_events (ndjson() → Event)"


def load(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def by_tool(rows, group):
    out = OrderedDict()
    for r in rows:
        if r["group"] == group:
            out.setdefault(r["tool"], []).append(r)
    return out


def med(rows, key):
    return statistics.median(float(r[key]) for r in rows)


def summary(rows):
    wall = med(rows, "wall_s")
    records = int(rows[0]["records"])
    nbytes = int(rows[0]["bytes"])
    return {
        "runs": len(rows),
        "wall": wall,
        "walls": [float(r["wall_s"]) for r in rows],
        "records": records,
        "expected": int(rows[0]["expected"]),
        "counts_ok": all(r["records"] == r["expected"] for r in rows),
        "bytes": nbytes,
        "rps": records / wall if wall else float("inf"),
        "mbps": nbytes / MB / wall if wall else float("inf"),
        "rss": max(int(r["rss_kib"]) for r in rows) / 1024,
        "rss_med": med(rows, "rss_kib") / 1024,
        "user": med(rows, "user_s"),
        "sys": med(rows, "sys_s"),
        "mock": med(rows, "mock_cpu_s"),
    }


def paired_ratio(tool_rows, ref_rows):
    """Median over runs of (reference wall / tool wall), run i against run i: the tool's
    throughput relative to the reference's, from the same interleaved run."""
    pairs = [
        float(r["wall_s"]) and float(ref["wall_s"]) / float(r["wall_s"])
        for r, ref in zip(tool_rows, ref_rows)
        if float(r["wall_s"]) > 0
    ]
    return statistics.median(pairs) if pairs else None


def rss_list(rows):
    return ", ".join("%.1f" % (int(r["rss_kib"]) / 1024) for r in rows)


def fmt_ratio(x):
    if x is None:
        return "–"
    if x >= 100:
        return f"{x:,.0f}×"
    if x >= 10:
        return f"{x:.1f}×"
    return f"{x:.2f}×"


def main():
    rows = load(sys.argv[1])
    big = by_tool(rows, "big")
    small = by_tool(rows, "small")
    py = by_tool(rows, "python")
    s = {k: summary(v) for k, v in big.items()}
    sp = {k: summary(v) for k, v in py.items()}
    cli = s.get(CLI)

    if s:
        any_row = next(iter(s.values()))
        print(
            f"Export: emailSend, {any_row['expected']:,} records, NDJSON {s[CURL]['bytes'] / MB:,.1f} MB"
            + (f", CSV {s[CURL_CSV]['bytes'] / MB:,.1f} MB" if CURL_CSV in s else "")
            + f"; median of {any_row['runs']} interleaved runs. MB = 10^6 bytes; MB/s is the size of the"
            " tool's output format (NDJSON body for decode_events) over wall time."
        )
        print()
        print(
            "| Tool | Wall (s) | Records/s | MB/s | Peak RSS (MiB) | User / sys CPU (s) | Mock CPU (s) "
            "| vs curl -o FILE | vs CLI NDJSON | Records OK |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|:---:|")
        for tool, v in s.items():
            ref = CURL_CSV if tool in (CLI_CSV, CURL_CSV) else CURL
            vs_curl = paired_ratio(big[tool], big[ref]) if ref in big else None
            vs_cli = paired_ratio(big[tool], big[CLI]) if CLI in big and tool not in (CLI_CSV, CURL_CSV) else None
            if tool in (CLI_CSV, CURL_CSV) and CLI_CSV in big:
                vs_cli = paired_ratio(big[tool], big[CLI_CSV])
            print(
                f"| {tool} | {v['wall']:.2f} | {v['rps']:,.0f} | {v['mbps']:,.0f} | {v['rss']:.1f} "
                f"| {v['user']:.2f} / {v['sys']:.2f} | {v['mock']:.2f} | {fmt_ratio(vs_curl)} | {fmt_ratio(vs_cli)} "
                f"| {'yes' if v['counts_ok'] else 'NO: ' + str(v['records']) + ' of ' + str(v['expected'])} |"
            )
        print()
        print(
            "\"vs\" columns: throughput relative to the reference, median over runs of (reference wall time / tool "
            "wall time) within the same run; CSV rows are compared with curl's CSV download and the CLI's CSV export. "
            "Wall times per run: "
            + "; ".join(t + ": " + ", ".join("%.2f" % w for w in v["walls"]) for t, v in s.items())
            + "."
        )
        print()

    if small and CLI in small and cli:
        c = summary(small[CLI])
        cu = summary(small[CURL]) if CURL in small else None
        diff = (cli["rss"] - c["rss"]) / c["rss"] * 100
        print(
            f"Peak RSS of the CLI (NDJSON), small vs big export: {c['bytes'] / MB:,.1f} MB ({c['records']:,} records, "
            f"{c['wall']:.2f} s, counts {'ok' if c['counts_ok'] else 'WRONG'}): {c['rss']:.1f} MiB "
            f"(runs: {rss_list(small[CLI])}); "
            f"{cli['bytes'] / MB:,.1f} MB: {cli['rss']:.1f} MiB "
            f"(runs: {rss_list(big[CLI])}); difference {diff:+.1f} %."
            + (f" curl: {cu['rss']:.1f} MiB vs {s[CURL]['rss']:.1f} MiB." if cu else "")
        )
        print()

    if sp:
        print(
            "Python connectors (each on its own mock, window sized to about the same number of records; "
            "records/s and memory compared, not total time):"
        )
        print()
        print(
            "| Tool | Records | Wall (s) | Records/s | MB/s | Peak RSS (MiB) | User / sys CPU (s) "
            "| CLI NDJSON records/s ÷ tool's | decode_events records/s ÷ tool's | tool's RSS ÷ CLI's | Records OK |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|:---:|")
        for tool, v in sp.items():
            x_cli = cli["rps"] / v["rps"] if cli and v["rps"] else None
            x_dec = s[DECODE]["rps"] / v["rps"] if DECODE in s and v["rps"] else None
            mem = v["rss"] / cli["rss"] if cli else None
            ok = "yes" if v["counts_ok"] else f"NO: {v['records']:,} of {v['expected']:,}"
            print(
                f"| {tool} | {v['records']:,} | {v['wall']:.1f} | {v['rps']:,.0f} | {v['mbps']:.2f} | {v['rss']:.1f} "
                f"| {v['user']:.1f} / {v['sys']:.1f} | {fmt_ratio(x_cli)} | {fmt_ratio(x_dec)} | {fmt_ratio(mem)} | {ok} |"
            )
        print()

    # Targets
    print("Targets (issue 7):")
    print()
    print("| Target | Measured | Met |")
    print("|---|---|:---:|")

    def row(name, measured, ok):
        print(f"| {name} | {measured} | {'yes' if ok else '**no**'} |")

    if cli and CURL in big:
        r = paired_ratio(big[CLI], big[CURL])
        row("CLI NDJSON to disk ≥ 0.9 × curl -o FILE throughput (≥ 1 GB)", f"{r:.2f}× ({cli['mbps']:,.0f} vs {s[CURL]['mbps']:,.0f} MB/s)", r >= 0.9 and cli["bytes"] >= 1e9)
        if "curl -o FILE && sync FILE" in big:
            r2 = paired_ratio(big[CLI], big["curl -o FILE && sync FILE"])
            row("(context) CLI vs curl -o FILE && sync FILE (both durable)", f"{r2:.2f}×", True)
    if DECODE in s:
        d = s[DECODE]
        row("ndjson() into Event ≥ 500 MB/s (end to end, from the mock)", f"{d['mbps']:,.0f} MB/s, {d['user']:.2f} s user CPU → {d['bytes'] / MB / max(d['user'], 1e-9):,.0f} MB per CPU-second", d["mbps"] >= 500)
    if cli:
        ok = cli["rss"] <= 24
        row("CLI peak RSS ≤ 24 MiB (≥ 1 GB export)", f"{cli['rss']:.1f} MiB", ok)
        if small and CLI in small:
            c = summary(small[CLI])
            diff = abs(cli["rss"] - c["rss"]) / c["rss"] * 100
            row("CLI peak RSS within 10 % between ~100 MB and ≥ 1 GB", f"{c['rss']:.1f} → {cli['rss']:.1f} MiB ({diff:.1f} %)", diff <= 10)
    for tool, v in sp.items():
        if DECODE in s and v["rps"]:
            x = s[DECODE]["rps"] / v["rps"]
            row(f"decode_events ≥ 100 × {tool} records/s", fmt_ratio(x), x >= 100)
        if cli and v["rps"]:
            x = cli["rps"] / v["rps"]
            row(f"CLI NDJSON ≥ 300 × {tool} records/s", fmt_ratio(x), x >= 300)
            m = v["rss"] / cli["rss"]
            row(f"CLI memory < 1/3 of {tool}'s", f"{cli['rss']:.1f} vs {v['rss']:.1f} MiB ({fmt_ratio(m)})", m > 3)
        if not v["counts_ok"]:
            row(f"{tool} exported the expected records", f"{v['records']:,} of {v['expected']:,}", False)


if __name__ == "__main__":
    main()
