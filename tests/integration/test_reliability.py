"""An unlucky environment: texts in other encodings, a killed action connection, a full
server, a database pgtop may not enter, broken output, bad command lines."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from pgtop import pg
from pgtop.actions import ActionConnectionLostError, ActionRunner, plan_session
from pgtop.cluster import Cluster
from pgtop.collectors.activity import ActivityCollector
from pgtop.config import write_crash_log
from pgtop.model import Backend
from pgtop.pg import EXIT_OUTPUT, EXIT_USAGE


def run_pgtop(tmp_path: Path, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["PGTOP_CONFIG"] = str(tmp_path / "no-such-config.toml")
    env["PGTOP_LOG_DIR"] = str(tmp_path / "logs")
    options: dict[str, Any] = {"capture_output": True, "text": True}
    options.update(kwargs)
    return subprocess.run(
        [sys.executable, "-m", "pgtop", *args],
        stdin=subprocess.DEVNULL,
        env=env,
        timeout=60,
        check=False,
        **options,
    )


# -- texts in other encodings -----------------------------------------------------------------


@pytest.fixture
def encodings(new_cluster: Callable[..., Cluster]) -> Iterator[tuple[Cluster, dict[str, str]]]:
    """A SQL_ASCII and a LATIN1 database, each with a session running a query whose bytes
    are not UTF-8, and a table named with such bytes. On a server of their own: their
    statements make pg_stat_statements' texts unreadable from UTF-8 databases."""
    pg_cluster = new_cluster()
    pg_cluster.psql("CREATE EXTENSION pg_stat_statements")
    tag = uuid.uuid4().hex[:8]
    names = {"SQL_ASCII": f"ascii_{tag}", "LATIN1": f"latin_{tag}"}
    for encoding, name in names.items():
        pg_cluster.psql(
            f"CREATE DATABASE {name} ENCODING '{encoding}' LC_COLLATE 'C' LC_CTYPE 'C' "
            "TEMPLATE template0"
        )
        pg_cluster.psql("CREATE EXTENSION pg_stat_statements", dbname=name)
    conns: list[psycopg.Connection[Any]] = []
    threads = []
    for encoding, query in (
        ("SQL_ASCII", b"SELECT /* bytes */ '\xc3\x28', pg_sleep(60)"),
        ("LATIN1", b"SELECT /* latin */ 'caf\xe9', pg_sleep(60)"),
    ):
        conn = psycopg.connect(
            pg_cluster.conninfo(names[encoding], application_name=f"enc-{tag}"),
            autocommit=True,
            client_encoding="SQL_ASCII",
        )
        conns.append(conn)
        conn.execute(
            b'CREATE TABLE "t\xe9\xff" (id int)'
            if encoding == "LATIN1"
            else b'CREATE TABLE "t\xe9\xff\xe9" (id int)'
        )
        thread = threading.Thread(target=_quietly, args=(conn, query), daemon=True)
        thread.start()
        threads.append(thread)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        waiting = pg_cluster.psql(
            f"SELECT count(*) FROM pg_stat_activity WHERE application_name = 'enc-{tag}' "
            "AND wait_event = 'PgSleep'"
        )
        if waiting == "2":
            break
        time.sleep(0.05)
    try:
        yield pg_cluster, names
    finally:
        for name in names.values():
            pg_cluster.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        for conn in conns:
            conn.close()
        for thread in threads:
            thread.join(10)


def _quietly(conn: psycopg.Connection[Any], query: bytes) -> None:
    with contextlib.suppress(psycopg.Error):
        conn.execute(query)


def test_a_sql_ascii_database_does_not_blind_pgtop(
    encodings: tuple[Cluster, dict[str, str]], tmp_path: Path
) -> None:
    """Connected to a SQL_ASCII database while sessions run texts that are not UTF-8: every
    refresh works, a LATIN1 text reads as LATIN1, undecodable bytes show as \\xNN."""
    pg_cluster, names = encodings
    ascii_db = pg_cluster.conninfo(names["SQL_ASCII"])

    async def polls(conninfo: str) -> list[Backend]:
        conn = await pg.connect(conninfo)
        try:
            caps = await pg.probe(conn)
            collector = ActivityCollector(caps, frozenset({conn.info.backend_pid}))
            for _ in range(3):
                snapshot = await collector.collect(conn)
            return list(snapshot.backends)
        finally:
            await conn.close()

    for conninfo in (ascii_db, pg_cluster.conninfo()):
        queries = [b.query for b in asyncio.run(polls(conninfo))]
        assert "SELECT /* latin */ 'café', pg_sleep(60)" in queries
        assert "SELECT /* bytes */ '\udcc3(', pg_sleep(60)" in queries

    text = run_pgtop(tmp_path, "--once", "activity", ascii_db)
    assert text.returncode == 0, text.stderr
    assert "'café'" in text.stdout
    assert "'\\xc3('" in text.stdout
    document = run_pgtop(tmp_path, "--once", "activity", "--format", "json", ascii_db)
    assert document.returncode == 0, document.stderr
    rows = json.loads(document.stdout)["rows"]
    assert "SELECT /* bytes */ '\ufffd(', pg_sleep(60)" in [row["query"] for row in rows]
    for db, shown in ((names["SQL_ASCII"], "t\\xe9\\xff\\xe9"), (names["LATIN1"], "téÿ")):
        tables = run_pgtop(tmp_path, "--once", "tables", pg_cluster.conninfo(db))
        assert tables.returncode == 0, tables.stderr
        assert shown in tables.stdout
    assert not (tmp_path / "logs").exists(), "no crash log"

    # pg_stat_statements converts every text to the reading database's encoding: from a
    # UTF-8 database, the SQL_ASCII statement's bytes make every text unreadable. The
    # counters still come, and pgtop says why the texts do not.
    from_utf8 = run_pgtop(tmp_path, "--once", "queries", "--format", "json", pg_cluster.conninfo())
    assert from_utf8.returncode == 0, from_utf8.stderr
    (warning,) = from_utf8.stderr.splitlines()
    assert "statement texts cannot be read here" in warning
    assert json.loads(from_utf8.stdout)["rows"]
    from_ascii = run_pgtop(tmp_path, "--once", "queries", "--format", "json", ascii_db)
    assert from_ascii.returncode == 0, from_ascii.stderr
    assert from_ascii.stderr == ""
    texts = [row["query"] for row in json.loads(from_ascii.stdout)["rows"]]
    # Each read in its own database's encoding: LATIN1's, and bytes as U+FFFD in JSON.
    assert 'CREATE TABLE "téÿ" (id int)' in texts
    assert 'CREATE TABLE "t\ufffd\ufffd\ufffd" (id int)' in texts


# -- the action connection --------------------------------------------------------------------


def _victim(sessions: Any, **open_args: Any) -> Backend:
    name = f"victim-{uuid.uuid4().hex[:6]}"
    sessions.run_in_background(sessions.open(name, **open_args), "SELECT pg_sleep(60)")
    sessions.wait_until(
        "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE application_name = %s "
        "AND wait_event = 'PgSleep')",
        (name,),
    )

    async def find() -> Backend:
        conn = await pg.connect(sessions.cluster.conninfo())
        try:
            caps = await pg.probe(conn)
            snapshot = await ActivityCollector(caps, frozenset()).collect(conn)
        finally:
            await conn.close()
        (backend,) = [b for b in snapshot.backends if b.application_name == name]
        return backend

    return asyncio.run(find())


def test_a_killed_action_connection_is_opened_again(dsn: str, sessions: Any) -> None:
    """The server ends the action connection while pgtop sits idle: the next action and the
    check while idle open it again at once."""
    target = _victim(sessions)

    async def go() -> tuple[int, int, int, Any]:
        runner = ActionRunner(dsn, None, 3.0)
        try:
            await runner.connect()
            first = runner.pid
            assert first is not None
            sessions.admin.execute("SELECT pg_terminate_backend(%s)", (first,))
            await asyncio.sleep(0.3)
            assert await runner.keep_alive() == ""
            second = runner.pid
            assert second is not None
            sessions.admin.execute("SELECT pg_terminate_backend(%s)", (second,))
            await asyncio.sleep(0.3)
            outcome = await runner.run(plan_session("terminate", target))
            third = runner.pid
            assert third is not None
            return first, second, third, outcome
        finally:
            await runner.close()

    first, second, third, outcome = asyncio.run(go())
    assert len({first, second, third}) == 3
    assert outcome.ok, outcome.message
    sessions.wait_until(
        "SELECT NOT EXISTS (SELECT FROM pg_stat_activity WHERE pid = %s)", (target.pid,)
    )


@pytest.fixture
def crowded(new_cluster: Callable[..., Cluster]) -> Cluster:
    """Room for 5 sessions of ordinary roles (and 3 reserved for superusers)."""
    cluster = new_cluster(settings={"max_connections": "8"})
    cluster.psql(
        "CREATE ROLE ops LOGIN IN ROLE pg_signal_backend, pg_read_all_stats; CREATE ROLE app LOGIN"
    )
    return cluster


def test_a_full_server_still_lets_pgtop_signal(crowded: Cluster) -> None:
    """The action connection is gone and the server has no slot left to open it again: a
    terminate goes through the monitoring connection, and pgtop's header does not count
    the dead backend."""
    conns = []
    victim = psycopg.connect(crowded.conninfo(user="app", application_name="victim"))
    conns.append(victim)

    async def go() -> Any:
        monitor = await pg.connect(crowded.conninfo(user="ops"))
        runner = ActionRunner(crowded.conninfo(user="ops"), None, 3.0)
        try:
            caps = await pg.probe(monitor)
            await runner.connect()
            action_pid = runner.pid
            assert action_pid is not None
            own = frozenset({monitor.info.backend_pid, action_pid})
            before = await ActivityCollector(caps, own).collect(monitor)
            crowded.psql(f"SELECT pg_terminate_backend({action_pid})")
            # Every slot for ordinary roles is taken now.
            while True:
                try:
                    conns.append(psycopg.connect(crowded.conninfo(user="app"), connect_timeout=5))
                except psycopg.OperationalError:
                    break
            after = await ActivityCollector(caps, own).collect(monitor)  # a full read
            # The header counts pgtop's backends the server still has: one, now.
            assert (before.counters.own_alive, after.counters.own_alive) == (2, 1)
            clients = sum(1 for b in after.backends if b.is_client)
            assert after.client_connections == clients + 1
            target = next(b for b in after.backends if b.application_name == "victim")
            with pytest.raises(ActionConnectionLostError, match="slots"):
                await runner.run(plan_session("terminate", target))
            assert "slots" in await runner.keep_alive()
            # What the app then does: signal through the monitoring connection.
            from pgtop.actions import send_signal, signal_done, watch_signal

            plan = plan_session("terminate", target)
            assert await send_signal(monitor, plan) is None
            return await watch_signal(lambda: signal_done(monitor, plan), plan)
        finally:
            await runner.close()
            await monitor.close()

    try:
        outcome = asyncio.run(go())
        assert outcome.ok, outcome.message
        assert "is gone" in outcome.message
    finally:
        for conn in conns:
            conn.close()


# -- the command line -------------------------------------------------------------------------


def test_output_to_a_full_disk_is_one_line(dsn: str, tmp_path: Path) -> None:
    with open("/dev/full", "w") as full:
        proc = run_pgtop(
            tmp_path,
            "--once",
            "activity",
            dsn,
            stdout=full,
            capture_output=False,
            stderr=subprocess.PIPE,
        )
    assert proc.returncode == EXIT_OUTPUT
    assert proc.stderr.splitlines() == ["pgtop: cannot write the output: No space left on device"]
    assert not (tmp_path / "logs").exists(), "a full disk is no crash"


@pytest.mark.parametrize("args", [["-p", "abc"], ["service=nope"], ["host=x port=1,2,3"]])
def test_a_connection_string_that_cannot_work_is_bad_usage(tmp_path: Path, args: list[str]) -> None:
    proc = run_pgtop(tmp_path, "--once", "activity", *args)
    assert proc.returncode == EXIT_USAGE, proc.stderr
    assert len(proc.stderr.splitlines()) == 1


def test_a_given_application_name_is_kept(dsn: str, sessions: Any) -> None:
    """Defaults apply only when not given: pgtop still knows its own backend."""

    async def go() -> tuple[int, list[Backend], Any]:
        conn = await pg.connect(f"{dsn} application_name=night-shift-monitor")
        try:
            caps = await pg.probe(conn)
            own = conn.info.backend_pid
            snapshot = await ActivityCollector(caps, frozenset({own})).collect(conn)
            name = sessions.admin.execute(
                "SELECT application_name FROM pg_stat_activity WHERE pid = %s", (own,)
            ).fetchone()
            return own, list(snapshot.backends), name
        finally:
            await conn.close()

    own, backends, name = asyncio.run(go())
    assert name == ("night-shift-monitor",)
    assert own not in {b.pid for b in backends}


def test_the_same_error_writes_one_crash_log(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("PGTOP_LOG_DIR", str(tmp_path))

    def fail() -> None:
        raise RuntimeError("a collector bug")

    paths = []
    for _ in range(5):
        try:
            fail()
        except RuntimeError as exc:
            paths.append(write_crash_log(exc))
    assert len(set(paths)) == 1
    assert len(list(tmp_path.glob("crash-*"))) == 1


async def test_a_request_given_up_keeps_the_connection_until_it_ends(dsn: str) -> None:
    """A detail closed (or a read started again) while its request runs: the request ends
    on the connection before the next one starts there, and nothing is lost."""
    from pgtop.config import Settings
    from pgtop.source import LiveSource

    source = LiveSource(Settings(conninfo=dsn, read_only=True))
    ended: list[str] = []

    async def slow(conn: Any) -> str:
        await conn.execute("SELECT pg_sleep(0.5)")
        ended.append(f"slow on {conn.info.backend_pid}")
        return "slow"

    async def quick(conn: Any) -> str:
        cur = await conn.execute("SELECT 42 AS answer")
        row = await cur.fetchone()
        return f"{row['answer']} on {conn.info.backend_pid}"

    try:
        first = asyncio.ensure_future(source.run(slow))
        await asyncio.sleep(0.2)
        first.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await first
        (slow_ran,) = ended  # the work given up ended on the connection
        pid = slow_ran.removeprefix("slow on ")
        assert await source.run(quick) == f"42 on {pid}"  # the same connection, unharmed
    finally:
        await source.close()
