"""What every tab's collector is, and what its source gives it.

A collector turns the server into one frozen value for one tab (``LocksData``,
``StatementsSnapshot``, ``TablesData``...). It runs only while its tab is shown, on the
monitoring connection its source lends it, right after an Activity poll (whose snapshot it
may reuse). It keeps what it needs between two collections (previous counters for rates,
texts already read, rows already built, a connection to another database) and nothing else
may touch that: a pane says what it needs as a frozen value (the rows on screen, the
database, a request to read everything again), and the collector decides what that costs.
A new collector is made for each new connection (its capabilities may have changed).
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

import psycopg

from pgtop.config import Thresholds
from pgtop.model import Capabilities

Connection = psycopg.AsyncConnection[dict[str, Any]]
T = TypeVar("T")


class CollectorContext:
    """What a source gives the collectors it makes for one connection."""

    def __init__(
        self,
        capabilities: Capabilities,
        connect: Callable[[str], Awaitable[Connection]],
        thresholds: Thresholds | None = None,
    ) -> None:
        self.capabilities = capabilities
        self._connect = connect
        self.thresholds = thresholds or Thresholds()
        """When the Health checks warn (the config file's ``[health]``)."""
        self._shared: dict[type[Any], Any] = {}

    async def connect(self, database: str) -> Connection:
        """A new connection to another database of the server, opened like the monitoring
        one (the source holds the connection settings and the password, never a pane).

        Raises:
            pg.ConnectError: it cannot be opened.
        """
        return await self._connect(database)

    def shared(self, kind: type[T]) -> T:
        """The one ``kind()`` the collectors of this context share (the catalog tabs share
        which database they read and the connection to it)."""
        found = self._shared.get(kind)
        if found is None:
            found = self._shared[kind] = kind()
        return found


class TabCollector(Protocol):
    """Reads one tab's data."""

    @property
    def interval(self) -> float:
        """Least seconds between two collections that are due by time (expensive views
        refresh more slowly); what a pane newly needs is read at once."""
        ...

    async def collect(
        self, conn: Connection, activity: Any, needs: Any, *, due: bool
    ) -> object | None:
        """The tab's data now, or None when there is nothing new to read.

        Args:
            conn: the monitoring connection.
            activity: the Activity snapshot just taken.
            needs: what the tab's pane says it needs (its collector's own frozen type), or
                None before it said anything.
            due: ``interval`` has passed (or a refresh was asked for): read it all; when
                False, read only what ``needs`` asks that was not read yet, if anything.
        """
        ...

    async def close(self) -> None:
        """Close what it opened (a connection to another database)."""
        ...


CollectorFactory = Callable[[CollectorContext], TabCollector]
"""Makes a tab's collector for a connection (``type[SomeCollector]`` is one)."""


class DeferredCollector:
    """A collector class named by its module and name, imported when the first collector is
    made: the modules of tabs never shown are never loaded, and none delays the first data
    on screen."""

    __slots__ = ("_class", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        """``module:Class``."""
        self._class: CollectorFactory | None = None

    def load(self) -> CollectorFactory:
        """The collector class (imported now if it was not)."""
        if self._class is None:
            module, _, qualname = self.name.partition(":")
            self._class = getattr(importlib.import_module(module), qualname)
        return self._class

    def __call__(self, context: CollectorContext) -> TabCollector:
        return self.load()(context)

    def __repr__(self) -> str:
        return f"DeferredCollector({self.name!r})"


def collector_class(factory: CollectorFactory) -> CollectorFactory:
    """What ``factory`` makes collectors with: a deferred one's class, imported now."""
    return factory.load() if isinstance(factory, DeferredCollector) else factory
