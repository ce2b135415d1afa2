"""The monitoring files are valid for the tools that read them: promtool checks the
scrape config and the rules and runs the rules' unit tests (db/monitoring/alerts.test.yml),
and every metric an alert or the dashboard uses is one the bot or the exporter's
queries file produces."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import yaml

from bot import metrics as bot_metrics

MONITORING = Path(__file__).resolve().parents[2] / "db" / "monitoring"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"  # Debian's `prometheus` (Makefile: APT_PACKAGES)


def promtool(*args: str) -> str:
    done = subprocess.run([PROMTOOL, *args], cwd=MONITORING, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def exporter_metrics() -> set[str]:
    """<query>_<column> for every non-label column of queries.yaml, as the exporter names them."""
    names = set()
    for query, spec in yaml.safe_load((MONITORING / "queries.yaml").read_text()).items():
        for column in spec["metrics"]:
            ((name, usage),) = column.items()
            if usage["usage"] != "LABEL":
                names.add(f"{query}_{name}")
    return names


def bot_metric_names() -> set[str]:
    names = set()
    for collector in (bot_metrics.UPDATES, bot_metrics.REPLIES, bot_metrics.GAME_ERRORS, bot_metrics.DB_CALLS,
                      bot_metrics.POOL_WAIT, bot_metrics.POOL_IN_USE, bot_metrics.RATE_LIMITED, bot_metrics.MODE):
        for family in collector.describe():
            names |= {family.name, f"{family.name}_total", f"{family.name}_bucket", f"{family.name}_count",
                      f"{family.name}_sum"}
    names |= {"waifu_notifier_rows_total", "waifu_outbox_claimed_rows_total", "waifu_outbox_lease_expired_rows_total",
              "waifu_notifier_rate_limited_total", "waifu_notifier_send_errors_total"}
    return names


def dashboard_queries() -> list[str]:
    """The PromQL of every panel of the Grafana dashboard (a JSON file Grafana imports)."""
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    assert dashboard["uid"] and dashboard["panels"]
    return [t["expr"] for p in dashboard["panels"] for t in p["targets"]]


def test_promtool_checks_the_rules_and_the_scrape_config() -> None:
    assert "SUCCESS: 8 rules found" in promtool("check", "rules", "alerts.yml")
    assert "is valid prometheus config file" in promtool("check", "config", "prometheus.yml")


def test_promtool_unit_tests_of_the_alerts_pass() -> None:
    assert "SUCCESS" in promtool("test", "rules", "alerts.test.yml")


def test_every_alert_has_a_unit_test_that_fires_it() -> None:
    rules = yaml.safe_load((MONITORING / "alerts.yml").read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"]}
    tests = yaml.safe_load((MONITORING / "alerts.test.yml").read_text())["tests"]
    fired = {case["alertname"] for t in tests for case in t["alert_rule_test"] if case["exp_alerts"]}
    quiet = {case["alertname"] for t in tests for case in t["alert_rule_test"] if not case["exp_alerts"]}
    assert fired == alerts and quiet == alerts


def test_alerts_and_dashboard_use_only_metrics_that_exist() -> None:
    known = exporter_metrics() | bot_metric_names() | {"up", "pg_up"}
    rules = yaml.safe_load((MONITORING / "alerts.yml").read_text())
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    exprs += dashboard_queries()
    used = {m for e in exprs for m in re.findall(r"\b(waifu_[a-z0-9_]+|pg_up|up)\b", e)}
    assert used and used <= known, used - known
