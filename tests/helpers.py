"""Helpers for tests that drive the real app: read the screen, wait for conditions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.pilot import Pilot

from pgtop.app import PgTopApp


def screen_text(app: PgTopApp) -> str:
    """Everything on the terminal, as the user sees it."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


async def wait_for(
    pilot: Pilot[Any], condition: Callable[[], bool], what: str, timeout: float = 20
) -> None:
    """Let the app run until ``condition`` holds; fail after ``timeout`` seconds of polling."""
    for _ in range(int(timeout / 0.05)):
        if condition():
            return
        await pilot.pause(0.05)
    shown = [n.message for n in pilot.app._notifications]
    raise AssertionError(f"timed out waiting for {what} (notifications: {shown})")


async def shows(pilot: Pilot[Any], *texts: str, timeout: float = 20) -> str:
    """Wait until every text is on screen (repaints trail state changes); the screen."""
    app = pilot.app
    assert isinstance(app, PgTopApp)
    await wait_for(pilot, lambda: all(t in screen_text(app) for t in texts), repr(texts), timeout)
    return screen_text(app)


def notifications(app: PgTopApp) -> list[str]:
    """The messages of the notifications on screen (toasts)."""
    return [n.message for n in app._notifications]


async def notified(pilot: Pilot[Any], text: str, timeout: float = 20) -> None:
    """Wait until a notification containing ``text`` is shown."""
    app = pilot.app
    assert isinstance(app, PgTopApp)
    await wait_for(pilot, lambda: any(text in m for m in notifications(app)), repr(text), timeout)


def stage_sessions(
    sessions: Any, names: list[str], sql: str = "SELECT pg_sleep(60)"
) -> dict[str, int]:
    """A real session per application name, running ``sql`` (a sleep by default) until the
    test ends; name -> pid, once every one runs it."""
    for name in names:
        sessions.run_in_background(sessions.open(application_name=name), sql)
    sessions.wait_until(
        "SELECT count(*) = %s FROM pg_stat_activity "
        "WHERE application_name = ANY(%s) AND state = 'active'",
        (len(names), names),
    )
    rows = sessions.admin.execute(
        "SELECT application_name, pid FROM pg_stat_activity WHERE application_name = ANY(%s)",
        (names,),
    ).fetchall()
    return dict(rows)
