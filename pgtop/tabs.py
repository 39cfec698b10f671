"""Every tab, in order: its pane and the collector of its data. Adding a tab is a pane class,
a collector and one line here. Which tabs show depends on what the source reads: a
PostgreSQL server's, or a PgBouncer admin console's.

Collectors are named, not imported: a tab's collector module (and the data classes it
defines) loads when the tab is first collected, after the first data is on screen."""

from __future__ import annotations

from dataclasses import dataclass

from pgtop.collectors.base import CollectorFactory, DeferredCollector
from pgtop.panes.activity import ActivityPane
from pgtop.panes.base import ListPane
from pgtop.panes.health import HealthPane
from pgtop.panes.indexes import IndexesPane
from pgtop.panes.locks import LocksPane
from pgtop.panes.pools import PoolsPane
from pgtop.panes.queries import QueriesPane
from pgtop.panes.replication import ReplicationPane
from pgtop.panes.servers import ServersPane
from pgtop.panes.tables import TablesPane
from pgtop.panes.vacuum import VacuumPane
from pgtop.source import SourceKind


@dataclass(frozen=True, slots=True)
class Tab:
    """A tab: what shows it, and what reads its data (None: the Activity snapshot is it)."""

    pane: type[ListPane]
    collector: CollectorFactory | None = None
    """Makes its collectors: a ``DeferredCollector`` names the class without importing it."""
    always: bool = False
    """Its collector runs after every Activity poll, whichever tab is shown."""

    @property
    def name(self) -> str:
        return self.pane.TAB


TABS = (
    Tab(ActivityPane),
    Tab(LocksPane, DeferredCollector("pgtop.collectors.locks:LocksCollector")),
    Tab(QueriesPane, DeferredCollector("pgtop.collectors.statements:StatementsCollector")),
    Tab(TablesPane, DeferredCollector("pgtop.collectors.catalog:TablesCollector")),
    Tab(VacuumPane, DeferredCollector("pgtop.collectors.catalog:VacuumCollector")),
    Tab(IndexesPane, DeferredCollector("pgtop.collectors.catalog:IndexesCollector")),
    Tab(HealthPane, DeferredCollector("pgtop.collectors.health:HealthCollector"), always=True),
    Tab(ReplicationPane, DeferredCollector("pgtop.collectors.replication:ReplicationCollector")),
)


SERVERS_TAB = Tab(ServersPane)
"""First, before the PostgreSQL tabs, when several servers are watched."""

POOLER_TABS = (Tab(PoolsPane), Tab(HealthPane, always=True))
"""A PgBouncer admin console's: the Pools view, whose data is the snapshot of each refresh,
and its Health checks, which its source works out from that snapshot."""


def tabs_for(kind: SourceKind) -> tuple[Tab, ...]:
    """The tabs of a source of this kind."""
    return POOLER_TABS if kind == "pgbouncer" else TABS


def collectors(tabs: tuple[Tab, ...] = TABS) -> dict[str, CollectorFactory]:
    """The collector of each tab that has one, by tab name."""
    return {tab.name: tab.collector for tab in tabs if tab.collector is not None}
