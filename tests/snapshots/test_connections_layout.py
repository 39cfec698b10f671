"""Grouped connections from canned data, as an operator sees them."""

from __future__ import annotations

from typing import Any

from canned import CannedSource, incident_snapshot, settle

from pgtop.app import PgTopApp
from pgtop.config import Settings
from pgtop.widgets.keyed_table import KeyedTable


async def group_by_application(pilot: Any) -> None:
    await settle(pilot)
    await pilot.press("a")
    table = pilot.app.screen.query_one("#activity-table", KeyedTable)
    for _ in range(200):
        if table.rows and isinstance(table.rows[0].key, tuple):
            break
        await pilot.pause(0.02)
    await pilot.pause(0.1)


def grouped_app() -> PgTopApp:
    return PgTopApp(Settings(refresh=60), source=CannedSource(incident_snapshot()))


def test_sessions_grouped_by_application_at_120x35(snap_compare: Any) -> None:
    """Key a: one row per application, the largest first ("web" 2 idle sessions, then
    "checkout-api" 2 active, 2 waiting, in the warning colour), its oldest idle time and
    oldest transaction (12m03s for "admin-console", 1 idle in tx), the share of
    max_connections 100 (2.0%); the hostile application name shown literally; the status
    line "grouped by application (a: by user, Enter: its sessions)", sorted "SESSIONS ▼"."""
    assert snap_compare(grouped_app(), terminal_size=(120, 35), run_before=group_by_application)


def test_sessions_grouped_by_application_at_80x24(snap_compare: Any) -> None:
    """At 80 columns every figure stays; the application name takes what is left."""
    assert snap_compare(grouped_app(), terminal_size=(80, 24), run_before=group_by_application)
