"""Tags and the dialog of an action on many sessions, from canned data."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from canned import HOSTILE, NOW, CannedSource, backend, incident_snapshot, settle

from pgtop.actions import GroupTarget, plan_session
from pgtop.app import PgTopApp
from pgtop.config import Settings
from pgtop.screens.confirm import GroupConfirmDialog


def targets() -> tuple[GroupTarget, ...]:
    """Fourteen sessions of a bad deploy, one a superuser's, one with a hostile name."""
    listed: list[GroupTarget] = []
    for n in range(14):
        session = backend(
            5200 + n,
            application_name="deploy-42" if n != 3 else HOSTILE[:30],
            state="idle in transaction" if n % 3 else "active",
            xact_start=NOW - timedelta(seconds=40 + 7 * n),
            query_start=NOW - timedelta(seconds=30 + 5 * n),
        )
        if n == 5:
            listed.append(
                GroupTarget(
                    session,
                    None,
                    "a superuser's session can only be signalled by a superuser",
                )
            )
        else:
            listed.append(GroupTarget(session, plan_session("terminate", session)))
    return tuple(listed)


def test_group_dialog_at_80x24(snap_compare: Any) -> None:
    """Title, summary (13 signalled, 1 not), the list scrolled at its top with the refused
    one marked ✘ and its reason, the hostile application name literal, the SQL and both
    buttons, all within 80x24."""
    app = PgTopApp(Settings(refresh=60), source=CannedSource(incident_snapshot()))

    async def open_dialog(pilot: Any) -> None:
        await settle(pilot)
        app.push_screen(GroupConfirmDialog("terminate", targets(), NOW))
        await pilot.pause(0.3)

    assert snap_compare(app, terminal_size=(80, 24), run_before=open_dialog)


def test_tagged_rows_at_80x24(snap_compare: Any) -> None:
    """``T`` on the incident's sessions: the ✔ column right of the pids and the count in
    the status line."""
    app = PgTopApp(Settings(refresh=60), source=CannedSource(incident_snapshot()))

    async def tag_all(pilot: Any) -> None:
        await settle(pilot)
        await pilot.press("T")
        await pilot.pause(0.3)

    assert snap_compare(app, terminal_size=(80, 24), run_before=tag_all)
