"""The Replication tab's data on a real primary and its streaming standby, as
``--once replication`` reports it: the figures agree with the server's own."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from collecting import context
from conftest import STANDBY_NAME, STANDBY_SLOT

from pgtop import pg
from pgtop.actions import RefusedError, plan_checkpoint
from pgtop.cli import main
from pgtop.cluster import Cluster
from pgtop.collectors.replication import WALDIR_PRIVILEGE, ReplicationCollector
from pgtop.model import CheckpointTarget

SEGMENT = 16 * 1024 * 1024


def once(conninfo: str, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """``pgtop --once replication --format json``."""
    assert main(["--once", "replication", "--format", "json", conninfo]) == 0
    document: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert document["tab"] == "replication"
    return document


def rows_of(document: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [row for row in document["rows"] if row["kind"] == kind]


def wait_until(conn: psycopg.Connection[Any], query: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not conn.execute(query).fetchone()[0]:  # type: ignore[index]
        assert time.monotonic() < deadline, f"timed out waiting for: {query}"
        time.sleep(0.1)


@pytest.fixture
def primary(replicated: tuple[Cluster, Cluster]) -> Iterator[psycopg.Connection[Any]]:
    conn = psycopg.connect(replicated[0].conninfo(), autocommit=True)
    try:
        yield conn
    finally:
        conn.close()


@pytest.fixture
def standby(replicated: tuple[Cluster, Cluster]) -> Iterator[psycopg.Connection[Any]]:
    conn = psycopg.connect(replicated[1].conninfo(), autocommit=True)
    try:
        yield conn
    finally:
        conn.execute("SELECT pg_wal_replay_resume()")
        conn.close()


def write_wal(conn: psycopg.Connection[Any], rows: int = 2000) -> None:
    conn.execute("CREATE TABLE IF NOT EXISTS replication_wal (v text)")
    conn.execute(
        "INSERT INTO replication_wal SELECT repeat('x', 1000) FROM generate_series(1, %s)",
        (rows,),
    )


def test_a_streaming_standby_and_its_lag_while_replay_is_paused(
    replicated: tuple[Cluster, Cluster],
    primary: psycopg.Connection[Any],
    standby: psycopg.Connection[Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    wait_until(primary, "SELECT count(*) = 1 FROM pg_stat_replication WHERE state = 'streaming'")
    # A transaction replayed first: the standby's replay delay is measured from its commit.
    write_wal(primary, 10)
    primary.execute("SELECT pg_switch_wal()")
    wait_until(primary, "SELECT replay_lsn >= pg_current_wal_lsn() FROM pg_stat_replication")
    standby.execute("SELECT pg_wal_replay_pause()")
    write_wal(primary)
    # Everything is received and flushed by the standby; nothing more is replayed.
    wait_until(
        primary,
        "SELECT flush_lsn = pg_current_wal_lsn() AND replay_lsn < flush_lsn"
        " FROM pg_stat_replication",
    )
    document = once(replicated[0].conninfo(), capsys)
    server = primary.execute(
        "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), sent_lsn)::bigint,"
        " pg_wal_lsn_diff(pg_current_wal_lsn(), flush_lsn)::bigint,"
        " pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint FROM pg_stat_replication"
    ).fetchone()
    assert server is not None
    (row,) = rows_of(document, "standby")
    assert row["application_name"] == STANDBY_NAME
    assert row["client_addr"] == "127.0.0.1"
    assert row["state"] == "streaming"
    assert row["sync_state"] == "async"
    assert row["replay_lag_bytes"] > 1_000_000
    # The server's own differences, read right after: the same but for WAL written between
    # the two reads (a few hundred bytes of background records at most).
    assert abs(row["sent_lag_bytes"] - server[0]) < 8192
    assert abs(row["flush_lag_bytes"] - server[1]) < 8192
    assert abs(row["replay_lag_bytes"] - server[2]) < 8192
    assert row["sent_lag_bytes"] < row["replay_lag_bytes"]
    for field in ("write_lag_bytes", "write_lag_s", "flush_lag_s", "replay_lag_s", "pid"):
        assert field in row
    (slot,) = [r for r in rows_of(document, "slot") if r["slot_name"] == STANDBY_SLOT]
    assert slot["slot_type"] == "physical"
    assert slot["active"] is True
    assert slot["active_pid"] == row["pid"]

    # The standby, seen from pgtop connected to it: its receiver, paused, behind.
    seen = once(replicated[1].conninfo(), capsys)
    assert seen["server"]["is_standby"] is True
    (receiver,) = rows_of(seen, "receiver")
    assert receiver["status"] == "streaming"
    assert receiver["sender_port"] == replicated[0].port
    assert receiver["replay_paused"] is True
    assert receiver["received_lsn"] != receiver["replayed_lsn"]
    assert receiver["replay_delay_s"] > 0
    assert rows_of(seen, "standby") == []


def test_an_inactive_slot_retaining_wal(
    replicated: tuple[Cluster, Cluster],
    primary: psycopg.Connection[Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    name = f"kept_{uuid.uuid4().hex[:8]}"
    primary.execute("SELECT pg_create_physical_replication_slot(%s, true)", (name,))
    try:
        write_wal(primary, 5000)
        primary.execute("SELECT pg_switch_wal()")
        document = once(replicated[0].conninfo(), capsys)
        retained = primary.execute(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint"
            " FROM pg_replication_slots WHERE slot_name = %s",
            (name,),
        ).fetchone()
    finally:
        primary.execute("SELECT pg_drop_replication_slot(%s)", (name,))
    assert retained is not None
    (slot,) = [r for r in rows_of(document, "slot") if r["slot_name"] == name]
    assert slot["slot_type"] == "physical"
    assert slot["active"] is False
    assert slot["active_pid"] is None
    assert slot["wal_status"] in ("reserved", "extended")
    assert slot["retained_bytes"] > 5_000_000
    assert abs(slot["retained_bytes"] - retained[0]) < SEGMENT
    assert slot["database"] is None
    assert slot["plugin"] is None


def test_a_logical_slot(
    replicated: tuple[Cluster, Cluster],
    primary: psycopg.Connection[Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    name = f"decoded_{uuid.uuid4().hex[:8]}"
    primary.execute("SELECT pg_create_logical_replication_slot(%s, 'test_decoding')", (name,))
    try:
        document = once(replicated[0].conninfo(), capsys)
    finally:
        primary.execute("SELECT pg_drop_replication_slot(%s)", (name,))
    (slot,) = [r for r in rows_of(document, "slot") if r["slot_name"] == name]
    assert slot["slot_type"] == "logical"
    assert slot["plugin"] == "test_decoding"
    assert slot["database"] == "postgres"
    assert slot["active"] is False
    assert slot["catalog_xmin"] is not None


def test_the_wal_directory_and_a_failing_archiver(
    replicated: tuple[Cluster, Cluster],
    primary: psycopg.Connection[Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    primary.execute("SELECT pg_switch_wal()")
    wait_until(primary, "SELECT failed_count > 0 FROM pg_stat_archiver")
    document = once(replicated[0].conninfo(), capsys)
    wal = document["wal"]
    listed = primary.execute(
        "SELECT sum(size)::bigint, count(*) FROM pg_ls_waldir() WHERE name ~ '^[0-9A-F]{24}$'"
    ).fetchone()
    assert listed is not None
    assert wal["segments"] == listed[1]
    assert wal["dir_bytes"] >= listed[0]
    assert wal["dir_problem"] is None
    assert wal["rate_bytes_per_s"] is None  # one read: no rate yet
    assert wal["max_wal_size"] == 1024**3
    assert wal["wal_keep_size"] == 0
    archiver = document["archiver"]
    assert archiver["archive_mode"] == "on"
    assert archiver["failed_count"] > 0
    assert archiver["failing"] is True
    assert archiver["last_failed_wal"]
    assert archiver["ready_segments"] >= 1

    assert main(["--once", "replication", "--format", "text", replicated[0].conninfo()]) == 0
    out = capsys.readouterr().out
    assert STANDBY_SLOT in out
    assert "FAILING" in out
    assert f"in {wal['segments']} segments" in out or "pg_wal" in out


async def test_the_wal_rate_from_two_reads_and_a_role_that_may_not_list_the_directory(
    replicated: tuple[Cluster, Cluster], primary: psycopg.Connection[Any]
) -> None:
    conn = await pg.connect(replicated[0].conninfo())
    try:
        collector = ReplicationCollector(context(await pg.probe(conn)))
        first = await collector.collect(conn)
        assert first is not None
        assert first.wal.rate_bytes_per_s is None
        write_wal(primary, 1000)
        second = await collector.collect(conn)
        assert second is not None
        assert second.wal.rate_bytes_per_s is not None
        assert second.wal.rate_bytes_per_s > 0
    finally:
        await conn.close()

    role = f"plain_{uuid.uuid4().hex[:8]}"
    primary.execute(f'CREATE ROLE "{role}" LOGIN')
    try:
        conn = await pg.connect(replicated[0].conninfo(user=role))
        try:
            collector = ReplicationCollector(context(await pg.probe(conn)))
            data = await collector.collect(conn)
        finally:
            await conn.close()
    finally:
        primary.execute(f'DROP ROLE "{role}"')
    assert data is not None
    assert data.wal.dir_problem == WALDIR_PRIVILEGE
    assert data.wal.dir_bytes is None
    assert data.wal.segments is None
    assert {slot.name for slot in data.slots} >= {STANDBY_SLOT}


def test_every_database_sized_and_one_the_role_may_not_read(
    replicated: tuple[Cluster, Cluster],
    primary: psycopg.Connection[Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    closed = f"closed_{uuid.uuid4().hex[:8]}"
    role = f"plain_{uuid.uuid4().hex[:8]}"
    primary.execute(f'CREATE DATABASE "{closed}"')
    primary.execute(f'REVOKE CONNECT ON DATABASE "{closed}" FROM PUBLIC')
    primary.execute(f'CREATE ROLE "{role}" LOGIN')
    try:
        as_superuser = once(replicated[0].conninfo(), capsys)
        as_plain = once(replicated[0].conninfo(user=role), capsys)
        assert (
            main(["--once", "replication", "--format", "text", replicated[0].conninfo(user=role)])
            == 0
        )
        text = capsys.readouterr().out
        sizes = dict(
            primary.execute("SELECT datname, pg_database_size(oid) FROM pg_database").fetchall()
        )
    finally:
        primary.execute(f'DROP DATABASE "{closed}"')
        primary.execute(f'DROP ROLE "{role}"')
    seen = {d["name"]: d for d in as_superuser["databases"]}
    assert set(seen) == set(sizes)
    for name, size_bytes in sizes.items():
        assert seen[name]["readable"] is True
        # Sizes change by a page or two between the reads (statistics, the free space map).
        assert abs(seen[name]["size_bytes"] - size_bytes) < 1024 * 1024
    listed = [d["size_bytes"] for d in as_superuser["databases"]]
    assert listed == sorted(listed, reverse=True)

    plain = {d["name"]: d for d in as_plain["databases"]}
    assert set(plain) == set(sizes)
    assert plain[closed] == {
        "name": closed,
        "size_bytes": None,
        "readable": False,
        "recovery_conflicts": {},
    }
    assert plain["postgres"]["readable"] is True
    assert as_plain["databases"][-1]["name"] == closed
    assert f"{closed} (no access)" in text


def test_a_recovery_conflict_on_the_standby_is_counted_per_database(
    replicated: tuple[Cluster, Cluster],
    primary: psycopg.Connection[Any],
    standby: psycopg.Connection[Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    table = f"conflicted_{uuid.uuid4().hex[:8]}"
    primary.execute(f'CREATE TABLE "{table}" (v int)')
    primary.execute("SELECT pg_switch_wal()")
    wait_until(primary, "SELECT replay_lsn >= pg_current_wal_lsn() FROM pg_stat_replication")
    before = once(replicated[1].conninfo(), capsys)
    (postgres,) = [d for d in before["databases"] if d["name"] == "postgres"]
    locks_before = postgres["recovery_conflicts"].get("lock", 0)
    # A standby transaction holds a lock on the table; the primary's ACCESS EXCLUSIVE lock,
    # replayed, cancels it once max_standby_streaming_delay has passed.
    holder = psycopg.connect(replicated[1].conninfo())
    try:
        holder.execute(f'SELECT * FROM "{table}"')
        primary.execute(f'DROP TABLE "{table}"')
        primary.execute("SELECT pg_switch_wal()")
        wait_until(primary, "SELECT replay_lsn >= pg_current_wal_lsn() FROM pg_stat_replication")
        with pytest.raises(psycopg.OperationalError):
            holder.execute("SELECT 1")
    finally:
        holder.close()
    wait_until(
        standby,
        f"SELECT confl_lock > {locks_before} FROM pg_stat_database_conflicts"
        " WHERE datname = 'postgres'",
    )
    after = once(replicated[1].conninfo(), capsys)
    (postgres,) = [d for d in after["databases"] if d["name"] == "postgres"]
    assert postgres["recovery_conflicts"]["lock"] == locks_before + 1

    assert main(["--once", "replication", "--format", "text", replicated[1].conninfo()]) == 0
    assert "databases: " in capsys.readouterr().out


async def test_the_last_checkpoint_and_who_may_ask_for_one(
    replicated: tuple[Cluster, Cluster], primary: psycopg.Connection[Any]
) -> None:
    role = f"plain_{uuid.uuid4().hex[:8]}"
    primary.execute(f'CREATE ROLE "{role}" LOGIN')
    try:
        datas = []
        for user in (None, role):
            conn = await pg.connect(replicated[0].conninfo(user=user))
            try:
                collector = ReplicationCollector(context(await pg.probe(conn)))
                datas.append(await collector.collect(conn))
            finally:
                await conn.close()
        last = primary.execute("SELECT checkpoint_time FROM pg_control_checkpoint()").fetchone()
    finally:
        primary.execute(f'DROP ROLE "{role}"')
    superuser, plain = datas
    assert superuser is not None
    assert plain is not None
    assert last is not None
    assert superuser.last_checkpoint_time == last[0]
    assert superuser.may_checkpoint is True
    assert plain.may_checkpoint is False
    target = CheckpointTarget(False, None, None)
    with pytest.raises(RefusedError, match="pg_checkpoint"):
        plan_checkpoint(target, plain.may_checkpoint)
    assert plan_checkpoint(target, True).sql_text == "CHECKPOINT"


async def test_a_slow_read_that_times_out_leaves_the_rest_of_the_tab(
    replicated: tuple[Cluster, Cluster],
) -> None:
    conn = await pg.connect(replicated[0].conninfo(), statement_timeout_ms=300)
    try:
        collector = ReplicationCollector(context(await pg.probe(conn)))
        first = await collector.collect(conn)
        assert first is not None
        assert first.databases_problem is None
        # The server cancels a read that outlasts the statement timeout, as it would a
        # pg_database_size walking a huge catalog: the tab says so and keeps what it had.
        assert await collector._slow_read("databases", conn, "SELECT pg_sleep(2)") is None
        again = await collector.collect(conn)
        assert again is not None
        assert again.databases == first.databases
        assert again.databases_problem is not None
        assert "timed out" in again.databases_problem
        assert again.slots
    finally:
        await conn.close()
