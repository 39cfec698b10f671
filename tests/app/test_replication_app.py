"""The Replication tab in the real app against a real primary and its standby; Health's
slot finding leads to the slot's row."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import STANDBY_NAME, STANDBY_SLOT
from helpers import notified, screen_text, shows, wait_for
from textual.widgets import TabbedContent

from pgtop.app import PgTopApp
from pgtop.cluster import Cluster
from pgtop.config import Settings
from pgtop.screens.confirm import ConfirmDialog
from pgtop.widgets.keyed_table import KeyedTable

SIZE = (140, 40)


def active_tab(app: PgTopApp) -> str:
    return str(app.screen.query_one(TabbedContent).active)


async def test_standby_and_slots_and_enter_on_a_health_slot_finding(
    replicated: tuple[Cluster, Cluster],
) -> None:
    primary, _standby = replicated
    name = f"left_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(primary.conninfo(), autocommit=True) as admin:
        admin.execute("SELECT pg_create_physical_replication_slot(%s, true)", (name,))
        try:
            app = PgTopApp(Settings(conninfo=primary.conninfo(), refresh=0.5))
            async with app.run_test(size=SIZE) as pilot:
                await pilot.press("8")
                text = await shows(pilot, STANDBY_NAME, STANDBY_SLOT, name, "streaming")
                assert "pg_wal " in text
                assert "archived " in text
                table = app.screen.query_one("#replication-table", KeyedTable)
                assert {STANDBY_SLOT, name} <= {row.key for row in table.rows}
                await pilot.press("7")
                await shows(pilot, "WARN     replication_slots", f"slot {name}")
                health = app.screen.query_one("#health-table", KeyedTable)
                health.move_cursor_to_key("replication_slots")
                await pilot.press("enter")
                await wait_for(pilot, lambda: active_tab(app) == "replication", "the tab")
                await wait_for(pilot, lambda: table.cursor_key == name, "the cursor on the slot")
                assert "inactive" in screen_text(app)
        finally:
            admin.execute("SELECT pg_drop_replication_slot(%s)", (name,))


async def test_the_standby_shows_its_receiver(replicated: tuple[Cluster, Cluster]) -> None:
    primary, standby = replicated
    app = PgTopApp(Settings(conninfo=standby.conninfo(), refresh=0.5))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("8")
        await shows(
            pilot,
            "receiver",
            f"127.0.0.1:{primary.port}",
            "streaming",
            "standby:",
            "database postgres",
        )


def slot_exists(conn: psycopg.Connection[Any], name: str) -> bool:
    row = conn.execute("SELECT count(*) FROM pg_replication_slots WHERE slot_name = %s", (name,))
    return bool(row.fetchone()[0])  # type: ignore[index]


async def open_drop_dialog(pilot: Any, app: PgTopApp, name: str) -> None:
    await pilot.press("8")
    table = app.screen.query_one("#replication-table", KeyedTable)
    await wait_for(pilot, lambda: name in {row.key for row in table.rows}, "the slot's row")
    assert table.move_cursor_to_key(name)
    await pilot.press("D")
    await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the dialog")
    await pilot.pause(0.5)  # a yes counts once the dialog could be read


async def test_drop_an_inactive_slot_after_confirmation(
    replicated: tuple[Cluster, Cluster], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGTOP_LOG_DIR", str(tmp_path))
    primary, _ = replicated
    name = f"drop_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(primary.conninfo(), autocommit=True) as admin:
        admin.execute("SELECT pg_create_logical_replication_slot(%s, 'test_decoding')", (name,))
        try:
            app = PgTopApp(Settings(conninfo=primary.conninfo(), refresh=0.5))
            async with app.run_test(size=SIZE) as pilot:
                await open_drop_dialog(pilot, app, name)
                await shows(
                    pilot,
                    "Drop this replication slot?",
                    f"slot  {name}",
                    "logical (test_decoding, database postgres)",
                    "loses its position",
                    "pg_drop_replication_slot(slot_name)",
                    f"slot_name = '{name}' AND NOT active",
                )
                await pilot.press("y")
                await notified(pilot, f"dropped slot {name}")
            assert not slot_exists(admin, name)
            log = [json.loads(line) for line in (tmp_path / "actions.log").read_text().splitlines()]
            assert [(r["action"], r["outcome"]) for r in log] == [
                ("drop_slot", "attempted"),
                ("drop_slot", "ok"),
            ]
            assert log[-1]["target"]["name"] == name
        finally:
            if slot_exists(admin, name):
                admin.execute("SELECT pg_drop_replication_slot(%s)", (name,))


async def test_an_active_slot_is_never_dropped(replicated: tuple[Cluster, Cluster]) -> None:
    primary, _ = replicated
    with psycopg.connect(primary.conninfo(), autocommit=True) as admin:
        row = admin.execute(
            "SELECT active_pid FROM pg_replication_slots WHERE slot_name = %s", (STANDBY_SLOT,)
        ).fetchone()
        assert row is not None
        assert row[0] is not None
        app = PgTopApp(Settings(conninfo=primary.conninfo(), refresh=0.5))
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("8")
            table = app.screen.query_one("#replication-table", KeyedTable)
            await wait_for(pilot, lambda: STANDBY_SLOT in {r.key for r in table.rows}, "the row")
            assert table.move_cursor_to_key(STANDBY_SLOT)
            await pilot.press("D")
            await notified(pilot, f"is in use by pid {row[0]}")
            assert not isinstance(app.screen, ConfirmDialog)
        assert slot_exists(admin, STANDBY_SLOT)


async def test_a_slot_that_became_active_while_the_dialog_was_open(
    replicated: tuple[Cluster, Cluster], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGTOP_LOG_DIR", str(tmp_path))
    primary, _ = replicated
    name = f"taken_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(primary.conninfo(), autocommit=True) as admin:
        admin.execute("SELECT pg_create_physical_replication_slot(%s, true)", (name,))
        receiver: subprocess.Popen[bytes] | None = None
        try:
            app = PgTopApp(Settings(conninfo=primary.conninfo(), refresh=0.5))
            async with app.run_test(size=SIZE) as pilot:
                await open_drop_dialog(pilot, app, name)
                # Its consumer connects while the user reads the dialog.
                receiver = subprocess.Popen(
                    [
                        str(primary.bindir / "pg_receivewal"),
                        "-d",
                        primary.conninfo(),
                        "-S",
                        name,
                        "-D",
                        str(tmp_path),
                        "-n",
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                for _ in range(200):
                    active = admin.execute(
                        "SELECT active_pid FROM pg_replication_slots WHERE slot_name = %s",
                        (name,),
                    ).fetchone()
                    if active is not None and active[0] is not None:
                        break
                    await pilot.pause(0.05)
                assert active is not None
                assert active[0] is not None
                await pilot.press("y")
                await notified(pilot, f"nothing done: slot {name} became active (pid {active[0]})")
            assert slot_exists(admin, name)
        finally:
            if receiver is not None:
                receiver.terminate()
                receiver.wait(10)
            for _ in range(100):
                if not admin.execute(
                    "SELECT active FROM pg_replication_slots WHERE slot_name = %s", (name,)
                ).fetchone()[0]:  # type: ignore[index]
                    break
                time.sleep(0.1)
            admin.execute("SELECT pg_drop_replication_slot(%s)", (name,))


async def test_a_checkpoint_after_confirmation(
    replicated: tuple[Cluster, Cluster], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGTOP_LOG_DIR", str(tmp_path))
    primary, _ = replicated
    with psycopg.connect(primary.conninfo(), autocommit=True) as admin:
        before = admin.execute("SELECT checkpoint_time FROM pg_control_checkpoint()").fetchone()
        app = PgTopApp(Settings(conninfo=primary.conninfo(), refresh=0.5))
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("8")
            await shows(pilot, "database postgres")
            await pilot.press("P")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the dialog")
            await shows(pilot, "Run a CHECKPOINT now?", "recycles WAL that no slot", "CHECKPOINT")
            await pilot.pause(0.5)  # a yes counts once the dialog could be read
            await pilot.press("y")
            await notified(pilot, "checkpoint done in")
        after = admin.execute("SELECT checkpoint_time FROM pg_control_checkpoint()").fetchone()
    assert before is not None
    assert after is not None
    assert after[0] > before[0]
    log = [json.loads(line) for line in (tmp_path / "actions.log").read_text().splitlines()]
    assert [(r["action"], r["outcome"]) for r in log] == [
        ("checkpoint", "attempted"),
        ("checkpoint", "ok"),
    ]


async def test_a_role_that_may_not_checkpoint_is_told_so(
    replicated: tuple[Cluster, Cluster],
) -> None:
    primary, _ = replicated
    role = f"plain_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(primary.conninfo(), autocommit=True) as admin:
        admin.execute(f'CREATE ROLE "{role}" LOGIN')
        try:
            app = PgTopApp(Settings(conninfo=primary.conninfo(user=role), refresh=0.5))
            async with app.run_test(size=SIZE) as pilot:
                await pilot.press("8")
                await shows(pilot, "database postgres")
                await pilot.press("P")
                await notified(pilot, "pg_checkpoint")
                assert not isinstance(app.screen, ConfirmDialog)
        finally:
            admin.execute(f'DROP ROLE "{role}"')
