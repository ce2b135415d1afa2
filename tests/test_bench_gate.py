"""The quick run's regression gate (tests/benchmarks/gate.py) fails on a real regression."""

from __future__ import annotations

import json
from pathlib import Path

from tests.benchmarks import gate

BASELINE = {"measured": "test", "figures": [
    {"benchmark": "b", "metric": "ratio", "value": 0.5, "better": "higher"},
    {"benchmark": "b", "metric": "cpu", "value": 100, "better": "lower"},
]}


def write_results(tmp_path: Path, ratio: float, cpu: float) -> Path:
    (tmp_path / "b.json").write_text(json.dumps({"metrics": [
        {"name": "ratio", "value": ratio}, {"name": "cpu", "value": cpu}, {"name": "text", "value": "1 / 2"}]}))
    return tmp_path


def verdicts(tmp_path: Path, ratio: float, cpu: float) -> dict[str, bool]:
    rows = gate.check(BASELINE, write_results(tmp_path, ratio, cpu), 0.20)
    return {name: ok for name, _, _, _, ok in rows}


def test_within_tolerance_passes(tmp_path: Path) -> None:
    assert verdicts(tmp_path, ratio=0.41, cpu=119) == {"b: ratio": True, "b: cpu": True}


def test_better_figures_pass(tmp_path: Path) -> None:
    assert all(verdicts(tmp_path, ratio=0.9, cpu=10).values())


def test_more_than_tolerance_worse_fails_either_way(tmp_path: Path) -> None:
    assert verdicts(tmp_path, ratio=0.39, cpu=100) == {"b: ratio": False, "b: cpu": True}
    assert verdicts(tmp_path, ratio=0.5, cpu=121) == {"b: ratio": True, "b: cpu": False}


def test_missing_figure_fails(tmp_path: Path) -> None:
    assert [ok for *_, ok in gate.check(BASELINE, tmp_path, 0.20)] == [False, False]


def test_main_exit_status(tmp_path: Path) -> None:
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps(BASELINE))
    results = write_results(tmp_path, ratio=0.5, cpu=100)
    assert gate.main(["--baseline", str(baseline), "--results", str(results)]) == 0
    write_results(tmp_path, ratio=0.2, cpu=100)
    assert gate.main(["--baseline", str(baseline), "--results", str(results)]) == 1


def test_committed_baseline_names_real_benchmarks() -> None:
    baseline = json.loads(gate.BASELINE.read_text())
    scripts = {p.stem for p in gate.BASELINE.parent.glob("*.py")}
    for entry in baseline["figures"]:
        assert entry["benchmark"] in scripts and entry["better"] in ("higher", "lower") and entry["value"] > 0
