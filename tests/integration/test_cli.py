"""``pgtop`` as a user runs it, against real servers: snapshots and start-up failures.

Every run is a subprocess with no terminal. A failure to start must be one ``pgtop:`` line
on stderr with the documented exit code, in ``--once`` mode and in UI mode alike (the
connection is opened before any UI is drawn), and must never show a password.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import POOL_SIZE, Pooled
from psycopg.conninfo import make_conninfo

from pgtop.cluster import Bouncer, Cluster
from pgtop.pg import EXIT_AUTH, EXIT_BUSY, EXIT_UNREACHABLE

#: Keys of every row of ``--once activity --format json``.
ACTIVITY_KEYS = {
    "pid",
    "database",
    "user",
    "application_name",
    "client_addr",
    "backend_type",
    "state",
    "wait_event_type",
    "wait_event",
    "backend_start",
    "xact_start",
    "query_start",
    "blocked_by",
    "query",
}

#: How pgtop is started: printing one snapshot, or the full-screen UI.
MODES = {"once": ["--once", "activity"], "ui": []}

#: A query spread over two lines with an escape sequence and a bell in a comment.
NASTY_QUERY = "SELECT 1 /* \x1b[31m red \x07 */,\n pg_sleep(30)"


# -- helpers -----------------------------------------------------------------------------------


def run_pgtop(tmp_path: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``python -m pgtop ARGS`` with no terminal, no config file and no PG* variables.

    No password file either: a password is only ever what the test passes.
    """
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
        timeout=timeout,
        check=False,
    )


def assert_fails(proc: subprocess.CompletedProcess[str], code: int, tmp_path: Path) -> str:
    """pgtop exited with ``code`` after one ``pgtop:`` line on stderr; return the line."""
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("pgtop: "), proc.stderr
    assert proc.returncode == code, proc.stderr
    assert proc.stdout == "", "nothing (no UI, no table) is shown when pgtop cannot start"
    assert "FATAL" not in lines[0], "libpq's layers of prefixes are stripped"
    crash_logs = list((tmp_path / "logs").glob("crash-*")) if (tmp_path / "logs").exists() else []
    assert crash_logs == [], "a start-up failure is not a crash"
    return lines[0]


def once_json(tmp_path: Path, dsn: str) -> dict[str, Any]:
    proc = run_pgtop(tmp_path, "--once", "activity", "--format", "json", dsn)
    assert "Traceback" not in proc.stderr
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert proc.stdout.endswith("\n")
    assert proc.stdout.count("\n") == 1, "one JSON document on one line"
    document: dict[str, Any] = json.loads(proc.stdout)
    return document


def once_text(tmp_path: Path, dsn: str) -> str:
    proc = run_pgtop(tmp_path, "--once", "activity", "--format", "text", dsn)
    assert "Traceback" not in proc.stderr
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    return proc.stdout


def stage_query(sessions: Any, application_name: str, sql: str) -> int:
    """Run ``sql`` in a new session until the test ends; return its pid once it is active."""
    conn = sessions.open(application_name)
    pid: int = conn.info.backend_pid
    sessions.run_in_background(conn, sql)
    sessions.wait_until(
        "SELECT EXISTS (SELECT FROM pg_stat_activity"
        " WHERE pid = %s AND state = 'active' AND query = %s)",
        [pid, sql],
    )
    return pid


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def try_connect(conninfo: str) -> psycopg.OperationalError | None:
    """Open and close a connection; return why it failed, or None."""
    try:
        psycopg.connect(conninfo, connect_timeout=5).close()
    except psycopg.OperationalError as exc:
        return exc
    return None


def rows_by_pid(document: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {row["pid"]: row for row in document["rows"]}


# -- --once activity ---------------------------------------------------------------------------


def test_once_json_shows_a_running_query(
    dsn: str, pg_cluster: Cluster, sessions: Any, tmp_path: Path
) -> None:
    pid = stage_query(sessions, "once-probe", "SELECT pg_sleep(30)")

    document = once_json(tmp_path, dsn)

    assert document["tab"] == "activity"
    server = document["server"]
    assert server["version"] == pg_cluster.psql("SHOW server_version")
    assert server["version_num"] == int(pg_cluster.psql("SHOW server_version_num"))
    assert server["is_standby"] is False
    collected_at = datetime.fromisoformat(server["collected_at"])
    assert collected_at.tzinfo is not None
    assert abs(datetime.now(timezone.utc) - collected_at) < timedelta(minutes=5)

    rows = document["rows"]
    assert rows
    for row in rows:
        assert row.keys() >= ACTIVITY_KEYS, sorted(ACTIVITY_KEYS - row.keys())
        assert isinstance(row["blocked_by"], list)

    probe = rows_by_pid(document)[pid]
    assert probe["application_name"] == "once-probe"
    assert probe["state"] == "active"
    assert probe["query"] == "SELECT pg_sleep(30)"
    assert "pg_sleep(30)" in probe["query"]
    assert probe["user"] == "postgres"
    assert probe["database"] == "postgres"
    assert probe["client_addr"] == "127.0.0.1"
    assert probe["backend_type"] == "client backend"
    assert (probe["wait_event_type"], probe["wait_event"]) == ("Timeout", "PgSleep")
    assert probe["blocked_by"] == []
    for field in ("backend_start", "xact_start", "query_start"):
        assert datetime.fromisoformat(probe[field]) <= collected_at

    # pgtop's own monitoring connection is not part of what it reports.
    assert [row for row in rows if row["application_name"] == "pgtop"] == []


def test_once_text_shows_a_running_query(dsn: str, sessions: Any, tmp_path: Path) -> None:
    pid = stage_query(sessions, "once-probe", "SELECT pg_sleep(30)")

    lines = once_text(tmp_path, dsn).splitlines()

    assert lines[0].split() == [
        "PID",
        "DATABASE",
        "USER",
        "APPLICATION",
        "STATE",
        "WAIT",
        "XACT",
        "AGE",
        "QUERY",
        "AGE",
        "BLOCKED",
        "BY",
        "QUERY",
    ]
    (probe,) = [line for line in lines if line.startswith(f"{pid} ")]
    assert "once-probe" in probe
    assert " active " in probe
    assert "Timeout:PgSleep" in probe
    assert probe.endswith("SELECT pg_sleep(30)")
    assert [line for line in lines if re.search(r"\spgtop\s", line)] == []


def test_once_shows_control_characters_safely(dsn: str, sessions: Any, tmp_path: Path) -> None:
    pid = stage_query(sessions, "once-nasty", NASTY_QUERY)

    document = once_json(tmp_path, dsn)
    assert rows_by_pid(document)[pid]["query"] == NASTY_QUERY  # JSON keeps the text as it is

    text = once_text(tmp_path, dsn)
    assert "\x1b" not in text
    assert "\x07" not in text
    (line,) = [line for line in text.splitlines() if line.startswith(f"{pid} ")]
    assert line.endswith("SELECT 1 /* \\e[31m red ^G */, pg_sleep(30)")
    assert "once-nasty" in line


# -- start-up failures -------------------------------------------------------------------------


@pytest.mark.parametrize("mode", sorted(MODES))
def test_connection_refused(tmp_path: Path, mode: str) -> None:
    port = free_port()
    proc = run_pgtop(tmp_path, *MODES[mode], f"host=127.0.0.1 port={port}")
    line = assert_fails(proc, EXIT_UNREACHABLE, tmp_path)
    assert f"127.0.0.1:{port}" in line
    assert "refused" in line.lower()


@pytest.mark.parametrize("mode", sorted(MODES))
def test_unknown_host(tmp_path: Path, mode: str) -> None:
    proc = run_pgtop(tmp_path, *MODES[mode], "host=nonexistent.invalid")
    line = assert_fails(proc, EXIT_UNREACHABLE, tmp_path)
    assert "nonexistent.invalid" in line


@pytest.mark.parametrize("mode", sorted(MODES))
def test_missing_database(pg_cluster: Cluster, tmp_path: Path, mode: str) -> None:
    proc = run_pgtop(tmp_path, *MODES[mode], pg_cluster.conninfo("no_such_db"))
    line = assert_fails(proc, EXIT_AUTH, tmp_path)
    assert 'database "no_such_db" does not exist' in line


@pytest.mark.parametrize("mode", sorted(MODES))
def test_missing_role(pg_cluster: Cluster, tmp_path: Path, mode: str) -> None:
    proc = run_pgtop(tmp_path, *MODES[mode], "-U", "no_such_role", pg_cluster.conninfo())
    line = assert_fails(proc, EXIT_AUTH, tmp_path)
    assert 'role "no_such_role" does not exist' in line


@pytest.mark.parametrize("mode", sorted(MODES))
def test_tls_required_but_not_offered(pg_cluster: Cluster, tmp_path: Path, mode: str) -> None:
    proc = run_pgtop(tmp_path, *MODES[mode], pg_cluster.conninfo(sslmode="require"))
    line = assert_fails(proc, EXIT_UNREACHABLE, tmp_path)
    assert "SSL" in line


@pytest.fixture
def password_cluster(new_cluster: Callable[..., Cluster]) -> Cluster:
    """A cluster where role ``alice`` (password ``right-pw``) must give her password over TCP."""
    cluster = new_cluster()
    cluster.psql("CREATE ROLE alice LOGIN PASSWORD 'right-pw'")
    (cluster.datadir / "pg_hba.conf").write_text(
        "local all all trust\n"
        f"host all {cluster.superuser} 127.0.0.1/32 trust\n"
        "host all all 127.0.0.1/32 scram-sha-256\n"
    )
    assert cluster.psql("SELECT pg_reload_conf()") == "t"
    # The postmaster rereads pg_hba.conf asynchronously: wait until it asks alice.
    deadline = time.monotonic() + 10
    while (refusal := try_connect(cluster.conninfo(user="alice"))) is None:
        assert time.monotonic() < deadline, "pg_hba.conf was not reloaded"
        time.sleep(0.05)
    assert "no password supplied" in str(refusal)
    assert try_connect(cluster.conninfo(user="alice", password="right-pw")) is None
    return cluster


def test_wrong_or_missing_password(password_cluster: Cluster, tmp_path: Path) -> None:
    cluster = password_cluster
    uri = f"postgresql://alice:wrong@127.0.0.1:{cluster.port}/postgres"
    attempts = {
        "keyword": [cluster.conninfo(user="alice", password="wrong")],
        "quoted": [cluster.conninfo(user="alice") + " password='wrong wrong'"],
        "uri": [uri],
        "option": ["-U", "alice", cluster.conninfo(password="wrong")],
    }
    for mode, mode_args in MODES.items():
        for how, args in attempts.items():
            proc = run_pgtop(tmp_path, *mode_args, *args)
            line = assert_fails(proc, EXIT_AUTH, tmp_path)
            assert 'password authentication failed for user "alice"' in line, (mode, how)
            assert "wrong" not in proc.stderr, (mode, how)


@pytest.mark.parametrize(
    "flags",
    [["-w"], [], ["-W"]],
    ids=["never-prompt", "no-terminal-to-prompt-on", "prompt-without-terminal"],
)
def test_no_password(password_cluster: Cluster, tmp_path: Path, flags: list[str]) -> None:
    # With no terminal there is no prompt: pgtop must fail, not wait for input.
    for mode_args in MODES.values():
        proc = run_pgtop(tmp_path, *mode_args, *flags, password_cluster.conninfo(user="alice"))
        line = assert_fails(proc, EXIT_AUTH, tmp_path)
        assert "no password supplied" in line


@pytest.fixture
def full_cluster(new_cluster: Callable[..., Cluster]) -> Iterator[Cluster]:
    """A cluster whose every non-reserved connection slot is taken by role ``filler``."""
    cluster = new_cluster(settings={"max_connections": "5", "superuser_reserved_connections": "1"})
    cluster.psql("CREATE ROLE filler LOGIN")
    conns: list[psycopg.Connection[Any]] = []
    try:
        for _ in range(10):
            try:
                conns.append(psycopg.connect(cluster.conninfo(user="filler"), connect_timeout=5))
            except psycopg.OperationalError as exc:
                refusal = str(exc)
                break
        else:
            pytest.fail("the server accepted more connections than max_connections")
        assert "remaining connection slots are reserved" in refusal
        assert len(conns) == 4
        yield cluster
    finally:
        for conn in conns:
            conn.close()


def test_too_many_connections(full_cluster: Cluster, tmp_path: Path) -> None:
    for mode_args in MODES.values():
        proc = run_pgtop(tmp_path, *mode_args, full_cluster.conninfo(user="filler"))
        line = assert_fails(proc, EXIT_BUSY, tmp_path)
        assert "no free connection slots" in line
        assert "reserved" in line
    # A superuser still gets one of the reserved slots and sees who took the others.
    document = once_json(tmp_path, full_cluster.conninfo())
    fillers = [row for row in document["rows"] if row["user"] == "filler"]
    assert len(fillers) == 4


@pytest.fixture
def silent_listener() -> Iterator[int]:
    """A port on 127.0.0.1 that completes TCP handshakes and then never says a word."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield int(sock.getsockname()[1])


@pytest.mark.parametrize("mode", sorted(MODES))
def test_connect_timeout(silent_listener: int, tmp_path: Path, mode: str) -> None:
    conninfo = make_conninfo("", host="127.0.0.1", port=str(silent_listener), connect_timeout="2")
    started = time.monotonic()
    proc = run_pgtop(tmp_path, *MODES[mode], conninfo, timeout=30)
    elapsed = time.monotonic() - started
    line = assert_fails(proc, EXIT_UNREACHABLE, tmp_path)
    assert f"127.0.0.1:{silent_listener}" in line
    assert "timeout" in line
    assert elapsed < 10


def test_interactive_view_without_a_terminal_says_so(dsn: str, tmp_path: Path) -> None:
    """Connected, but no terminal: one line pointing at --once, never a UI on a pipe."""
    line = assert_fails(run_pgtop(tmp_path, dsn), 2, tmp_path)
    assert "needs a terminal" in line
    assert "--once" in line


def run_in_terminal(tmp_path: Path, conninfo: str, shown: bytes) -> bytes:
    """Run pgtop in a pseudo-terminal of 120x30 until ``shown`` is on its screen, then
    press ``q``: it exits with 0. Returns everything it wrote."""
    import fcntl
    import pty
    import select
    import struct
    import termios

    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "TEXTUAL"))}
    env.update(
        PGTOP_CONFIG=str(tmp_path / "no-such-config.toml"),
        PGTOP_LOG_DIR=str(tmp_path / "logs"),
        TERM="xterm-256color",
        LANG="C.UTF-8",
    )
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 120, 0, 0))
    proc = subprocess.Popen(
        ["setsid", "-c", sys.executable, "-m", "pgtop", "-w", conninfo],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        close_fds=True,
    )
    os.close(slave)
    output = bytearray()

    def read_until(done: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not done() and time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # the program has exited and closed the terminal
                    return
                if not chunk:
                    return
                output.extend(chunk)

    try:
        read_until(lambda: shown in output, 30)
        assert shown in output, bytes(output[-2000:])
        os.write(master, b"q")
        read_until(lambda: proc.poll() is not None, 15)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    text = bytes(output)
    assert b"Traceback" not in text
    return text


def test_interactive_view_in_a_real_terminal(dsn: str, sessions: Any, tmp_path: Path) -> None:
    """In a pseudo-terminal: the first screen shows a running session, ``q`` quits with 0,
    and the terminal is handed back (alternate screen left, cursor shown)."""
    busy = sessions.open(application_name="pty-visible-session")
    sessions.run_in_background(busy, "SELECT /* ptyvisible */ pg_sleep(60)")
    sessions.wait_until(
        "SELECT EXISTS (SELECT FROM pg_stat_activity"
        " WHERE application_name = 'pty-visible-session' AND state = 'active')"
    )
    text = run_in_terminal(tmp_path, dsn, b"ptyvisible")
    # Leaving: the alternate screen is left and the cursor shown again, after the UI.
    assert text.rfind(b"\x1b[?1049l") > text.find(b"ptyvisible")
    assert b"\x1b[?25h" in text[text.rfind(b"\x1b[?1049l") - 200 :]


# -- --once connections ------------------------------------------------------------------------

#: Keys of every row of ``--once connections --format json``.
CONNECTIONS_KEYS = {
    "database",
    "user",
    "application_name",
    "client_addr",
    "total",
    "active",
    "idle",
    "idle_in_transaction",
    "waiting",
    "oldest_idle_s",
    "oldest_xact_s",
}


def test_once_connections_groups_the_sessions(
    pg_cluster: Cluster, staged_groups: Any, tmp_path: Path
) -> None:
    proc = run_pgtop(tmp_path, "--once", "connections", "--format", "json", pg_cluster.conninfo())
    assert proc.returncode == 0, proc.stderr
    document = json.loads(proc.stdout)
    assert list(document) == [
        "tab",
        "server",
        "max_connections",
        "reserved_connections",
        "rows",
    ]
    assert document["tab"] == "connections"
    assert document["max_connections"] == int(pg_cluster.psql("SHOW max_connections"))
    reserved = int(pg_cluster.psql("SHOW superuser_reserved_connections"))
    if pg_cluster.version_num >= 160000:
        reserved += int(pg_cluster.psql("SHOW reserved_connections"))
    assert document["reserved_connections"] == reserved
    assert document["server"]["version_num"] == pg_cluster.version_num
    for row in document["rows"]:
        assert set(row) == CONNECTIONS_KEYS
    rows = {row["application_name"]: row for row in document["rows"]}
    idle, busy = rows[staged_groups.idle], rows[staged_groups.busy]
    assert (idle["total"], idle["idle"], idle["oldest_xact_s"]) == (3, 3, None)
    assert idle["oldest_idle_s"] >= 0
    assert (busy["total"], busy["active"], busy["idle_in_transaction"], busy["waiting"]) == (
        3,
        2,
        1,
        1,
    )
    assert busy["client_addr"] == "127.0.0.1"
    assert "pgtop" not in rows, "pgtop's own session is not counted"

    text = run_pgtop(tmp_path, "--once", "connections", pg_cluster.conninfo())
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0] == f"max_connections {document['max_connections']}  " + (
        f"reserved_connections {reserved}"
    )
    assert lines[1].split()[:5] == ["DATABASE", "USER", "APPLICATION", "CLIENT", "TOTAL"]
    (line,) = [line for line in lines if staged_groups.busy in line]
    assert line.split()[:6] == [
        "postgres",
        "postgres",
        staged_groups.busy,
        "127.0.0.1",
        "3",
        "1.5%",
    ]


# -- PgBouncer's admin console -----------------------------------------------------------------

#: Keys of every row of ``--once pools --format json``.
POOLS_KEYS = {
    "database",
    "user",
    "cl_active",
    "cl_waiting",
    "sv_active",
    "sv_idle",
    "sv_used",
    "maxwait_s",
    "pool_mode",
    "pool_size",
}


def wait_for_waiting(bouncer: Bouncer, count: int) -> None:
    """Until PgBouncer counts ``count`` clients of database postgres waiting."""
    deadline = time.monotonic() + 10
    with psycopg.connect(bouncer.conninfo(), autocommit=True) as console:
        while True:
            pools = console.execute("SHOW POOLS").fetchall()
            if any(row[0] == "postgres" and row[3] == count for row in pools):
                return
            assert time.monotonic() < deadline, pools
            time.sleep(0.05)


def test_once_pools_shows_the_waiting_clients(
    bouncer: Bouncer, pooled: Pooled, tmp_path: Path
) -> None:
    pooled.hold(POOL_SIZE, "holder")
    pooled.wait(3, "waiter")
    wait_for_waiting(bouncer, 3)

    proc = run_pgtop(tmp_path, "--once", "pools", "--format", "json", bouncer.conninfo())
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    document = json.loads(proc.stdout)
    assert document["tab"] == "pools"
    assert document["server"]["software"] == "PgBouncer"
    assert document["server"]["version"][0].isdigit()
    for row in document["rows"]:
        assert set(row) == POOLS_KEYS
    (pool,) = [row for row in document["rows"] if row["database"] == "postgres"]
    assert pool["user"] == "postgres"
    assert (pool["cl_active"], pool["cl_waiting"]) == (POOL_SIZE, 3)
    assert (pool["sv_active"], pool["sv_idle"], pool["sv_used"]) == (POOL_SIZE, 0, 0)
    assert pool["maxwait_s"] > 0
    assert (pool["pool_mode"], pool["pool_size"]) == ("session", POOL_SIZE)

    # The Health check of the console: clients waiting for a server.
    health = run_pgtop(tmp_path, "--once", "health", "--format", "json", bouncer.conninfo())
    assert health.returncode in (0, 8, 9), health.stderr
    document = json.loads(health.stdout)
    assert document["server"]["software"] == "PgBouncer"
    (check,) = document["rows"]
    assert check["check"] == "pooler_wait"
    assert check["value"] > 0
    assert check["summary"].startswith("3 clients waiting for a server in 1 pools; pool postgres/")

    text = run_pgtop(tmp_path, "--once", "pools", bouncer.conninfo(user="monitor"))
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0].split()[:4] == ["DATABASE", "USER", "CL_ACTIVE", "CL_WAITING"]
    (line,) = [line for line in lines if line.startswith("postgres ")]
    assert line.split()[:4] == ["postgres", "postgres", str(POOL_SIZE), "3"]


def test_the_console_has_pools_only(bouncer: Bouncer, pg_cluster: Cluster, tmp_path: Path) -> None:
    line = assert_fails(run_pgtop(tmp_path, "--once", "activity", bouncer.conninfo()), 2, tmp_path)
    assert "PgBouncer admin console" in line
    assert "it has pools" in line
    line = assert_fails(run_pgtop(tmp_path, "--once", "pools", pg_cluster.conninfo()), 2, tmp_path)
    assert "not a PgBouncer admin console" in line
    # A pooled database is neither PostgreSQL as pgtop reads it, nor the console.
    pooled_db = bouncer.conninfo("postgres")
    line = assert_fails(run_pgtop(tmp_path, "--once", "activity", pooled_db), 2, tmp_path)
    assert "dbname=pgbouncer" in line


def test_the_pools_view_in_a_real_terminal(
    bouncer: Bouncer, pooled: Pooled, tmp_path: Path
) -> None:
    """pgtop pointed at the console recognises it and opens the Pools view."""
    pooled.hold(POOL_SIZE, "holder")
    pooled.wait(1, "waiter")
    wait_for_waiting(bouncer, 1)
    text = run_in_terminal(tmp_path, bouncer.conninfo(), b"client waiting for a server")
    assert b"PgBouncer " in text
    assert b"Activity" not in text
