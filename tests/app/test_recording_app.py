"""The flight recorder in the real app: ``W`` on a live server, and the replay's interface
(moving in time, the REPLAY marker, every action refused) on recordings of canned data and
of a real server."""

from __future__ import annotations

import asyncio
import json
import stat
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from canned import NOW, CannedSource, incident_snapshot
from commands import run_pgtop
from helpers import notified, screen_text, shows, wait_for
from recorded import at, canned_recording
from textual.widgets import TabbedContent

from pgtop import __version__
from pgtop.app import PgTopApp
from pgtop.config import Settings
from pgtop.flight import recorded_needs
from pgtop.player import ReplayApp
from pgtop.recording import Recording, ReplaySource, Writer
from pgtop.recording.headless import Plan, record
from pgtop.recording.store import open_for_append
from pgtop.screens.goto_time import GoToTime
from pgtop.screens.session import SessionScreen
from pgtop.screens.statement import StatementScreen
from pgtop.source import LiveSource
from pgtop.tabs import collectors
from pgtop.widgets.header import Trend, header_text
from pgtop.widgets.keyed_table import KeyedTable

SIZE = (160, 40)


def activity_pids(app: PgTopApp) -> set[Any]:
    table = app.screen.query_one("#activity-table", KeyedTable)
    return {row.key for row in table.visible_rows}


def has_rows(app: PgTopApp, tab: str) -> bool:
    return bool(app.screen.query_one(f"#{tab}-table", KeyedTable).visible_rows)


def header(app: PgTopApp) -> str:
    return screen_text(app).splitlines()[0]


async def test_w_writes_the_last_minutes_to_a_private_file_and_says_where(
    dsn: str, sessions: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGTOP_DATA_DIR", str(tmp_path / "data"))
    lingering = sessions.open("w-idle-in-tx", autocommit=False)
    lingering.execute("SELECT 1 /* before W */")
    app = PgTopApp(Settings(conninfo=dsn, refresh=0.3))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: lingering.info.backend_pid in activity_pids(app), "session")
        await pilot.press("2")
        await shows(pilot, "no session is waiting on a lock")
        assert app.memory is not None
        await wait_for(pilot, lambda: app.memory is not None and app.memory.readings >= 3, "reads")
        await pilot.press("W")
        await notified(pilot, "readings")
        (message,) = [n.message for n in app._notifications if "readings" in n.message]
    folder = tmp_path / "data" / "recordings"
    (path,) = folder.iterdir()
    assert str(path) in message
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    recording = Recording.open(path)
    try:
        assert len(recording) >= 3
        assert recording.meta["made"] == "interface"
        assert recording.meta["pgtop"] == __version__
        assert "locks" in recording.tab_counts()
        last = recording.activity(len(recording) - 1)
        seen = {b.pid: b for b in last.backends}
        assert seen[lingering.info.backend_pid].state == "idle in transaction"
    finally:
        recording.close()


async def test_w_says_when_the_flight_recorder_is_off(dsn: str) -> None:
    app = PgTopApp(Settings(conninfo=dsn, refresh=0.3, recorder_minutes=0))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("W")
        await notified(pilot, "recorder_minutes is 0")


async def test_w_says_why_a_recording_was_not_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    not_a_folder = tmp_path / "data"
    not_a_folder.write_text("")
    monkeypatch.setenv("PGTOP_DATA_DIR", str(not_a_folder))
    app = PgTopApp(Settings(refresh=60), source=CannedSource(incident_snapshot()))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.memory is not None and app.memory.readings > 0, "read")
        await pilot.press("W")
        await notified(pilot, f"Not a directory: {not_a_folder / 'recordings'}")
    assert not_a_folder.read_text() == ""


async def test_the_replay_steps_jumps_and_goes_to_a_typed_time(tmp_path: Path) -> None:
    source = ReplaySource(Recording.open(canned_recording(tmp_path / "r.pgtop")))
    app = ReplayApp(Settings(refresh=60), source, str(tmp_path / "r.pgtop"))
    async with app.run_test(size=SIZE) as pilot:
        await shows(pilot, "REPLAY", "2026-11-26 09:30:00", "reading 1/40")
        top = header(app)
        assert "every " not in top, "no refresh interval: the recorded time instead"
        assert "⏸" in top
        await pilot.press("i")  # idle sessions shown, as live
        await wait_for(pilot, lambda: 4107 in activity_pids(app), "the recorded sessions")
        assert 5000 not in activity_pids(app)

        await pilot.press("full_stop")
        await shows(pilot, "09:30:01", "reading 2/40")
        await pilot.press("comma")
        await shows(pilot, "09:30:00", "reading 1/40")
        await pilot.press("comma")
        await notified(pilot, "the first reading")

        await pilot.press("right_square_bracket")  # a minute on: the recording ends before
        await shows(pilot, "09:30:39", "reading 40/40")
        await wait_for(pilot, lambda: 5000 in activity_pids(app), "the session of 09:30:10")
        await pilot.press("left_square_bracket")
        await shows(pilot, "reading 1/40")
        await wait_for(pilot, lambda: 5000 not in activity_pids(app), "back before it")

        await pilot.press("t")
        await wait_for(pilot, lambda: isinstance(app.screen, GoToTime), "the time dialog")
        await pilot.press(*"09:30:15.5", "enter")
        await shows(pilot, "09:30:15", "reading 16/40")
        await wait_for(pilot, lambda: 5000 in activity_pids(app), "the session at 09:30:15")
        await pilot.press("t")
        await wait_for(pilot, lambda: isinstance(app.screen, GoToTime), "the time dialog")
        await pilot.press(*"09:29", "enter")
        await notified(pilot, "the recording starts at 2026-11-26 09:30:00")
        assert "reading 16/40" in header(app)

        # A filter and the Locks tab work as live, from the recorded data.
        await pilot.press("slash", *"5000", "enter")
        await wait_for(pilot, lambda: activity_pids(app) == {5000}, "the filter")
        await pilot.press("2")
        assert app.screen.query_one(TabbedContent).active == "locks"
        await shows(pilot, "2 sessions waiting on locks", "└─ 4102")


async def test_space_plays_at_the_recorded_speed_and_faster(tmp_path: Path) -> None:
    source = ReplaySource(Recording.open(canned_recording(tmp_path / "r.pgtop")))
    app = ReplayApp(Settings(refresh=60), source, str(tmp_path / "r.pgtop"))
    async with app.run_test(size=SIZE) as pilot:
        await shows(pilot, "reading 1/40")
        for _ in range(5):
            await pilot.press("plus")
        await notified(pilot, "playing at 60x the recorded speed")
        await pilot.press("space")
        await shows(pilot, "▶ 60x")
        # A gap plays in a second, with what happened: the recording goes on after it.
        await notified(pilot, "connection lost: the server restarted")
        await shows(pilot, "reading 40/40", "⏸")
        await notified(pilot, "the end of the recording")
        assert not app.playing
        await pilot.press("space")  # from the end: starts again at the beginning
        await shows(pilot, "▶ 60x")
        await pilot.press("space")
        await shows(pilot, "⏸")
        stopped = app.player.index
        await pilot.pause(0.5)
        assert app.player.index == stopped
        assert stopped < 39


async def test_every_action_is_refused_with_the_reason(tmp_path: Path) -> None:
    path = canned_recording(tmp_path / "r.pgtop")
    source = ReplaySource(Recording.open(path))
    app = ReplayApp(Settings(refresh=60), source, str(path))
    async with app.run_test(size=SIZE) as pilot:
        table = app.screen.query_one("#activity-table", KeyedTable)
        await wait_for(pilot, lambda: 4101 in activity_pids(app), "the sessions")
        assert table.move_cursor_to_key(4101)
        for key, what in (("K", "terminate pid 4101"), ("C", "cancel pid 4101")):
            await pilot.press(key)
            await notified(pilot, f"{what}: this is a recording")
        await pilot.press("W")
        await notified(pilot, f"this is a recording already: {path}")
        # The detail opens, and says what a recording does not hold.
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, SessionScreen), "the detail")
        await shows(pilot, "Backend 4101", "not recorded")


async def test_a_recording_of_a_real_server_replays_in_the_interface(
    dsn: str, sessions: Any, tmp_path: Path
) -> None:
    """Recorded as ``--record`` does, then replayed: the same sessions, the same tabs,
    actions refused, and nothing asked of the server."""
    lingering = sessions.open("replay-idle-in-tx", autocommit=False)
    lingering.execute("SELECT 2 /* recorded */")
    factories = collectors()
    live = LiveSource(Settings(conninfo=dsn, read_only=True), collectors=factories)
    path = tmp_path / "real.pgtop"
    db = open_for_append(path)
    try:
        writer = Writer(db, {"server": live.describe(), "refresh": "0.3"})
        plan = Plan(tuple(factories), recorded_needs(factories, 0.3), 0.3, duration=1.5)
        written = await record(live, writer, plan, asyncio.Event(), print)
    finally:
        db.close()
        await live.close()
    assert written.readings >= 3

    source = ReplaySource(Recording.open(path))
    app = ReplayApp(Settings(refresh=0.2), source, str(path))
    pid = lingering.info.backend_pid
    async with app.run_test(size=SIZE) as pilot:
        await shows(pilot, "REPLAY", f"reading 1/{written.readings}", "idle in tx")
        table = app.screen.query_one("#activity-table", KeyedTable)
        await wait_for(pilot, lambda: pid in activity_pids(app), "the session")
        assert table.move_cursor_to_key(pid)
        await pilot.press("K")
        await notified(pilot, f"terminate pid {pid}: this is a recording")
        for tab, text in (("2", "no session is waiting on a lock"), ("4", "Tables")):
            await pilot.press(tab)
            await shows(pilot, text)
    row = sessions.admin.execute(
        "SELECT state FROM pg_stat_activity WHERE pid = %s", [pid]
    ).fetchone()
    assert row == ("idle in transaction",), "the recorded session was left alone"


@pytest.fixture(scope="module")
def demo_recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``pgtop --demo --record`` for 12 s at a 1 s refresh, as a user makes it."""
    folder = tmp_path_factory.mktemp("demo")
    path = folder / "demo.pgtop"
    done = run_pgtop(
        folder, "--demo", "--record", str(path), "--duration", "12s", "--refresh", "1",
        timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "recorded 12 readings" in done.stderr
    return path


async def test_a_recording_of_the_demo_fills_every_tab(demo_recording: Path) -> None:
    source = ReplaySource(Recording.open(demo_recording))
    app = ReplayApp(Settings(refresh=0.5), source, str(demo_recording))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("right_square_bracket")  # a minute on: the last reading
        await shows(pilot, "reading 12/12")
        for number, tab in enumerate(app.tabs, start=1):
            await pilot.press(str(number))
            await wait_for(pilot, partial(has_rows, app, tab.name), f"rows on {tab.name}")
        await pilot.press("2")
        await shows(pilot, "admin-conso", "2 sessions waiting on locks", "1 root blocker")
        # A statement's detail: its recorded text and counters; no plan, and why.
        await pilot.press("3", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, StatementScreen), "the detail")
        await shows(pilot, "Counters", "could not plan: not recorded")


def test_the_demo_recording_answers_once_health_as_live(
    demo_recording: Path, tmp_path: Path
) -> None:
    """Health is recorded with every reading, and ``--once health`` exits as live: 8 on a
    warning, 9 on a critical finding."""
    done = run_pgtop(tmp_path, "--replay", str(demo_recording), "--once", "health", "--format",
                     "json")  # fmt: skip
    assert done.returncode in (8, 9), done.stderr
    document = json.loads(done.stdout)
    assert document["tab"] == "health"
    statuses = {row["status"] for row in document["rows"]}
    assert ("crit" in statuses) == (done.returncode == 9)
    recording = Recording.open(demo_recording)
    try:
        assert recording.tab_counts()["health"] == len(recording)
    finally:
        recording.close()


def test_the_replay_header_replaces_the_clock() -> None:

    snapshot = incident_snapshot()
    kw: dict[str, Any] = {
        "target": "app@db:5432/shop",
        "snapshot": replace(snapshot, counters=replace(snapshot.counters, collected_at=NOW)),
        "interval": 2.0,
        "paused": False,
        "age": 600.0,
    }
    live = header_text(**kw).plain
    assert "every 2s" in live
    assert "STALE" in live
    played = header_text(**kw, replay="⏸ 2026-11-26 09:30:00 · reading 1/40").plain
    assert "REPLAY ⏸ 2026-11-26 09:30:00 · reading 1/40" in played
    assert "every" not in played
    assert "STALE" not in played


def test_the_trend_starts_again_when_a_replay_goes_back() -> None:
    trend = Trend()
    for seconds in (0, 20, 40):
        trend.add(at(seconds))
    assert [len(line) for _, line in trend.lines()] == [3, 3, 3, 3]
    trend.add(at(5))
    assert trend.lines() == [], "no sparkline of what came after, shown as the past"
    trend.add(at(25))
    assert [len(line) for _, line in trend.lines()] == [2, 2, 2, 2]
