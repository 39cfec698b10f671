"""The Health checks on real servers: a healthy cluster is all ok, and each staged problem
turns its own check (and no other) to warn or crit, as ``--once health`` reports it."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from collecting import context
from psycopg.conninfo import conninfo_to_dict

from pgtop import pg
from pgtop.cli import main
from pgtop.cluster import Cluster
from pgtop.collectors.activity import ActivityCollector
from pgtop.collectors.health import CHECKS, HealthCollector, Status
from pgtop.reports.health import EXIT_CRIT, EXIT_WARN


def once_health(
    conninfo: str, capsys: pytest.CaptureFixture[str]
) -> tuple[int, dict[str, dict[str, Any]]]:
    """``pgtop --once health --format json``: its exit status and its rows by check."""
    code = main(["--once", "health", "--format", "json", conninfo])
    document = json.loads(capsys.readouterr().out)
    assert document["tab"] == "health"
    rows = {row["check"]: row for row in document["rows"]}
    assert sorted(rows) == sorted(CHECKS)
    return code, rows


def others(rows: dict[str, dict[str, Any]], *checks: str) -> dict[str, str]:
    """The checks but ``checks`` that are not ok or unknown: none, when nothing else is wrong."""
    return {
        check: row["status"]
        for check, row in rows.items()
        if check not in checks and row["status"] not in ("ok", "unknown")
    }


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """Write pgtop's config file for this test."""

    def write(text: str) -> None:
        path = tmp_path / "config.toml"
        path.write_text(text)
        monkeypatch.setenv("PGTOP_CONFIG", str(path))

    monkeypatch.setenv("PGTOP_CONFIG", str(tmp_path / "absent.toml"))
    return write


def dbname(conninfo: str) -> str:
    return str(conninfo_to_dict(conninfo)["dbname"])


def test_a_fresh_cluster_is_healthy(
    new_cluster: Callable[..., Cluster],
    config: Callable[[str], None],
    capsys: pytest.CaptureFixture[str],
) -> None:
    cluster = new_cluster()
    code, rows = once_health(cluster.conninfo(), capsys)
    assert code == 0
    assert {row["status"] for row in rows.values()} <= {"ok", "unknown"}
    for row in rows.values():
        if row["status"] == "unknown":
            assert row["summary"], "an unknown check says why"
    # A single read cannot give a rate: said, not guessed.
    assert rows["deadlocks"]["status"] == "unknown"
    assert "second read" in rows["deadlocks"]["summary"]
    assert rows["connections"]["status"] == "ok"
    assert rows["xid_wraparound"]["target"]["kind"] == "database"


def test_idle_in_transaction_with_thresholds_from_the_config_file(
    fresh_db: str,
    sessions: Any,
    config: Callable[[str], None],
    capsys: pytest.CaptureFixture[str],
) -> None:
    config("[health]\nidle_in_transaction_warn = 1\nidle_in_transaction_crit = 600\n")
    idle = sessions.open("health-idle", dbname=dbname(fresh_db))
    idle.execute("BEGIN")
    idle.execute("SELECT 1")
    pid = idle.info.backend_pid
    time.sleep(1.5)
    code, rows = once_health(fresh_db, capsys)
    row = rows["idle_in_transaction"]
    assert row["status"] == "warn", row
    assert (row["warn"], row["crit"]) == (1.0, 600.0)
    assert row["target"] == {"kind": "session", "pid": pid}
    assert f"pid {pid}" in row["summary"]
    assert others(rows, "idle_in_transaction") == {}
    assert code == EXIT_WARN


def test_a_lock_chain_leads_to_its_root_blocker(
    fresh_db: str,
    sessions: Any,
    config: Callable[[str], None],
    capsys: pytest.CaptureFixture[str],
) -> None:
    config("[health]\nlock_wait_warn = 0.5\nlock_wait_crit = 1\n")
    db = dbname(fresh_db)
    sessions.admin.execute(f'CREATE TABLE IF NOT EXISTS "t_{db}" (id int PRIMARY KEY)')
    holder = sessions.open("health-holder", dbname="postgres")
    holder.execute("BEGIN")
    holder.execute(f'LOCK TABLE "t_{db}" IN ACCESS EXCLUSIVE MODE')
    first = sessions.open("health-first", dbname="postgres")
    sessions.run_in_background(first, f'SELECT count(*) FROM "t_{db}"')
    second = sessions.open("health-second", dbname="postgres")
    sessions.run_in_background(second, f'SELECT count(*) FROM "t_{db}"')
    sessions.wait_until(
        "SELECT count(*) = 2 FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
        " AND application_name LIKE 'health-%%'"
    )
    time.sleep(1.2)
    code, rows = once_health(fresh_db, capsys)
    row = rows["lock_wait"]
    assert row["status"] == "crit", row
    assert row["target"] == {"kind": "blocker", "pid": holder.info.backend_pid}
    assert others(rows, "lock_wait") == {}
    assert code == EXIT_CRIT
    holder.rollback()
    sessions.admin.execute(f'DROP TABLE "t_{db}"')


def test_connections_nearly_full(
    new_cluster: Callable[..., Cluster],
    config: Callable[[str], None],
    capsys: pytest.CaptureFixture[str],
) -> None:
    cluster = new_cluster(settings={"max_connections": "10"})  # 7 open to ordinary roles
    held = [psycopg.connect(cluster.conninfo(), autocommit=True) for _ in range(5)]
    try:
        code, rows = once_health(cluster.conninfo(), capsys)
    finally:
        for conn in held:
            conn.close()
    row = rows["connections"]
    assert row["status"] == "warn", row  # 5 and pgtop's own: 6 of 7
    assert row["value"] == pytest.approx(100 * 6 / 7)
    assert "6 of 7 connection slots" in row["summary"]
    # The 5 sessions are one application's (no application_name): 5 of 7 slots, over 50 %.
    application = rows["application_slots"]
    assert application["status"] == "warn", application
    assert application["summary"].startswith("application (no application_name) holds 5 of 7")
    assert others(rows, "connections", "application_slots") == {}
    assert code == EXIT_WARN


def test_an_inactive_slot_retaining_wal(
    dsn: str,
    sessions: Any,
    config: Callable[[str], None],
    capsys: pytest.CaptureFixture[str],
) -> None:
    name = f"health_{uuid.uuid4().hex[:8]}"
    admin = sessions.admin
    admin.execute("SELECT pg_create_physical_replication_slot(%s, true)", (name,))
    try:
        admin.execute("CREATE TABLE IF NOT EXISTS health_wal (v text)")
        admin.execute(
            "INSERT INTO health_wal SELECT repeat('x', 1000) FROM generate_series(1, 2000)"
        )
        admin.execute("SELECT pg_switch_wal()")
        code, rows = once_health(dsn, capsys)
        retained = admin.execute(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)"
            " FROM pg_replication_slots WHERE slot_name = %s",
            (name,),
        ).fetchone()
    finally:
        admin.execute("SELECT pg_drop_replication_slot(%s)", (name,))
        admin.execute("DROP TABLE IF EXISTS health_wal")
    row = rows["replication_slots"]
    assert row["status"] == "warn", row
    assert row["target"] == {"kind": "slot", "name": name}
    assert f"slot {name}" in row["summary"]
    assert "inactive" in row["summary"]
    assert retained is not None
    assert int(retained[0]) > 2_000_000
    assert others(rows, "replication_slots") == {}
    assert code == EXIT_WARN


def test_an_invalid_index_from_a_failed_concurrent_build(
    fresh_db: str,
    sessions: Any,
    config: Callable[[str], None],
    capsys: pytest.CaptureFixture[str],
) -> None:
    db = sessions.open("health-stage", dbname=dbname(fresh_db))
    db.execute("CREATE TABLE dup (v int)")
    db.execute("INSERT INTO dup VALUES (1), (1)")
    with pytest.raises(psycopg.errors.UniqueViolation):
        db.execute("CREATE UNIQUE INDEX CONCURRENTLY dup_v_key ON dup (v)")
    oid = db.execute("SELECT 'dup_v_key'::regclass::oid::bigint").fetchone()
    code, rows = once_health(fresh_db, capsys)
    row = rows["invalid_indexes"]
    assert row["status"] == "warn", row
    assert oid is not None
    assert row["target"] == {"kind": "index", "oid": oid[0], "name": "public.dup_v_key"}
    assert others(rows, "invalid_indexes") == {}
    assert code == EXIT_WARN


async def test_rates_come_from_two_reads_and_the_statuses_date_from_when_they_began(
    fresh_db: str, sessions: Any
) -> None:
    conn = await pg.connect(fresh_db)
    try:
        caps = await pg.probe(conn)
        activity = ActivityCollector(caps, frozenset({conn.info.backend_pid}))
        collector = HealthCollector(context(caps))
        first = await collector.collect(conn, await activity.collect(conn), None, due=True)
        by_check = {f.check: f for f in first.findings}
        assert by_check["cache_hit"].status is Status.UNKNOWN
        work = sessions.open("health-work", dbname=dbname(fresh_db))
        work.execute("CREATE TABLE big AS SELECT g FROM generate_series(1, 500000) g")
        for _ in range(6):  # some 13,000 block reads: enough to judge
            work.execute("SELECT count(*) FROM big")
        work.execute("SELECT pg_stat_force_next_flush()")
        work.execute("SELECT 1")
        await asyncio.sleep(0.2)
        second = await collector.collect(conn, await activity.collect(conn), None, due=True)
        by_check = {f.check: f for f in second.findings}
        hit = by_check["cache_hit"]
        assert hit.status is not Status.UNKNOWN, hit
        assert "block reads" in hit.summary
        assert by_check["rollbacks"].status is Status.UNKNOWN or by_check["rollbacks"].value == 0
        # A status kept keeps its date; between slow reads only the sessions are checked.
        same = await collector.collect(conn, await activity.collect(conn), None, due=False)
        kept = {f.check: f for f in same.findings}
        archiver = next(f for f in first.findings if f.check == "archiver")
        assert kept["archiver"].since == by_check["archiver"].since == archiver.since
        assert archiver.since == first.collected_at
        assert same.read_at == second.read_at
    finally:
        await conn.close()
