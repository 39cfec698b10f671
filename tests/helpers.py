"""Helpers for tests that drive the real app: read the screen, wait for conditions."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from textual._compositor import CompositorUpdate
from textual.app import App
from textual.pilot import Pilot
from textual.screen import Screen

from pgtop.app import PgTopApp
from pgtop.widgets.repaint import ChangedCellsApp

_MOVE_TO = re.compile(r"\x1b\[(\d+);(\d+)H")
_SGR = re.compile(r"\x1b\[[0-9;:]*m|\n")


def screen_text(app: App[Any]) -> str:
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


class TerminalWrites:
    """What an app running headless would have written to its terminal, update by update:
    the text Textual renders for its driver (a headless driver drops it)."""

    def __init__(self, app: App[Any]) -> None:
        self.updates: list[str] = []
        display = app._display
        convert = app.terminal_update if isinstance(app, ChangedCellsApp) else None

        def capture(screen: Screen[Any], renderable: object) -> None:
            written = convert(renderable) if convert is not None else renderable  # type: ignore[arg-type]
            if isinstance(written, CompositorUpdate):
                self.updates.append(written.render_segments(app.console))
            display(screen, renderable)  # type: ignore[arg-type]

        app._display = capture  # type: ignore[method-assign]

    def clear(self) -> None:
        self.updates.clear()

    @property
    def size(self) -> int:
        """Bytes written."""
        return sum(len(update.encode()) for update in self.updates)

    def lines(self) -> dict[int, str]:
        """The visible text written on each terminal line (0-based), escapes left out."""
        written: dict[int, str] = {}
        for update in self.updates:
            pieces = _MOVE_TO.split(update)
            for row, _column, text in zip(pieces[1::3], pieces[2::3], pieces[3::3], strict=True):
                line = int(row) - 1
                written[line] = written.get(line, "") + _SGR.sub("", text)
        return written

    def apply(self, screen: list[str]) -> list[str]:
        """``screen`` (lines of text) with what was written put where it was written."""
        lines = [list(line) for line in screen]
        for update in self.updates:
            pieces = _MOVE_TO.split(update)
            for row, column, text in zip(pieces[1::3], pieces[2::3], pieces[3::3], strict=True):
                line, x = lines[int(row) - 1], int(column) - 1
                for char in _SGR.sub("", text):
                    if x < len(line):
                        line[x] = char
                    x += 1
        return ["".join(line) for line in lines]
