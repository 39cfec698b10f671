"""What the whole app writes to the terminal when a refresh changes a little: only the cells
that changed, each where it stands on screen (inside the header's padding, on its three
lines), so that what was written, put on the previous screen, is what the app shows."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from canned import NOW, CannedSource, backend, incident_snapshot, settle
from helpers import TerminalWrites, screen_text
from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets._footer import FooterKey

from pgtop.app import PgTopApp
from pgtop.config import Settings
from pgtop.model import ActivitySnapshot
from pgtop.widgets.footer import KeysFooter
from pgtop.widgets.keyed_table import KeyedTable


def with_active(snapshot: ActivitySnapshot, *pids: int) -> ActivitySnapshot:
    """``snapshot`` with one more active session per pid (a new snapshot object)."""
    extra = tuple(
        backend(
            pid,
            state="active",
            wait_event_type=None,
            wait_event=None,
            xact_start=NOW - timedelta(seconds=1),
            query_start=NOW - timedelta(seconds=1),
            state_change=NOW - timedelta(seconds=1),
            query=f"SELECT {pid}",
        )
        for pid in pids
    )
    return replace(snapshot, backends=snapshot.backends + extra)


async def test_a_refresh_writes_what_changed_where_it_is_shown() -> None:
    app = PgTopApp(Settings(refresh=60), source=CannedSource(incident_snapshot()))
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot)
        await pilot.wait_for_scheduled_animations()  # the tab's underline
        before = screen_text(app).split("\n")
        for pids in ((5001,), (5001, 5002, 5003), ()):
            writes = TerminalWrites(app)
            app.snapshot = with_active(incident_snapshot(), *pids)
            await pilot.pause()
            await pilot.pause()
            after = screen_text(app).split("\n")
            assert after != before
            assert writes.apply(before) == after
            # No line written whole: the header's counts, the new rows, the status line.
            assert all(len(text) < 120 for text in writes.lines().values()), writes.lines()
            before = after


async def header_at(
    size: tuple[int, int], resized: tuple[int, int] | None = None
) -> tuple[list[str], list[str]]:
    """The header's lines of an app started at ``size`` (then ``resized``), before and after
    a refresh's changes are written; checks that what was written is what shows."""
    app = PgTopApp(Settings(refresh=60), source=CannedSource(incident_snapshot()))
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        if resized is not None:
            await pilot.resize_terminal(*resized)
            await pilot.pause()
        await pilot.wait_for_scheduled_animations()
        before = screen_text(app).split("\n")
        writes = TerminalWrites(app)
        app.snapshot = with_active(incident_snapshot(), 5001)
        await pilot.pause()
        await pilot.pause()
        after = screen_text(app).split("\n")
        assert after != before
        assert writes.apply(before) == after
        return before[:3], after[:3]


async def test_after_a_resize_the_header_is_laid_out_for_its_new_width() -> None:
    before, after = await header_at((80, 24))
    assert "conns 9/100" in before[1]
    assert "conns 10/100" in after[1]
    assert await header_at((200, 50), resized=(80, 24)) == (before, after)
    wide, _ = await header_at((200, 50))
    assert "PostgreSQL 15.18" in wide[0]
    assert await header_at((80, 24), resized=(200, 50)) == await header_at((200, 50))


async def test_the_footer_is_made_again_only_when_its_keys_change() -> None:
    app = PgTopApp(Settings(refresh=60), source=CannedSource(incident_snapshot()))
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot)
        await pilot.wait_for_scheduled_animations()
        footer = app.screen.query_one(KeysFooter)
        table = app.screen.query_one("#activity-table", KeyedTable)
        keys = list(footer.children)
        assert keys
        shown = screen_text(app).split("\n")[-1]
        first = table.cursor_key
        await pilot.press("down", "down")
        await pilot.pause()
        assert table.cursor_key != first
        # The same keys, enabled the same: the same widgets.
        assert list(footer.children) == keys
        assert screen_text(app).split("\n")[-1] == shown
        # In the filter box, "/" is text and escape clears: other keys.
        await pilot.press("slash")
        await pilot.pause()
        await pilot.pause()
        assert list(footer.children) != keys


async def test_keys_greyed_and_back_are_the_same_widgets() -> None:
    """A key that depends on the row under the cursor (no row: nothing to cancel) is
    greyed where it stands; the footer is not made again."""
    snapshot = incident_snapshot()
    app = PgTopApp(Settings(refresh=60), source=CannedSource(snapshot))
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot)
        await pilot.wait_for_scheduled_animations()
        footer = app.screen.query_one(KeysFooter)
        keys = list(footer.children)
        cancel = next(key for key in footer.query(FooterKey) if key.action == "signal('cancel')")
        assert not cancel.has_class("-disabled")
        shown = screen_text(app).split("\n")[-1]
        app.snapshot = replace(snapshot, backends=())
        await pilot.pause()
        await pilot.pause()
        assert cancel.has_class("-disabled")
        assert list(footer.children) == keys
        app.snapshot = snapshot
        await pilot.pause()
        await pilot.pause()
        assert not cancel.has_class("-disabled")
        assert list(footer.children) == keys
        assert screen_text(app).split("\n")[-1] == shown


async def test_a_refresh_renders_only_the_widgets_on_changed_rows(monkeypatch: Any) -> None:
    """The rows a refresh changes are rendered again, not the tab bar between them."""
    rendered: list[str] = []
    render_lines = Widget.render_lines

    def counted(self: Widget, crop: Region) -> list[Strip]:
        rendered.append(type(self).__name__)
        return render_lines(self, crop)

    app = PgTopApp(Settings(refresh=60), source=CannedSource(incident_snapshot()))
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot)
        await pilot.wait_for_scheduled_animations()
        await pilot.pause(0.2)  # the updates of the start, written
        before = screen_text(app).split("\n")
        monkeypatch.setattr(Widget, "render_lines", counted)
        writes = TerminalWrites(app)
        app.snapshot = with_active(incident_snapshot(), 5001)
        await pilot.pause()
        await pilot.pause()
        updated = set(rendered)
        after = screen_text(app).split("\n")  # renders every widget
        assert writes.apply(before) == after
        assert {"ServerHeader", "KeyedTable"} <= updated, updated
        assert "ContentTab" not in updated, "the tab bar did not change"
