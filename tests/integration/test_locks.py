"""The blocking forest against what pg_blocking_pids() says, on staged real lock waits.

Each scenario stages real sessions, waits until the server shows the expected waits, then
reads pgtop's view (the Activity poll, the lock details, the tree) and checks that its
edges equal the server's own pg_blocking_pids() and nothing more, and that the tree has the
expected shape.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from collecting import context, once_source

from pgtop import pg
from pgtop.collectors.activity import ActivityCollector
from pgtop.collectors.locks import Forest, LocksCollector, LocksData, build_forest
from pgtop.reports import locks as locks_report

Edge = tuple[int, int]

RUNBOOK_QUERY = """
SELECT blocked.pid AS blocked_pid, blocking.pid AS blocking_pid
FROM pg_stat_activity blocked
JOIN pg_locks blocked_locks ON blocked.pid = blocked_locks.pid
JOIN pg_locks blocking_locks ON blocking_locks.locktype = blocked_locks.locktype
JOIN pg_stat_activity blocking ON blocking.pid = blocking_locks.pid
WHERE NOT blocked_locks.granted AND blocking_locks.granted
"""
"""The runbook's self-join, as it circulates: pairs joined on the lock type alone."""


def _table(sessions: Any, rows: int = 3) -> str:
    name = f"locks_{uuid.uuid4().hex[:10]}"
    sessions.admin.execute(f"CREATE TABLE {name} (id int PRIMARY KEY, v int)")
    sessions.admin.execute(f"INSERT INTO {name} SELECT g, 0 FROM generate_series(1, {rows}) g")
    return name


def _pid(conn: psycopg.Connection[Any]) -> int:
    return conn.info.backend_pid


def _waits_for(sessions: Any, pid: int, blockers: int) -> None:
    """Wait until ``pid`` waits on a lock, is blocked by ``blockers`` sessions, and its wait
    start is recorded (PostgreSQL 14+ sets it a moment after the wait begins)."""
    sessions.wait_until(
        "SELECT a.wait_event_type = 'Lock' AND cardinality(pg_blocking_pids(a.pid)) = %s "
        "AND (current_setting('server_version_num')::int < 140000 OR EXISTS ("
        "  SELECT FROM pg_locks l WHERE l.pid = a.pid AND NOT l.granted"
        "  AND l.waitstart IS NOT NULL)) "
        "FROM pg_stat_activity a WHERE a.pid = %s",
        (blockers, pid),
    )


def _begin(sessions: Any, name: str, *statements: str) -> psycopg.Connection[Any]:
    """A session with an open transaction that ran ``statements``."""
    conn: psycopg.Connection[Any] = sessions.open(application_name=name)
    conn.execute("BEGIN")
    for sql in statements:
        conn.execute(sql)
    return conn


def _wait_behind(sessions: Any, conn: psycopg.Connection[Any], sql: str, blockers: int) -> int:
    """Run ``sql`` on ``conn`` in the background until it waits; its pid."""
    sessions.run_in_background(conn, sql)
    _waits_for(sessions, _pid(conn), blockers)
    return _pid(conn)


def server_edges(sessions: Any) -> set[Edge]:
    """Every (blocked, blocking) pair the server reports, for every waiting session."""
    rows = sessions.admin.execute(
        "SELECT pid, pg_blocking_pids(pid) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
    ).fetchall()
    return {(pid, blocker) for pid, blockers in rows for blocker in blockers}


async def pgtop_view(dsn: str) -> tuple[LocksData, Forest]:
    """What the Locks tab gets on one poll: Activity, then the waiters' locks, then the tree."""
    conn = await pg.connect(dsn)
    try:
        caps = await pg.probe(conn)
        activity = await ActivityCollector(caps, frozenset({conn.info.backend_pid})).collect(conn)
        data = await LocksCollector(context(caps)).collect(conn, activity, None, due=True)
    finally:
        await conn.close()
    return data, build_forest(data.activity, data.waits_by_pid())


def paths(forest: Forest) -> list[tuple[int, ...]]:
    return [node.path for node in forest.nodes]


async def check(dsn: str, sessions: Any, expected: set[Edge]) -> tuple[LocksData, Forest]:
    """The server reports exactly ``expected``, and so does pgtop."""
    assert server_edges(sessions) == expected
    data, forest = await pgtop_view(dsn)
    assert set(forest.edges) == expected
    assert len(forest.edges) == len(expected)
    assert server_edges(sessions) == expected, "the staged waits held still"
    # Every edge shows in the tree, under its blocker, and the tree shows no other.
    shown = {(node.path[-1], node.path[-2]) for node in forest.nodes if len(node.path) > 1}
    assert shown == expected
    return data, forest


async def test_a_chain_of_three_row_lock_waits(dsn: str, sessions: Any) -> None:
    t = _table(sessions)
    a = _begin(sessions, "chain-a", f"UPDATE {t} SET v = 1 WHERE id = 1")
    b = _begin(sessions, "chain-b", f"UPDATE {t} SET v = 1 WHERE id = 2")
    pb = _wait_behind(sessions, b, f"UPDATE {t} SET v = 2 WHERE id = 1", 1)
    c = _begin(sessions, "chain-c", f"UPDATE {t} SET v = 1 WHERE id = 3")
    pc = _wait_behind(sessions, c, f"UPDATE {t} SET v = 2 WHERE id = 2", 1)
    d = sessions.open(application_name="chain-d")
    pd = _wait_behind(sessions, d, f"UPDATE {t} SET v = 2 WHERE id = 3", 1)
    pa = _pid(a)

    data, forest = await check(dsn, sessions, {(pb, pa), (pc, pb), (pd, pc)})
    assert paths(forest) == [(pa,), (pa, pb), (pa, pb, pc), (pa, pb, pc, pd)]
    assert [n.prefix for n in forest.nodes] == ["", "└─ ", "   └─ ", "      └─ "]
    root = forest.nodes[0]
    assert (root.blocks_direct, root.blocks_total) == (1, 3)
    assert root.backend is not None
    assert root.backend.state == "idle in transaction"
    assert forest.waiting == tuple(sorted((pb, pc, pd)))

    # Each waiter waits for the transaction id of the one ahead of it.
    xids = {b.pid: b.backend_xid for b in data.activity.backends}
    waits = data.waits_by_pid()
    assert set(waits) == {pb, pc, pd}
    for waiter, holder in ((pb, pa), (pc, pb), (pd, pc)):
        wait = waits[waiter]
        assert (wait.locktype, wait.mode) == ("transactionid", "ShareLock")
        assert wait.transactionid == xids[holder]
        assert wait.label == f"ShareLock xid {xids[holder]}"
        assert wait.waitstart is not None
        assert wait.waitstart <= data.activity.collected_at


async def test_one_waiter_behind_two_holders_of_a_shared_lock(dsn: str, sessions: Any) -> None:
    t = _table(sessions)
    h1 = _begin(sessions, "share-1", f"LOCK TABLE {t} IN SHARE MODE")
    h2 = _begin(sessions, "share-2", f"LOCK TABLE {t} IN SHARE MODE")
    w = _begin(sessions, "wants-exclusive")
    pw = _wait_behind(sessions, w, f"LOCK TABLE {t} IN EXCLUSIVE MODE", 2)
    p1, p2 = _pid(h1), _pid(h2)

    data, forest = await check(dsn, sessions, {(pw, p1), (pw, p2)})
    # Both holders are roots blocking one session; the older transaction comes first. The
    # waiter appears under each, with a key of its own.
    assert paths(forest) == [(p1,), (p1, pw), (p2,), (p2, pw)]
    assert forest.roots == (p1, p2)
    wait = data.waits_by_pid()[pw]
    assert (wait.locktype, wait.mode, wait.relation) == ("relation", "ExclusiveLock", f"public.{t}")
    assert forest.nodes[1].wait == wait
    assert forest.nodes[3].wait == wait


async def test_advisory_lock_waits(dsn: str, sessions: Any) -> None:
    big_key = 2**40 + 7
    holder = sessions.open(application_name="advisory-holder")
    holder.execute("SELECT pg_advisory_lock(%s::bigint), pg_advisory_lock(1, -2)", (big_key,))
    w1 = sessions.open(application_name="advisory-bigint")
    p1 = _wait_behind(sessions, w1, f"SELECT pg_advisory_lock({big_key}::bigint)", 1)
    w2 = sessions.open(application_name="advisory-pair")
    p2 = _wait_behind(sessions, w2, "SELECT pg_advisory_lock(1, -2)", 1)
    ph = _pid(holder)

    data, forest = await check(dsn, sessions, {(p1, ph), (p2, ph)})
    assert paths(forest) == [(ph,), (ph, p1), (ph, p2)]
    assert (forest.nodes[0].blocks_direct, forest.nodes[0].blocks_total) == (2, 2)
    waits = data.waits_by_pid()
    assert (waits[p1].locktype, waits[p1].mode) == ("advisory", "ExclusiveLock")
    assert waits[p1].target == f"advisory {big_key}"
    assert waits[p2].target == "advisory 1,-2"


async def test_a_lock_queue_behind_a_waiting_alter_table(dsn: str, sessions: Any) -> None:
    t = _table(sessions)
    long_tx = _begin(sessions, "long-tx", f"SELECT count(*) FROM {t}")
    alter = sessions.open(application_name="migration")
    pa = _wait_behind(sessions, alter, f"ALTER TABLE {t} ADD COLUMN note text", 1)
    s1 = sessions.open(application_name="reader-1")
    ps1 = _wait_behind(sessions, s1, f"SELECT count(*) FROM {t}", 1)
    s2 = sessions.open(application_name="reader-2")
    ps2 = _wait_behind(sessions, s2, f"SELECT count(*) FROM {t}", 1)
    pl = _pid(long_tx)

    # The readers do not conflict with the long transaction's lock, only with the
    # ALTER TABLE queued ahead of them: the server reports that, and so does pgtop.
    data, forest = await check(dsn, sessions, {(pa, pl), (ps1, pa), (ps2, pa)})
    assert paths(forest) == [(pl,), (pl, pa), (pl, pa, ps1), (pl, pa, ps2)]
    assert [n.prefix for n in forest.nodes] == ["", "└─ ", "   ├─ ", "   └─ "]
    assert (forest.nodes[0].blocks_direct, forest.nodes[0].blocks_total) == (1, 3)
    assert (forest.nodes[1].blocks_direct, forest.nodes[1].blocks_total) == (2, 2)
    waits = data.waits_by_pid()
    assert (waits[pa].mode, waits[pa].relation) == ("AccessExclusiveLock", f"public.{t}")
    assert (waits[ps1].mode, waits[ps1].relation) == ("AccessShareLock", f"public.{t}")
    assert waits[ps2].label == f"AccessShareLock public.{t}"


async def test_two_unrelated_chains_most_blocking_first(dsn: str, sessions: Any) -> None:
    t1, t2 = _table(sessions), _table(sessions)
    # The short chain's root has the older transaction; the longer chain still comes first.
    y1 = _begin(sessions, "y-root", f"UPDATE {t2} SET v = 1 WHERE id = 1")
    y2 = sessions.open(application_name="y-wait")
    py2 = _wait_behind(sessions, y2, f"UPDATE {t2} SET v = 2 WHERE id = 1", 1)
    x1 = _begin(sessions, "x-root", f"UPDATE {t1} SET v = 1 WHERE id = 1")
    x2 = _begin(sessions, "x-mid", f"UPDATE {t1} SET v = 1 WHERE id = 2")
    px2 = _wait_behind(sessions, x2, f"UPDATE {t1} SET v = 2 WHERE id = 1", 1)
    x3 = sessions.open(application_name="x-leaf")
    px3 = _wait_behind(sessions, x3, f"UPDATE {t1} SET v = 2 WHERE id = 2", 1)
    px1, py1 = _pid(x1), _pid(y1)

    _, forest = await check(dsn, sessions, {(px2, px1), (px3, px2), (py2, py1)})
    assert forest.roots == (px1, py1)
    assert paths(forest) == [(px1,), (px1, px2), (px1, px2, px3), (py1,), (py1, py2)]


async def test_the_runbook_self_join_pairs_strangers_where_pgtop_does_not(
    dsn: str, sessions: Any
) -> None:
    # A chain of three sessions on rows, and an unrelated advisory-lock wait.
    t = _table(sessions)
    a = _begin(sessions, "rb-a", f"UPDATE {t} SET v = 1 WHERE id = 1")
    b = _begin(sessions, "rb-b", f"UPDATE {t} SET v = 1 WHERE id = 2")
    pb = _wait_behind(sessions, b, f"UPDATE {t} SET v = 2 WHERE id = 1", 1)
    c = sessions.open(application_name="rb-c")
    pc = _wait_behind(sessions, c, f"UPDATE {t} SET v = 2 WHERE id = 2", 1)
    d = sessions.open(application_name="rb-d")
    d.execute("SELECT pg_advisory_lock(4242)")
    e = sessions.open(application_name="rb-e")
    pe = _wait_behind(sessions, e, "SELECT pg_advisory_lock(4242)", 1)
    pa, pd = _pid(a), _pid(d)
    staged = {pa, pb, pc, pd, pe}
    true_edges = {(pb, pa), (pc, pb), (pe, pd)}

    runbook = {
        (blocked, blocking)
        for blocked, blocking in sessions.admin.execute(RUNBOOK_QUERY).fetchall()
        if blocked in staged and blocking in staged
    }
    # Every waiting transaction id is paired with every transaction holding its own id,
    # itself included: seven pairs where three are true.
    assert true_edges <= runbook
    false_pairs = runbook - true_edges
    assert false_pairs, runbook
    assert len(runbook) == 7, sorted(runbook)
    assert (pc, pa) in false_pairs  # a holds nothing c wants
    assert (pb, pb) in false_pairs  # b "blocks" itself

    _, forest = await check(dsn, sessions, true_edges)
    assert not set(forest.edges) & false_pairs


async def test_nothing_is_read_when_no_one_waits(dsn: str) -> None:
    conn = await pg.connect(dsn)
    caps = await pg.probe(conn)
    activity = await ActivityCollector(caps, frozenset({conn.info.backend_pid})).collect(conn)
    assert not any(b.waiting_on_lock for b in activity.backends)
    await conn.close()
    # A closed connection fails any statement: the collector must not send one.
    data = await LocksCollector(context(caps)).collect(conn, activity, None, due=True)
    assert data.waits == ()
    assert build_forest(data.activity).nodes == ()


async def test_locks_report_has_one_row_per_true_edge(dsn: str, sessions: Any) -> None:
    t = _table(sessions)
    holder = _begin(sessions, "report-holder", f"UPDATE {t} SET v = 1 WHERE id = 1")
    w1 = sessions.open(application_name="report-w1")
    p1 = _wait_behind(sessions, w1, f"UPDATE {t} SET v = 2 WHERE id = 1 /* w1 */", 1)
    ph = _pid(holder)

    async with once_source(dsn) as source:
        report = await locks_report.report(source)
    assert [(r["blocked_pid"], r["blocking_pid"]) for r in report.rows] == [(p1, ph)]
    (row,) = report.rows
    assert row["locktype"] == "transactionid"
    assert row["mode"] == "ShareLock"
    assert row["relation"] is None
    assert row["wait_seconds"] is not None
    assert row["wait_seconds"] >= 0
    assert row["blocked_state"] == "active"
    assert row["blocked_query"] == f"UPDATE {t} SET v = 2 WHERE id = 1 /* w1 */"
    assert row["blocking_state"] == "idle in transaction"
    assert row["blocking_query"] == f"UPDATE {t} SET v = 1 WHERE id = 1"


def _run_once(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["PGTOP_CONFIG"] = str(tmp_path / "no-such-config.toml")
    env["PGTOP_LOG_DIR"] = str(tmp_path / "logs")
    env["PGPASSFILE"] = str(tmp_path / "no-such-pgpass")
    return subprocess.run(
        [sys.executable, "-m", "pgtop", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("output", ["json", "text"])
def test_once_locks_from_the_command_line(
    dsn: str, sessions: Any, tmp_path: Path, output: str
) -> None:
    t = _table(sessions)
    h1 = _begin(sessions, "once-share-1", f"LOCK TABLE {t} IN SHARE MODE")
    h2 = _begin(sessions, "once-share-2", f"LOCK TABLE {t} IN SHARE MODE")
    w = _begin(sessions, "once-wants")
    pw = _wait_behind(sessions, w, f"LOCK TABLE {t} IN EXCLUSIVE MODE", 2)
    p1, p2 = _pid(h1), _pid(h2)

    proc = _run_once(tmp_path, "--once", "locks", "--format", output, dsn)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    if output == "json":
        document = json.loads(proc.stdout)
        assert document["tab"] == "locks"
        pairs = [(r["blocked_pid"], r["blocking_pid"]) for r in document["rows"]]
        assert sorted(pairs) == sorted([(pw, p1), (pw, p2)])
        for row in document["rows"]:
            assert row["locktype"] == "relation"
            assert row["mode"] == "ExclusiveLock"
            assert row["relation"] == f"public.{t}"
            assert isinstance(row["wait_seconds"], float)
            assert row["blocked_state"] == "active"
            assert row["blocked_query"] == f"LOCK TABLE {t} IN EXCLUSIVE MODE"
            assert row["blocking_state"] == "idle in transaction"
            assert row["blocking_query"] == f"LOCK TABLE {t} IN SHARE MODE"
    else:
        lines = proc.stdout.splitlines()
        assert lines[0].split()[:2] == ["BLOCKED", "BLOCKING"]
        body = [line.split() for line in lines[1:]]
        assert sorted((int(cells[0]), int(cells[1])) for cells in body) == sorted(
            [(pw, p1), (pw, p2)]
        )
        assert all(f"ExclusiveLock public.{t}" in line for line in lines[1:])
