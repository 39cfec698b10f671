"""MainScreen: the header, the six tabs and the footer; only the visible tab does work."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, ClassVar, Protocol, cast

from textual import on
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Footer, TabbedContent, TabPane

from pgtop.model import ActivitySnapshot
from pgtop.screens.activity import ActivityPane
from pgtop.screens.indexes import IndexesPane
from pgtop.screens.locks import LocksPane
from pgtop.screens.statements import StatementsPane
from pgtop.screens.tables import TablesPane
from pgtop.screens.vacuum import VacuumPane
from pgtop.widgets.status_bar import ActionBar, ConnectionBanner, ServerHeader

if TYPE_CHECKING:
    from pgtop.app import PgTopApp

TAB_TITLES = {
    "activity": "1 Activity",
    "locks": "2 Locks",
    "queries": "3 Queries",
    "tables": "4 Tables",
    "vacuum": "5 Vacuum",
    "indexes": "6 Indexes",
}


class SnapshotPane(Protocol):
    """What every tab pane offers the screen.

    A pane whose tab has a collector (see ``PaneCollector``) also has
    ``show_data(data: object) -> None`` and ``show_failure(reason: str) -> None``.
    """

    def show(self, snapshot: ActivitySnapshot | None) -> None: ...


class MainScreen(Screen[None]):
    """Header, connection banner, tabs, footer."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(str(n), f"show_tab('{tab}')", title.split(" ", 1)[1], show=False, id=f"tab-{tab}")
        for n, (tab, title) in enumerate(TAB_TITLES.items(), start=1)
    ]

    @property
    def pgtop(self) -> PgTopApp:
        return cast("PgTopApp", self.app)

    def compose(self) -> ComposeResult:
        yield ServerHeader()
        yield ConnectionBanner()
        yield ActionBar()
        with TabbedContent(initial="activity"):
            yield ActivityPane(TAB_TITLES["activity"], id="activity")
            yield LocksPane(TAB_TITLES["locks"], id="locks")
            yield StatementsPane(TAB_TITLES["queries"], id="queries")
            yield TablesPane(TAB_TITLES["tables"], id="tables")
            yield VacuumPane(TAB_TITLES["vacuum"], id="vacuum")
            yield IndexesPane(TAB_TITLES["indexes"], id="indexes")
        yield Footer()

    def on_mount(self) -> None:
        self.watch(self.app, "snapshot", self.show_latest_snapshot)
        self.watch(self.app, "pane_update", self.show_pane_update, init=False)
        self.query_one("#activity-table").focus()

    def active_pane(self) -> SnapshotPane:
        tabs = self.query_one(TabbedContent)
        return cast(SnapshotPane, tabs.get_pane(tabs.active))

    def show_latest_snapshot(self, snapshot: ActivitySnapshot | None) -> None:
        self.query_one(ServerHeader).show(snapshot)
        self.active_pane().show(snapshot)

    def show_pane_update(self, update: tuple[str, object, str] | None) -> None:
        if update is None:
            return
        tab, data, reason = update
        tabs = self.query_one(TabbedContent)
        if tab != tabs.active:
            return
        pane = tabs.get_pane(tab)
        if reason:
            show_failure = getattr(pane, "show_failure", None)
            if show_failure is not None:
                show_failure(reason)
        else:
            show_data = getattr(pane, "show_data", None)
            if show_data is not None:
                show_data(data)

    @on(TabbedContent.TabActivated)
    def show_on_tab_switch(self) -> None:
        # A tab switch never waits for a poll: the pane gets the latest data now, and its
        # collector runs at once if its data is due.
        app = self.pgtop
        tab = self.query_one(TabbedContent).active
        app.active_tab = tab
        self.active_pane().show(app.snapshot)
        if tab in app.pane_data:
            self.show_pane_update((tab, app.pane_data[tab], ""))
        if app.pane_due(tab):
            app.refresh_now()
        pane = cast(TabPane, self.active_pane())
        focusable = pane.query("KeyedTable")
        if focusable:
            focusable.first().focus()

    def action_show_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab

    def screen_commands(self) -> Iterable[SystemCommand]:
        for tab, title in TAB_TITLES.items():
            yield SystemCommand(
                f"Show {title.split(' ', 1)[1]}",
                f"Switch to tab {title}",
                lambda tab=tab: self.action_show_tab(tab),
            )
        commands = getattr(self.active_pane(), "screen_commands", None)
        if commands is not None:
            yield from commands()
