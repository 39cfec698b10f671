"""MainScreen: the header, the tabs and the footer; only the visible tab does work."""

from __future__ import annotations

import contextlib
from collections.abc import Hashable, Iterable, Sequence
from typing import ClassVar

from textual import events, on
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import TabbedContent

from pgtop.collectors.health import HealthData
from pgtop.model import ActivitySnapshot
from pgtop.panes.base import ListPane
from pgtop.panes.catalog import CatalogPane
from pgtop.panes.host import Host, host_of
from pgtop.widgets.footer import KeysFooter
from pgtop.widgets.header import ActionBar, ConnectionBanner, ServerHeader
from pgtop.widgets.keyed_table import KeyedTable
from pgtop.widgets.repaint import ChangedRowsCompositor


class MainScreen(Screen[None]):
    """Header, connection banner, tabs, footer."""

    PANES: ClassVar[tuple[type[ListPane], ...]] = ()

    def __init__(self) -> None:
        super().__init__()
        # A refresh changes a few rows: the widgets on the others are not rendered again.
        self._compositor = ChangedRowsCompositor()

    @classmethod
    def of(cls, panes: Sequence[type[ListPane]]) -> MainScreen:
        """A main screen showing ``panes``, each shown by its key (ids ``tab-<name>``)."""
        bindings: list[BindingType] = [
            Binding(
                pane.KEY, f"show_tab('{pane.TAB}')", pane.TITLE, show=False, id=f"tab-{pane.TAB}"
            )
            for pane in panes
        ]
        kind = type("MainScreen", (cls,), {"PANES": tuple(panes), "BINDINGS": bindings})
        screen: MainScreen = kind()
        return screen

    @property
    def host(self) -> Host:
        return host_of(self.app)

    def compose(self) -> ComposeResult:
        yield ServerHeader()
        yield ConnectionBanner()
        yield ActionBar()
        first = self.PANES[0].TAB if self.PANES else None
        with TabbedContent(initial=first or ""):
            # Only the first tab's widgets are made at start-up; each other tab's when
            # it is first shown.
            for index, pane in enumerate(self.PANES):
                yield pane(lazy=index > 0)
        yield KeysFooter()

    def on_mount(self) -> None:
        self.watch(self.app, "snapshot", self.show_latest_snapshot)
        if self.PANES:
            self.query_one(f"#{self.PANES[0].TAB}-table").focus()

    def on_resize(self, event: events.Resize) -> None:
        # Tabs are padded on both sides; where that does not fit (eight tabs at 80 columns),
        # on one side only, so that every tab stays in view rather than scrolling away.
        labels = sum(len(f"{pane.KEY} {pane.TITLE}") + 2 for pane in self.PANES)
        self.set_class(labels > event.size.width, "-tight-tabs")
        # Where even that does not fit with the Servers tab (nine tabs), the tabs not shown
        # give only their key.
        if any(pane.TAB == "servers" for pane in self.PANES):
            self._keys_only = labels - len(self.PANES) > event.size.width
            self._label_tabs()

    _keys_only = False

    def _label_tabs(self) -> None:
        tabs = self.query_one(TabbedContent)
        for pane in self.PANES:
            shown = not self._keys_only or tabs.active == pane.TAB
            label = f"{pane.KEY} {pane.TITLE}" if shown else pane.KEY
            with contextlib.suppress(Exception):  # tabs not mounted yet
                tab = tabs.get_tab(pane.TAB)
                if tab.label_text != label:
                    tab.label = label

    def panes(self) -> Iterable[ListPane]:
        # By isinstance: a query by type misses the panes whose first base is a mixin.
        return [node for node in self.walk_children() if isinstance(node, ListPane)]

    def active_pane(self) -> ListPane | None:
        tabs = self.query_one(TabbedContent)
        pane = tabs.get_pane(tabs.active) if tabs.active else None
        return pane if isinstance(pane, ListPane) else None

    def show_latest_snapshot(self, snapshot: ActivitySnapshot | None) -> None:
        self.query_one(ServerHeader).show(snapshot)
        pane = self.active_pane()
        if pane is not None:
            pane.show_activity(snapshot)

    def show_tab_data(self, tab: str, data: object, reason: str) -> None:
        """New data of ``tab``'s collector (or why there is none): to its pane if shown."""
        if isinstance(data, HealthData):
            # Health data may come while the screen is being composed or torn down. The
            # header is the screen's child: on every refresh, only the children are looked
            # at, not every widget.
            for header in self.query_children(ServerHeader):
                header.show_health(data)
        pane = self.active_pane()
        if pane is None or tab != pane.TAB:
            return
        if reason:
            pane.show_failure(reason)
        else:
            pane.show_data(data)

    def server_switched(self) -> None:
        """Another server is shown: every pane but the servers view forgets the one before
        (its filter stays), and waits for the first read."""
        for header in self.query_children(ServerHeader):
            header.forget()
        for pane in self.panes():
            if pane.TAB != "servers":
                pane.forget()
        self.refresh_bindings()

    def catalog_database_chosen(self, database: str) -> None:
        """The catalog tabs read ``database`` now: the ones that show another say so."""
        for pane in self.query(CatalogPane):
            if pane.composed:
                pane.database_chosen(database)
        active = self.active_pane()
        if isinstance(active, CatalogPane):
            active.state_needs(now=True)

    @on(TabbedContent.TabActivated)
    def show_on_tab_switch(self) -> None:
        # A tab switch never waits for a poll: the pane gets the latest data now, and its
        # collector runs at once if its data is due.
        if self._keys_only:
            self._label_tabs()
        pane = self.active_pane()
        if pane is None:
            return
        pane.show_content()
        host = self.host
        latest = host.tab_shown(pane.TAB)
        pane.show_activity(host.snapshot)
        if latest is not None:
            pane.show_data(latest)
        pane.state_needs(now=latest is None)
        focusable = pane.query(KeyedTable)
        if focusable:
            focusable.first().focus()

    def action_show_tab(self, tab: str) -> None:
        tabs = self.query_one(TabbedContent)
        pane = tabs.get_pane(tab)
        if isinstance(pane, ListPane):
            pane.show_content()  # at once: keys typed next may be for it
        tabs.active = tab

    def go_to(self, tab: str, key: Hashable | None, what: str) -> bool:
        """Show ``tab``, the cursor on the row ``key`` when it shows; False without such tab."""
        pane = next((p for p in self.panes() if tab == p.TAB), None)
        if pane is None:
            return False
        self.action_show_tab(tab)
        if key is not None:
            self.call_after_refresh(pane.reveal, key, what)
        return True

    def screen_commands(self) -> Iterable[SystemCommand]:
        for pane in self.PANES:
            yield SystemCommand(
                f"Show {pane.TITLE}",
                f"Switch to tab {pane.KEY} {pane.TITLE}",
                lambda tab=pane.TAB: self.action_show_tab(tab),
            )
        active = self.active_pane()
        if active is not None:
            yield from active.screen_commands()
