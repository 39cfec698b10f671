"""Tags, actions on many sessions, the age filter and copying, in the real app against a
real server."""

from __future__ import annotations

import base64
import json
import re
import stat
import uuid
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from canned import NOW, CannedSource, incident_snapshot, settle
from helpers import notified, screen_text, shows, stage_sessions, wait_for

from pgtop.app import PgTopApp
from pgtop.config import Settings
from pgtop.model import ActivitySnapshot
from pgtop.panes.activity import TAG_MARK, ActivityPane
from pgtop.screens.confirm import GroupConfirmDialog
from pgtop.screens.session import SessionScreen
from pgtop.widgets.keyed_table import KeyedTable

SIZE = (140, 40)


def alive(sessions: Any, pids: Any) -> set[int]:
    rows = sessions.admin.execute(
        "SELECT pid FROM pg_stat_activity WHERE pid = ANY(%s)", (list(pids),)
    ).fetchall()
    return {row[0] for row in rows}


def table(app: PgTopApp) -> KeyedTable:
    return app.screen.query_one("#activity-table", KeyedTable)


def pane(app: PgTopApp) -> ActivityPane:
    return app.screen.query_one(ActivityPane)


def shown(app: PgTopApp) -> set[Any]:
    return {row.key for row in table(app).visible_rows}


def pids_of(app: PgTopApp) -> set[int]:
    """The pids in the newest snapshot."""
    snapshot = app.activity
    return {b.pid for b in snapshot.backends} if snapshot else set()


def status(app: PgTopApp) -> str:
    return app.screen.query_one("#activity-status").text  # type: ignore[attr-defined, no-any-return]


async def filter_to(pilot: Any, app: PgTopApp, text: str, pids: set[int]) -> None:
    await pilot.press("slash", *text, "enter")
    await wait_for(pilot, lambda: shown(app) == pids, f"only the sessions matching {text}")


async def test_group_terminate_signals_exactly_the_listed_sessions(
    dsn: str, sessions: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Five sessions; ``T`` tags the three the filter shows; ``K`` lists them. Before the
    yes: one ends, one's identity no longer matches (a reused pid), a newcomer matches the
    filter. Only the first is terminated; the result and the action log say so."""
    monkeypatch.setenv("PGTOP_LOG_DIR", str(tmp_path))
    tag = uuid.uuid4().hex[:6]
    targets = [f"{tag}-in-{n}" for n in ("hit", "ends", "reused")]
    others = [f"{tag}-out-{n}" for n in (1, 2)]
    pids = stage_sessions(sessions, [*targets, *others])
    hit, ends, reused = (pids[name] for name in targets)
    app = PgTopApp(Settings(conninfo=dsn, refresh=0.5))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: set(pids.values()) <= shown(app), "the staged sessions")
        await filter_to(pilot, app, f"{tag}-in", {hit, ends, reused})
        await pilot.press("T")
        assert set(pane(app).tags) == {hit, ends, reused}
        await wait_for(pilot, lambda: "3 tagged" in status(app), "the tag count")
        await pilot.press("K")
        await wait_for(pilot, lambda: isinstance(app.screen, GroupConfirmDialog), "the dialog")
        dialog = app.screen
        assert isinstance(dialog, GroupConfirmDialog)
        await shows(pilot, "Terminate 3 sessions?", str(hit), str(ends), str(reused))
        assert {t.backend.pid for t in dialog.targets} == {hit, ends, reused}
        own = set(app.activity.own_pids if app.activity else ()) | {app.actions.pid}  # type: ignore[union-attr]
        # Behind the dialog: one ends, one's identity changes, a newcomer matches the filter.
        sessions.admin.execute("SELECT pg_terminate_backend(%s)", (ends,))
        index = next(i for i, t in enumerate(dialog.targets) if t.backend.pid == reused)
        plan = dialog.targets[index].plan
        assert plan is not None
        stale = plan.params["backend_start"] - timedelta(seconds=1)
        stale_plan = replace(plan, params={**plan.params, "backend_start": stale})
        dialog.targets = tuple(
            replace(t, plan=stale_plan) if i == index else t for i, t in enumerate(dialog.targets)
        )
        newcomer = stage_sessions(sessions, [f"{tag}-in-newcomer"])[f"{tag}-in-newcomer"]
        snapshot = app.snapshot
        await wait_for(pilot, lambda: app.snapshot is not snapshot, "a refresh")
        await pilot.pause(0.5)
        await pilot.press("y")
        await notified(pilot, "1 signalled · 2 had already gone · 0 refused")
        # pgtop itself is still connected, and so is every session not listed as signalled.
        survivors = alive(sessions, [*pids.values(), newcomer, *own])
        assert survivors == {reused, newcomer, *(pids[name] for name in others), *own}
    lines = [json.loads(line) for line in (tmp_path / "actions.log").read_text().splitlines()]
    assert sorted((line["target"]["pid"], line["outcome"]) for line in lines) == sorted(
        [(hit, "ok"), (ends, "gone"), (reused, "gone")]
    )


async def test_tagging_marks_rows_and_follows_sessions(dsn: str, sessions: Any) -> None:
    """``t`` tags and untags, the row shows the mark and the status line the count; ``u``
    clears; the tag of a session that ends goes with it."""
    tag = uuid.uuid4().hex[:6]
    pids = stage_sessions(sessions, [f"{tag}-{n}" for n in range(3)])
    first, second, third = pids.values()
    app = PgTopApp(Settings(conninfo=dsn, refresh=0.5))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: set(pids.values()) <= shown(app), "the staged sessions")
        await filter_to(pilot, app, tag, set(pids.values()))
        table(app).move_cursor_to_key(first)
        await pilot.press("t")
        assert set(pane(app).tags) == {first}
        assert table(app).cursor_key != first, "the cursor moves on, for the next t"
        table(app).move_cursor_to_key(second)
        await pilot.press("t")
        text = await shows(pilot, "2 tagged")
        assert re.search(rf" {first} {TAG_MARK} ", text)
        assert not re.search(rf" {third} {TAG_MARK} ", text)
        table(app).move_cursor_to_key(second)
        await pilot.press("t")
        assert set(pane(app).tags) == {first}
        # C and K now act on the tagged session, not the one under the cursor.
        table(app).move_cursor_to_key(third)
        await pilot.press("C")
        await wait_for(pilot, lambda: isinstance(app.screen, GroupConfirmDialog), "the dialog")
        dialog = app.screen
        assert isinstance(dialog, GroupConfirmDialog)
        assert [t.backend.pid for t in dialog.targets] == [first]
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, GroupConfirmDialog), "closed")
        # The session ends: its tag goes.
        table(app).move_cursor_to_key(second)
        await pilot.press("t")
        sessions.admin.execute("SELECT pg_terminate_backend(%s)", (first,))
        await wait_for(pilot, lambda: set(pane(app).tags) == {second}, "the tag dropped")
        await pilot.press("u")
        await wait_for(pilot, lambda: "tagged" not in status(app), "no tag count")
        assert not pane(app).tags
        assert TAG_MARK not in screen_text(app)
        # Without tags, K is about the selected session again.
        table(app).move_cursor_to_key(third)
        await pilot.press("K")
        await shows(pilot, "Terminate this session?", f"pid  {third}")
        await pilot.press("escape")
    assert {second, third} <= alive(sessions, pids.values())


async def test_age_filter_on_real_sessions(dsn: str, sessions: Any) -> None:
    """``o``: only sessions whose transaction (or query, out of one) is older than N
    seconds; with the text filter; ``T`` tags what both show; Escape clears both."""
    tag = uuid.uuid4().hex[:6]
    idle_tx = sessions.open(application_name=f"{tag}-idle-tx", autocommit=False)
    idle_tx.execute("SELECT 1")  # idle in transaction from now on
    old = stage_sessions(sessions, [f"{tag}-long", f"{tag}-zz-long"])
    sessions.wait_until(
        "SELECT count(*) = 1 FROM pg_stat_activity WHERE application_name = %s "
        "AND state = 'idle in transaction'",
        (f"{tag}-idle-tx",),
    )
    idle_pid = idle_tx.info.backend_pid
    long_pid = old[f"{tag}-long"]
    app = PgTopApp(Settings(conninfo=dsn, refresh=0.5))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: {idle_pid, long_pid} <= shown(app), "the staged sessions")
        await pilot.press("o", *"10m", "enter")
        await wait_for(pilot, lambda: not ({idle_pid, long_pid} & shown(app)), "none that old")
        assert "older than 10m" in status(app)
        await pilot.press("o", "ctrl+u", *"2", "enter")
        await wait_for(
            pilot,
            lambda: {idle_pid, long_pid, old[f"{tag}-zz-long"]} <= shown(app),
            "the sessions older than 2 s",
        )
        newcomer = stage_sessions(sessions, [f"{tag}-new"])[f"{tag}-new"]
        young = app.snapshot
        await wait_for(
            pilot, lambda: app.snapshot is not young and newcomer in pids_of(app), "a refresh"
        )
        # Listed: exactly the sessions older than 2 s in the refresh on screen (whatever
        # the time it took, the newcomer is shown only once it is 2 s old).
        snapshot = app.activity
        assert snapshot is not None
        assert shown(app) == {
            b.pid
            for b in snapshot.backends
            if b.is_client and b.state != "idle" and (b.age(snapshot.collected_at) or 0) > 2
        }
        # With the text filter, both apply.
        await pilot.press("slash", *tag, "enter")
        await wait_for(pilot, lambda: newcomer in shown(app), "the newcomer, once 2 s old")
        assert shown(app) == {idle_pid, long_pid, newcomer, old[f"{tag}-zz-long"]}
        await pilot.press("escape")  # clears both filters
        await wait_for(pilot, lambda: pane(app).min_age is None, "the age filter cleared")
        assert "older than" not in status(app)
        await pilot.press("o", "ctrl+u", *"2", "enter", "slash", *f"{tag}-l", "enter")
        await wait_for(pilot, lambda: shown(app) == {long_pid}, "one session left")
        await pilot.press("T")
        assert set(pane(app).tags) == {long_pid}
        await pilot.press("o", "ctrl+u", *"soon", "enter")
        await notified(pilot, "is not a duration")
    idle_tx.rollback()


async def test_copy_writes_osc52_and_the_private_file(
    dsn: str, sessions: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``y`` copies the whole query with OSC 52 and to the copy file (0600 in a 0700
    folder); in the session detail, ``y`` copies all its text."""
    monkeypatch.setenv("PGTOP_STATE_DIR", str(tmp_path / "state"))
    tag = uuid.uuid4().hex[:6]
    query = f"SELECT pg_sleep(60) /* {tag} {'x' * 900} end */"  # the server keeps 1023 bytes
    pid = stage_sessions(sessions, [f"{tag}-copy"], query)[f"{tag}-copy"]
    app = PgTopApp(Settings(conninfo=dsn, refresh=0.5))
    async with app.run_test(size=SIZE) as pilot:
        written: list[str] = []
        driver = app._driver
        assert driver is not None
        write = driver.write

        def recording(data: str) -> None:
            written.append(data)
            write(data)

        monkeypatch.setattr(driver, "write", recording)
        await wait_for(pilot, lambda: pid in shown(app), "the session")
        table(app).move_cursor_to_key(pid)
        await pilot.press("y")
        osc = f"\x1b]52;c;{base64.b64encode(query.encode()).decode()}\a"
        await wait_for(pilot, lambda: any(osc in data for data in written), "the OSC 52 copy")
        await wait_for(pilot, lambda: "copied the query of" in status(app), "the status line")
        path = tmp_path / "state" / "copy" / "copied.txt"
        assert str(path) in status(app)
        assert path.read_text() == query
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, SessionScreen), "the detail")
        await shows(pilot, "end */")
        await pilot.press("y")
        await notified(pilot, f"copied the detail of {pid}")
        copied = path.read_text()
        assert f"Backend {pid}" in copied
        assert query in copied
        assert f"{tag}-copy" in copied


async def test_copy_without_the_file(
    dsn: str, sessions: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGTOP_STATE_DIR", str(tmp_path / "state"))
    tag = uuid.uuid4().hex[:6]
    pid = stage_sessions(sessions, [f"{tag}-copy"])[f"{tag}-copy"]
    app = PgTopApp(Settings(conninfo=dsn, refresh=0.5, copy_to_file=False))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: pid in shown(app), "the session")
        table(app).move_cursor_to_key(pid)
        await pilot.press("y")
        await notified(pilot, "to the clipboard (OSC 52)")
        assert app.clipboard == "SELECT pg_sleep(60)"
    assert not (tmp_path / "state").exists()


async def test_the_group_dialog_at_80x24(dsn: str, sessions: Any) -> None:
    """Twenty tagged sessions at 80x24: the title, the SQL and the buttons stay in view,
    the list scrolls to the last one; No closes it and nothing is signalled."""
    tag = uuid.uuid4().hex[:6]
    pids = stage_sessions(sessions, [f"{tag}-{n:02}" for n in range(20)])
    app = PgTopApp(Settings(conninfo=dsn, refresh=0.5))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: set(pids.values()) <= shown(app), "the staged sessions")
        await filter_to(pilot, app, tag, set(pids.values()))
        await pilot.press("T", "K")
        await wait_for(pilot, lambda: isinstance(app.screen, GroupConfirmDialog), "the dialog")
        text = await shows(pilot, "Terminate 20 sessions?", "pg_terminate_backend", "No", "Yes")
        last = pids[f"{tag}-19"]
        assert str(last) not in text
        for _ in range(10):
            await pilot.press("pagedown")
        await shows(pilot, str(last), "Terminate 20 sessions?", "Yes")
        await pilot.press("n")
        await wait_for(pilot, lambda: not isinstance(app.screen, GroupConfirmDialog), "closed")
    assert alive(sessions, pids.values()) == set(pids.values())


async def test_copy_on_locks(dsn: str, sessions: Any) -> None:
    """On Locks, ``y`` copies the query of the session under the cursor (a waiter)."""
    table_name = f"copy_locks_{uuid.uuid4().hex[:8]}"
    sessions.admin.execute(f"CREATE TABLE {table_name} (id int)")
    holder = sessions.open(application_name="copy-holder", autocommit=False)
    holder.execute(f"LOCK TABLE {table_name} IN SHARE MODE")
    waiter = sessions.open(application_name="copy-waiter")
    query = f"INSERT INTO {table_name} VALUES (1) /* waits */"
    sessions.run_in_background(waiter, query)
    sessions.wait_until(
        "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = %s",
        (waiter.info.backend_pid,),
    )
    app = PgTopApp(Settings(conninfo=dsn, refresh=0.5, copy_to_file=False))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        locks = app.screen.query_one("#locks-table", KeyedTable)
        key = (holder.info.backend_pid, waiter.info.backend_pid)
        await wait_for(pilot, lambda: key in [r.key for r in locks.visible_rows], "the waiter")
        assert locks.move_cursor_to_key(key)
        await pilot.press("y")
        await wait_for(pilot, lambda: app.clipboard == query, "the waiter's query copied")
        await shows(pilot, f"copied the query of {waiter.info.backend_pid}")
    holder.rollback()


async def test_read_only_mode_has_no_tags(dsn: str, sessions: Any) -> None:
    """Tags are for actions: in read-only mode ``t`` and ``T`` tag nothing, and ``K`` opens
    no dialog."""
    pid = stage_sessions(sessions, [f"{uuid.uuid4().hex[:6]}-ro"])
    app = PgTopApp(Settings(conninfo=dsn, refresh=0.5, read_only=True))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: set(pid.values()) <= shown(app), "the session")
        await pilot.press("t", "T", "K")
        await pilot.pause(0.5)
        assert not pane(app).tags
        assert "tagged" not in status(app)
        assert not isinstance(app.screen, GroupConfirmDialog)
    assert alive(sessions, pid.values()) == set(pid.values())


async def test_a_reused_pid_is_not_tagged() -> None:
    """A tag follows the session: the same pid with another backend_start (a new session)
    is not tagged."""
    source = CannedSource(incident_snapshot())
    app = PgTopApp(Settings(refresh=0.5), source=source)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert table(app).move_cursor_to_key(4103)
        await pilot.press("t")
        assert set(pane(app).tags) == {4103}
        await shows(pilot, f"4103 {TAG_MARK} ", "1 tagged")
        snapshot = source.snapshot
        assert isinstance(snapshot, ActivitySnapshot)
        source.snapshot = replace(
            snapshot,
            backends=tuple(
                replace(b, backend_start=NOW) if b.pid == 4103 else b for b in snapshot.backends
            ),
        )
        await wait_for(pilot, lambda: not pane(app).tags, "the tag dropped")
        assert 4103 in shown(app)
        await wait_for(pilot, lambda: TAG_MARK not in screen_text(app), "no mark")


async def test_a_session_without_a_start_time_is_not_tagged_with_another() -> None:
    """Another role's session shows no backend_start (nor type) without pg_read_all_stats:
    tagging one session must not tag it too, nor send it the action on the tagged."""
    snapshot = incident_snapshot()
    hidden = replace(
        next(b for b in snapshot.backends if b.pid == 4105), backend_start=None, backend_type=""
    )
    source = CannedSource(
        replace(
            snapshot,
            backends=tuple(hidden if b.pid == 4105 else b for b in snapshot.backends),
        )
    )
    app = PgTopApp(Settings(refresh=0.5), source=source)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("b")
        await wait_for(pilot, lambda: 4105 in shown(app), "the hidden session listed")
        assert table(app).move_cursor_to_key(4103)
        await pilot.press("t")
        await shows(pilot, f"4103 {TAG_MARK} ", "1 tagged")
        assert [b.pid for b in pane(app).tagged_backends()] == [4103]
        assert f"4105 {TAG_MARK}" not in screen_text(app)
        assert re.search(r"4105 +", screen_text(app))
