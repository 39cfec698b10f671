"""The Health checks' rules without a server: thresholds from the config file, rates from
two reads, what the header names, where a row leads."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from canned import NOW, backend, incident_snapshot

from pgtop.collectors.health import (
    Finding,
    HealthData,
    ServerRead,
    Status,
    Target,
    ordered,
    rate_findings,
    root_blocker,
    session_findings,
)
from pgtop.config import Thresholds, load_file_config, parse_thresholds
from pgtop.panes.health import destination
from pgtop.widgets.header import Trend, health_text

COUNTERS = {
    "collected_at": NOW,
    "checkpoints_timed": 10,
    "checkpoints_requested": 0,
    "temp_bytes": 0,
    "deadlocks": 0,
    "xact_commit": 1000,
    "xact_rollback": 0,
    "blks_hit": 100_000,
    "blks_read": 0,
}


def read(seconds: float = 0, **changes: int) -> ServerRead:
    cluster: dict[str, Any] = dict(COUNTERS)
    cluster["collected_at"] = NOW + timedelta(seconds=seconds)
    for name, delta in changes.items():
        cluster[name] += delta
    return ServerRead(cluster, (), (), (), (), None, None, {})


def by_check(findings: list[Finding]) -> dict[str, Finding]:
    return {f.check: f for f in findings}


def test_thresholds_from_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        "[health]\nconnections_warn = 70\nlock_wait_crit = 30\ncache_hit_warn = 99\n"
        "nonsense_warn = 1\nidle_in_transaction_warn = 'soon'\n"
        "deadlocks_warn = 20\n"  # above its crit (10): both defaults kept
    )
    loaded = load_file_config(path)
    limits = loaded.values["health"]
    assert limits.connections == (70.0, 95.0)
    assert limits.lock_wait == (10.0, 30.0)
    assert limits.cache_hit == (99.0, 90.0)
    assert limits.idle_in_transaction == Thresholds().idle_in_transaction
    assert limits.deadlocks == Thresholds().deadlocks
    warnings = " | ".join(loaded.warnings)
    assert "unknown health threshold 'nonsense_warn'" in warnings
    assert "idle_in_transaction_warn must be a number" in warnings
    assert "deadlocks_crit is milder than deadlocks_warn" in warnings
    assert parse_thresholds([1], "here")[1] == ["here: [health] must be a table of thresholds"]


def test_rates_need_two_reads_and_enough_data() -> None:
    limits = Thresholds()
    first = by_check(rate_findings(read(), None, limits))
    assert {f.status for f in first.values()} == {Status.UNKNOWN}
    quiet = by_check(rate_findings(read(60, xact_commit=50, blks_hit=500), read(), limits))
    assert quiet["rollbacks"].status is Status.UNKNOWN, "50 transactions: too few"
    assert quiet["cache_hit"].status is Status.UNKNOWN, "500 blocks: too few"
    assert quiet["deadlocks"].status is Status.OK
    assert quiet["requested_checkpoints"].summary == "no checkpoint in the last 1m00s"
    busy = by_check(
        rate_findings(
            read(
                60,
                xact_commit=800,
                xact_rollback=200,
                blks_hit=90_000,
                blks_read=10_000,
                deadlocks=3,
                checkpoints_requested=3,
                checkpoints_timed=1,
                temp_bytes=200 * 2**20,
            ),
            read(),
            limits,
        )
    )
    assert (busy["rollbacks"].status, busy["rollbacks"].value) == (Status.WARN, 20.0)
    assert (busy["cache_hit"].status, busy["cache_hit"].value) == (Status.CRIT, 90.0)
    assert (busy["deadlocks"].status, busy["deadlocks"].value) == (Status.WARN, 3.0)
    assert (busy["requested_checkpoints"].status, busy["requested_checkpoints"].value) == (
        Status.WARN,
        75.0,
    )
    assert (busy["temp_files"].status, busy["temp_files"].value) == (Status.WARN, 200.0)


def test_session_checks_of_the_incident() -> None:
    snapshot = incident_snapshot()
    found = by_check(session_findings(snapshot, Thresholds()))
    assert found["connections"].status is Status.OK
    assert found["lock_wait"].target == Target("blocker", pid=4101)
    assert root_blocker(snapshot, 4103) == 4101
    assert found["idle_in_transaction"].target == Target("session", pid=4101)
    strict = replace(Thresholds(), connections=(5.0, 9.0))
    assert by_check(session_findings(snapshot, strict))["connections"].status is Status.CRIT


def test_session_checks_pick_the_oldest_client_session_first_listed_on_a_tie() -> None:
    def ago(seconds: float) -> datetime:
        return NOW - timedelta(seconds=seconds)

    sessions = (
        # A background worker is never a finding, however old.
        backend(1, backend_type="autovacuum worker", xact_start=ago(900)),
        backend(2, state="idle in transaction", state_change=ago(40), xact_start=ago(50)),
        backend(3, state="idle in transaction", state_change=ago(40), xact_start=ago(60)),
        backend(4, state="active", wait_event_type="Lock", query_start=ago(25), xact_start=ago(30)),
        # No statement start: the state change dates the wait.
        backend(5, state="active", wait_event_type="Lock", query_start=None, state_change=ago(26)),
        backend(6, query="<insufficient privilege>", state=None, state_change=None),
        backend(7, backend_type="walsender", query="<insufficient privilege>"),
    )
    snapshot = replace(
        incident_snapshot(),
        backends=sessions,
        capabilities=replace(
            incident_snapshot().capabilities, is_superuser=False, read_all_stats=False
        ),
    )
    found = by_check(session_findings(snapshot, Thresholds()))
    assert found["idle_in_transaction"].target == Target("session", pid=2)
    assert found["idle_in_transaction"].value == 40.0
    assert found["lock_wait"].target == Target("blocker", pid=5)
    assert found["lock_wait"].value == 26.0
    assert found["long_transaction"].target == Target("session", pid=3)
    assert found["long_transaction"].value == 60.0
    # One client session is hidden (the walsender is not a client).
    assert "1 sessions of other roles not visible" in found["long_transaction"].summary


def test_the_header_names_the_worst_findings_once_per_session() -> None:
    findings = session_findings(incident_snapshot(), Thresholds())
    data = HealthData(NOW, ordered(findings), None)
    text = health_text(data, Trend(), 200).plain
    assert text.startswith("CRIT lock wait")
    assert text.count("(pid 4101)") + text.count("(pid 4102)") <= 2
    ok = HealthData(NOW, (Finding("archiver", Status.OK, "off"),), None)
    assert health_text(ok, Trend(), 80).plain == "health ok"
    assert health_text(None, Trend(), 80).plain == "health: checking…"


def test_a_sparkline_per_figure_once_there_are_two_buckets() -> None:
    trend = Trend()
    snapshot = incident_snapshot()
    trend.add(snapshot)
    assert trend.lines() == []
    later = replace(
        snapshot, counters=replace(snapshot.counters, collected_at=NOW + timedelta(seconds=20))
    )
    trend.add(later)
    assert [name for name, _ in trend.lines()] == ["tps", "active", "waiting", "conns"]
    assert all(len(line) == 2 for _, line in trend.lines())


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (Target("blocker", pid=7), ("locks", (7,))),
        (Target("session", pid=7), ("activity", 7)),
        (Target("table", oid=5, name="s.t"), ("vacuum", 5)),
        (Target("index", oid=6, name="s.i"), ("indexes", 6)),
        (Target("slot", name="x"), ("replication", "x")),
        (Target("database", name="db"), ("vacuum", None)),
        (Target("statement", statement=(1, 2, 3, True)), ("queries", (1, 2, 3, True))),
    ],
)
def test_each_finding_leads_to_where_you_act(target: Target, expected: tuple[Any, ...]) -> None:
    assert destination(target)[:2] == expected
