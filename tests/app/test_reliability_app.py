"""No failure is silent and no key is lost, in the real app: an action log that cannot be
written, a failed background task, keys typed in a burst after ``/``, a database pgtop may
not enter, a full server, Ctrl-Z."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
import pytest
from canned import CannedSource, incident_snapshot
from helpers import notifications, notified, screen_text, shows, wait_for
from textual import events

from pgtop.actions import plan_session
from pgtop.app import PgTopApp
from pgtop.cluster import Cluster
from pgtop.config import Settings
from pgtop.screens.confirm import ConfirmDialog
from pgtop.screens.session import SessionScreen
from pgtop.widgets.keyed_table import KeyedTable

SIZE = (160, 45)


async def burst(pilot: Any, *keys: str) -> None:
    """Keys that arrive together (a paste, a laggy link): queued before any is handled."""
    app = pilot.app
    driver = app._driver
    for key in keys:
        name = {"/": "slash", " ": "space"}.get(key, key)
        event = events.Key(name, key if len(key) == 1 else None)
        event.set_sender(app)
        driver.send_message(event)
    await pilot.pause(0.3)


def victim(sessions: Any, **options: Any) -> int:
    name = f"victim-{uuid.uuid4().hex[:6]}"
    sessions.run_in_background(sessions.open(name, **options), "SELECT pg_sleep(60)")
    sessions.wait_until(
        "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE application_name = %s "
        "AND wait_event = 'PgSleep')",
        (name,),
    )
    row = sessions.admin.execute(
        "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (name,)
    ).fetchone()
    return int(row[0])


def alive(sessions: Any, pid: int) -> bool:
    row = sessions.admin.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,))
    return bool(row.fetchone()[0])


async def terminate(pilot: Any, app: PgTopApp, pid: int) -> None:
    table = app.screen.query_one("#activity-table", KeyedTable)
    await wait_for(pilot, lambda: pid in [r.key for r in table.visible_rows], "the victim")
    assert table.move_cursor_to_key(pid)
    await pilot.press("K")
    await answer_dialog(pilot, app, "y")


async def answer_dialog(pilot: Any, app: PgTopApp, key: str) -> None:
    """Answer the confirm dialog once it takes answers (a busy machine draws it late)."""

    def armed() -> bool:
        screen = app.screen
        return isinstance(screen, ConfirmDialog) and screen._armed()

    await wait_for(pilot, armed, "the dialog to take answers")
    await pilot.press(key)


@pytest.mark.parametrize("answer", ["y", "n"])
async def test_an_unwritable_action_log_asks_again_and_says_so(
    dsn: str, sessions: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, answer: str
) -> None:
    """The log folder is a file (as a full or read-only disk would): the action is still
    possible, after a second confirmation that says it will not be recorded."""
    blocker = tmp_path / "logs"
    blocker.write_text("not a folder")
    monkeypatch.setenv("PGTOP_LOG_DIR", str(blocker))
    pid = victim(sessions)
    app = PgTopApp(Settings(conninfo=dsn, refresh=0.5))
    async with app.run_test(size=SIZE) as pilot:
        await terminate(pilot, app, pid)
        # (The path is long: the words wrap anywhere around it.)
        await shows(pilot, "File exists", "unrecorded?")
        await answer_dialog(pilot, app, answer)
        if answer == "y":
            await notified(pilot, "not recorded: the action log cannot be written")
            await wait_for(pilot, lambda: not alive(sessions, pid), "the session to end")
        else:
            await notified(pilot, "terminate not run")
            assert alive(sessions, pid)


async def test_a_failing_background_task_reaches_the_screen_and_the_crash_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGTOP_LOG_DIR", str(tmp_path))

    class Broken(CannedSource):
        async def session_detail(self, backend: Any) -> Any:
            raise RuntimeError("the detail query broke")

    app = PgTopApp(Settings(refresh=60), source=Broken(incident_snapshot()))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.snapshot is not None, "the first snapshot")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, SessionScreen), "the detail")
        await notified(pilot, "the detail query broke")
        assert any("load backend detail failed" in n.title for n in app._notifications)
        assert app.is_running
    (log,) = tmp_path.glob("crash-*")
    assert "the detail query broke" in log.read_text()


@pytest.mark.parametrize(("tab", "table"), [("1", "activity"), ("3", "queries"), ("4", "tables")])
async def test_keys_typed_right_after_slash_belong_to_the_filter(tab: str, table: str) -> None:
    """``/queue`` in one burst quit pgtop; ``/ibibib`` toggled idle and background."""
    app = PgTopApp(Settings(refresh=60), source=CannedSource(incident_snapshot()))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.snapshot is not None, "the first snapshot")
        await pilot.press(tab)
        await pilot.pause(0.2)
        await burst(pilot, "/", *"queue\\ibq")
        assert app.is_running
        keyed = app.screen.query_one(f"#{table}-table", KeyedTable)
        assert keyed.filter_text == "queue\\ibq"
        await shows(pilot, "queue\\ibq")  # one backslash, as typed
        assert "queue\\\\ibq" not in screen_text(app)


async def test_a_database_without_connect_backs_off_and_says_why(
    new_cluster: Callable[..., Cluster],
) -> None:
    """The database switcher points the catalog tabs at a database the role may not
    connect to: the tab says why, and pgtop tries again later and later, not every
    refresh (each try is a FATAL line in the server's log)."""
    cluster = new_cluster()
    cluster.psql("CREATE ROLE watcher LOGIN IN ROLE pg_monitor")
    cluster.psql("CREATE DATABASE closed")
    cluster.psql("REVOKE CONNECT ON DATABASE closed FROM PUBLIC")
    app = PgTopApp(Settings(conninfo=cluster.conninfo(user="watcher"), refresh=0.5))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.snapshot is not None, "the first snapshot")
        await pilot.press("4")
        await pilot.press("d")
        switcher = app.screen.query_one("#databases-table", KeyedTable)
        await wait_for(pilot, lambda: "closed" in [r.key for r in switcher.rows], "the list")
        assert switcher.move_cursor_to_key("closed")
        await pilot.press("enter")
        await shows(pilot, "permission denied for database", "next try in")
        started = time.monotonic()
        while time.monotonic() - started < 12:
            await pilot.pause(0.5)
    refusals = cluster.logfile.read_text().count('permission denied for database "closed"')
    assert 1 <= refusals <= 3, f"{refusals} attempts in 12 s at a refresh of 0.5 s"


async def test_a_full_server_terminates_through_the_monitoring_connection(
    new_cluster: Callable[..., Cluster],
) -> None:
    cluster = new_cluster(settings={"max_connections": "8"})
    cluster.psql(
        "CREATE ROLE ops LOGIN IN ROLE pg_signal_backend, pg_read_all_stats; CREATE ROLE app LOGIN"
    )
    runaway = psycopg.connect(
        cluster.conninfo(user="app", application_name="runaway"), autocommit=True
    )
    conns = [runaway]
    sleeping = threading.Thread(target=_quietly, args=(runaway, "SELECT pg_sleep(60)"))
    sleeping.start()
    try:
        target = runaway.info.backend_pid
        app = PgTopApp(Settings(conninfo=cluster.conninfo(user="ops"), refresh=0.5))
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(
                pilot, lambda: app.actions is not None and app.actions.pid is not None, "actions"
            )
            assert app.actions is not None
            action_pid = app.actions.pid
            cluster.psql(f"SELECT pg_terminate_backend({action_pid})")
            while True:
                try:
                    conns.append(psycopg.connect(cluster.conninfo(user="app"), connect_timeout=5))
                except psycopg.OperationalError:
                    break
            await terminate(pilot, app, target)
            await notified(pilot, "through the monitoring connection")
            assert any("is gone" in message for message in notifications(app))
    finally:
        for conn in conns[1:]:
            conn.close()
        sleeping.join(10)
        runaway.close()


def _quietly(conn: psycopg.Connection[Any], query: str) -> None:
    with contextlib.suppress(psycopg.Error):
        conn.execute(query)


def test_the_second_confirmation_speaks_of_what_the_process_is() -> None:
    from canned import incident_backends

    launcher = next(b for b in incident_backends() if b.backend_type == "autovacuum launcher")
    plan = plan_session("terminate", replace(launcher, backend_start=launcher.query_start))
    assert "an autovacuum launcher process" in plan.warning
    assert plan.lock == "no lock: the session ends (it has no open transaction)"
    walsender = replace(launcher, backend_type="walsender", xact_start=launcher.query_start)
    assert "open transaction is rolled back" in plan_session("terminate", walsender).lock


def test_ctrl_z_suspends_and_fg_repaints(dsn: str, tmp_path: Path) -> None:
    """In a real terminal under an interactive shell: Ctrl-Z stops pgtop and gives the
    shell back; ``fg`` resumes it, with the whole screen painted again."""
    import fcntl
    import pty
    import select
    import struct
    import termios

    marker = f"suspend-{uuid.uuid4().hex[:6]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "TEXTUAL"))}
    env.update(
        PGTOP_CONFIG=str(tmp_path / "no-such-config.toml"),
        PGTOP_LOG_DIR=str(tmp_path / "logs"),
        TERM="xterm-256color",
        LANG="C.UTF-8",
        PS1="$ ",
    )
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 120, 0, 0))
    shell = subprocess.Popen(
        ["setsid", "-c", "bash", "--norc", "--noprofile", "-i"],
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
                except OSError:
                    return
                if not chunk:
                    return
                output.extend(chunk)

    def state() -> str:
        """The process states (R, S, T...) of pgtop, found by the marker in its command."""
        states = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                command = (entry / "cmdline").read_bytes()
                if marker.encode() in command and b"pgtop" in command:
                    states.append((entry / "stat").read_text().rsplit(")", 1)[1].split()[0])
            except OSError:
                continue
        return "".join(states)

    try:
        command = f"{sys.executable} -m pgtop -w '{dsn} application_name={marker}'\n"
        os.write(master, command.encode())
        read_until(lambda: b"1 Activity" in output, 30)
        assert b"1 Activity" in output, bytes(output[-2000:])
        os.write(master, b"\x1a")
        read_until(lambda: "T" in state(), 10)
        assert "T" in state(), "pgtop stopped"
        read_until(lambda: b"Stopped" in output, 10)
        resumed_from = len(output)
        os.write(master, b"fg\n")
        read_until(lambda: b"1 Activity" in output[resumed_from:], 15)
        assert b"1 Activity" in output[resumed_from:], "the screen is painted again"
        assert "T" not in state()
        os.write(master, b"q")
        read_until(lambda: state() == "", 15)
        assert state() == ""
    finally:
        shell.kill()
        shell.wait()
        os.close(master)
    assert b"Traceback" not in bytes(output)
