"""Layout snapshots from canned data: what an operator sees, at common terminal sizes."""

from __future__ import annotations

from typing import Any

from pgtop.app import PgTopApp


def test_activity_at_120x35(snap_compare: Any, incident_app: PgTopApp, run_before: Any) -> None:
    """Header with server, uptime, counts; the chain root marked "▲ blocks 1" and sorted first
    by transaction age; waiters list their blocker; the hostile query and application name
    shown literally with escapes visible; the hidden query says which role unlocks it."""
    assert snap_compare(incident_app, terminal_size=(120, 35), run_before=run_before)


def test_activity_at_80x24(snap_compare: Any, incident_app: PgTopApp, run_before: Any) -> None:
    """Narrow terminal: user, application and wait columns give way; the query stays."""
    assert snap_compare(incident_app, terminal_size=(80, 24), run_before=run_before)


def test_activity_at_40x12(snap_compare: Any, incident_app: PgTopApp, run_before: Any) -> None:
    """Tiny terminal: nothing crashes, pid, state and ages still show."""
    assert snap_compare(incident_app, terminal_size=(40, 12), run_before=run_before)


def test_activity_with_idle_and_background(
    snap_compare: Any, incident_app: PgTopApp, run_before: Any
) -> None:
    """`i` and `b` show idle sessions and the autovacuum launcher with its TYPE column."""
    assert snap_compare(
        incident_app, terminal_size=(160, 35), press=["i", "b"], run_before=run_before
    )


def test_backend_detail(snap_compare: Any, incident_app: PgTopApp, run_before: Any) -> None:
    """Enter on the root blocker: every field, the query wrapped, locks held and awaited."""
    assert snap_compare(
        incident_app, terminal_size=(120, 35), press=["enter"], run_before=run_before
    )


def test_backend_detail_at_80x24(
    snap_compare: Any, incident_app: PgTopApp, run_before: Any
) -> None:
    """80x24: the title sums up the locks (waits for nothing, holds 2); the query and the
    locks come before the session's fields, all without scrolling."""
    assert snap_compare(
        incident_app, terminal_size=(80, 24), press=["enter"], run_before=run_before
    )


def test_backend_detail_in_a_blocking_chain_at_80x24(
    snap_compare: Any, incident_app: PgTopApp, run_before: Any
) -> None:
    """80x24, the middle of a chain: its statement's statistics against this run, then whom
    it waits for and whom it blocks, one line each, before its locks."""
    assert snap_compare(
        incident_app,
        terminal_size=(80, 24),
        press=["down", "down", "enter"],
        run_before=run_before,
    )
