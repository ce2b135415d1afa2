"""The quick run's regression gate (issue 22): fail when a figure is more than 20% worse
than the baseline kept in tests/benchmarks/baseline.json.

    .venv/bin/python -m tests.benchmarks.gate [--tolerance 0.20] [--results bench-results]

`make bench-quick` runs the benchmark scripts at small sizes, then this. It reads each
script's bench-results/<name>.json and compares the figures the baseline names. Only
the figures that moved least between runs are gated: participations against a bare
UPDATE in the same run (0.38-0.50 over 11 runs), and the web app's server and PostgreSQL
CPU per request (669-892 us over 11 runs; 302-463 us since the limiter's single refill and
the profile's JSON pass-through). Not gated, because they moved
more than the tolerance between back-to-back runs on an idle machine: wall-clock
throughput; the quick run's tick (a few ms; its ratio to a bare UPDATE went 0.14 -> 0.34);
the bot's CPU per update (1.7-1.9 ms in some runs, 5.3-6.5 ms in others, the stand-in's
and PostgreSQL's CPU tripling with it: the virtual machine's speed under a 2-core load,
which a reference workload measured around the phase did not capture).

The exit status is 1 if a gated figure regressed by more than the tolerance or is
missing, else 0. `make bench-quick` runs the scripts again once before failing, so one
unlucky second does not fail CI; a real regression fails both runs.

The baseline holds the WORST value seen of each figure over several quick runs (11 on
2026-12-07, 4 of them inside .ci/run), not a typical one: even the gated figures moved up
to 30% between runs with no change, and a gate that fails on the machine's noise would
stop every landing. After a change of cost made on purpose, or on a new machine kind,
refresh it the same way and say why in the commit.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent
BASELINE = Path(__file__).with_name("baseline.json")


def figure(results: Path, benchmark: str, metric: str) -> float | None:
    path = results / f"{benchmark}.json"
    if not path.exists():
        return None
    for m in json.loads(path.read_text())["metrics"]:
        if m["name"] == metric and isinstance(m["value"], (int, float)):
            return float(m["value"])
    return None


def check(baseline: dict[str, Any], results: Path, tolerance: float) -> list[tuple[str, str, str, str, bool]]:
    """(figure, baseline, now, change, ok) for every gated figure."""
    rows = []
    for entry in baseline["figures"]:
        name = f"{entry['benchmark']}: {entry['metric']}"
        base = float(entry["value"])
        now = figure(results, entry["benchmark"], entry["metric"])
        if now is None:
            rows.append((name, f"{base:g}", "missing", "", False))
            continue
        higher_better = entry["better"] == "higher"
        change = (now - base) / base if base else 0.0
        worse = -change if higher_better else change
        rows.append((name, f"{base:g}", f"{now:g}", f"{change:+.0%}", worse <= tolerance))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.gate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tolerance", type=float, default=0.20, help="allowed share worse than the baseline")
    parser.add_argument("--results", type=Path, default=PROJECT_ROOT / "bench-results")
    parser.add_argument("--baseline", type=Path, default=BASELINE)
    args = parser.parse_args(argv)
    baseline = json.loads(args.baseline.read_text())
    rows = check(baseline, args.results, args.tolerance)
    header = ("figure", "baseline", "now", "change", "")
    table = [header] + [(n, b, v, c, "ok" if ok else "REGRESSED") for n, b, v, c, ok in rows]
    widths = [max(len(r[i]) for r in table) for i in range(5)]
    print(f"\nregression gate (tolerance {args.tolerance:.0%}; baseline {baseline.get('measured', '?')}):")
    for row in table:
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
    failed = [r[0] for r in rows if not r[4]]
    if failed:
        print(f"\n{len(failed)} gated figure(s) regressed by more than {args.tolerance:.0%}: {', '.join(failed)}")
        return 1
    print("\nno gated figure regressed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
