"""Reading catalogs cheaply: what is read on every refresh, what now and then, and how a
relation is sized without waiting on its lock."""

from __future__ import annotations

from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

import psycopg

from pgtop import sql
from pgtop.collectors.base import Connection
from pgtop.collectors.catalog.model import (
    SCAN_EVERY,
    SIZE_LOCK_TIMEOUT,
    CatalogHeader,
    DatabaseEntry,
)


def _header(
    row: Mapping[str, Any], database_pages: int, listed_at: datetime | None
) -> CatalogHeader:
    return CatalogHeader(
        database=row["database"],
        collected_at=row["collected_at"],
        block_size=row["block_size"],
        database_bytes=database_pages * row["block_size"],
        datfrozenxid_age=row["datfrozenxid_age"],
        stats_reset=row["stats_reset"],
        listed_at=listed_at if listed_at != row["collected_at"] else None,
    )


async def under_lock_timeout(
    conn: Connection, query: sql.Query, oids: Sequence[int]
) -> tuple[list[dict[str, Any]], str]:
    """Run a size query for ``oids`` in a transaction whose lock_timeout is 50 ms.

    Returns:
        The rows, and "" or why there are none (a lock arrived, the statement timed out).
    """
    version = conn.info.server_version
    try:
        async with conn.transaction():
            await conn.execute(
                sql.SIZE_LOCK_TIMEOUT.sql(version), {"lock_timeout": SIZE_LOCK_TIMEOUT}
            )
            cur = await conn.execute(query.sql(version), {"oids": list(oids)})
            rows = await cur.fetchall()
    except psycopg.errors.LockNotAvailable:
        return [], f"a relation on screen was locked within {SIZE_LOCK_TIMEOUT}: estimates shown"
    except psycopg.errors.QueryCanceled:
        return [], "reading exact sizes timed out: estimates shown"
    return rows, ""


async def exact_table_sizes(
    conn: Connection, oids: Sequence[int]
) -> tuple[dict[int, tuple[int, int, int]], set[int], str]:
    """Exact sizes of a few tables, never waiting on a lock.

    Returns:
        ``(table, indexes, toast)`` bytes per oid sized; the oids not sized because they
        are locked (or queued for) ACCESS EXCLUSIVE; and "" or why nothing could be read.
        A table dropped meanwhile is in neither.
    """
    if not oids:
        return {}, set(), ""
    rows, problem = await under_lock_timeout(conn, sql.TABLE_SIZES, oids)
    sizes: dict[int, tuple[int, int, int]] = {}
    locked: set[int] = set()
    for row in rows:
        heap_and_toast, indexes, toast = (
            row["table_and_toast_bytes"],
            row["index_bytes"],
            row["toast_bytes"],
        )
        if row["locked"]:
            locked.add(row["oid"])
        elif heap_and_toast is not None and indexes is not None and toast is not None:
            sizes[row["oid"]] = (heap_and_toast - toast, indexes, toast)
    return sizes, locked, problem


async def exact_index_sizes(
    conn: Connection, oids: Sequence[int]
) -> tuple[dict[int, int], set[int], str]:
    """Exact sizes of a few indexes, the oids locked, and "" or why nothing could be read;
    never waiting on a lock."""
    if not oids:
        return {}, set(), ""
    rows, problem = await under_lock_timeout(conn, sql.INDEX_SIZES, oids)
    sizes = {
        row["oid"]: row["bytes"] for row in rows if not row["locked"] and row["bytes"] is not None
    }
    locked = {row["oid"] for row in rows if row["locked"]}
    return sizes, locked, problem


@dataclass(frozen=True, slots=True)
class DatabaseList:
    """A request for the databases the catalog tabs can switch to, with their sizes
    (pg_database_size() reads the size of every file: on demand only)."""

    async def read(self, conn: Connection) -> list[DatabaseEntry]:
        cur = await conn.execute(sql.DATABASES.sql(conn.info.server_version))
        return [DatabaseEntry(**row) for row in await cur.fetchall()]


Item = TypeVar("Item")


class RowCache(Generic[Item]):
    """Objects built from rows, kept while their row comes back unchanged.

    With 25,000 tables, most rows are the same from one refresh to the next: comparing a
    row tuple is much cheaper than building its object again (and the panes reuse the
    table rows of objects they have already shown).
    """

    def __init__(self) -> None:
        self._rows: dict[object, tuple[tuple[Any, ...], Item]] = {}
        self.scope: object = None
        """What the cached objects depend on besides their row (database, settings)."""

    def build(
        self,
        rows: Iterable[tuple[Any, ...]],
        names: Sequence[str],
        make: Callable[[dict[str, Any], dict[str, Any] | None], Item],
        *,
        scope: object = None,
        read: Container[object] | None = None,
        reusable: Callable[[Item], bool] | None = None,
        adjust: Callable[[Item], Item] | None = None,
    ) -> list[Item]:
        """One object per row (keyed by its first column), reused when the row is unchanged.

        Args:
            rows: rows as tuples, in the order of ``names``.
            names: column names.
            make: builds an object from the row and the previous row of the same key.
            scope: when it differs from the last call's, nothing is reused.
            read: the keys whose rows were read now (None: all); any other row is one kept
                from an earlier read (``merged``), and so is its object.
            reusable: whether a row read again unchanged may keep its object.
            adjust: brings a kept object up to date with what its row does not say (locks
                read apart...): the same object when nothing changed.
        """
        old = self._rows if scope == self.scope else {}
        self.scope = scope
        fresh: dict[object, tuple[tuple[Any, ...], Item]] = {}
        items: list[Item] = []
        for row in rows:
            key = row[0]
            cached = old.get(key)
            if cached is not None and (
                (read is not None and key not in read)
                or (cached[0] == row and (reusable is None or reusable(cached[1])))
            ):
                item = cached[1] if adjust is None else adjust(cached[1])
            else:
                previous = dict(zip(names, cached[0], strict=True)) if cached is not None else None
                item = make(dict(zip(names, row, strict=True)), previous)
            fresh[key] = (row, item)
            items.append(item)
        self._rows = fresh
        return items

    def merged(
        self, rows: Iterable[tuple[Any, ...]], gone: Iterable[object]
    ) -> list[tuple[Any, ...]]:
        """The rows kept, with ``rows`` in place of (or besides) those of the same key and
        without the keys in ``gone``."""
        merged = {key: row for key, (row, _) in self._rows.items()}
        for key in gone:
            merged.pop(key, None)
        for row in rows:
            merged[row[0]] = row
        return list(merged.values())

    def keys(self) -> Iterable[Any]:
        """The keys of the rows kept."""
        return self._rows.keys()

    def update(self, key: object, item: Item) -> None:
        """Replace the object kept for ``key`` (its row stays)."""
        cached = self._rows.get(key)
        if cached is not None:
            self._rows[key] = (cached[0], item)


class EveryNth(Generic[Item]):
    """A value read on one refresh in ``every`` and reused on the others.

    For what costs a scan of a whole catalog and rarely changes. It is read at once for
    another database (``key``), or on the next refresh after ``expire()``.
    """

    def __init__(self, every: int = SCAN_EVERY) -> None:
        self.every = every
        self._key: object = None
        self._value: Item | None = None
        self._reused = 0

    def reuse(self, key: object) -> Item | None:
        """The value kept for ``key``, counting this refresh as one that reuses it; None
        when it is to be read on this refresh."""
        if self._value is None or self._key != key or self._reused + 1 >= self.every:
            return None
        self._reused += 1
        return self._value

    def keep(self, key: object, value: Item) -> None:
        """The value just read for ``key``."""
        self._key, self._value, self._reused = key, value, 0

    def update(self, key: object, value: Item) -> None:
        """The value worked out again from a refresh that did not read it: the next read
        comes when it would have."""
        if self._value is not None and self._key == key:
            self._value = value

    def expire(self) -> None:
        """Read it on the next refresh."""
        self._value = None


@dataclass(frozen=True, slots=True)
class CatalogRead:
    """What one catalog collection read."""

    header: CatalogHeader
    names: list[str]
    """The list's columns."""
    rows: list[tuple[Any, ...]]
    """Every row of the list: read now, or kept from an earlier read."""
    read: set[int] | None
    """The keys of the rows read now; None when the whole list was."""
    locked: set[int]
    """Relations locked, or queued for, ACCESS EXCLUSIVE."""
    extra: list[list[Any]]
    """The rows of the other queries asked for."""


def _names(cur: psycopg.AsyncCursor[Any]) -> list[str]:
    assert cur.description is not None
    return [column.name for column in cur.description]
