"""The three catalog collectors, and what they share."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, ClassVar

import psycopg

from pgtop import pg, sql
from pgtop.collectors.base import CollectorContext, Connection
from pgtop.collectors.catalog.model import (
    HORIZON_LIMIT,
    INTERVAL_FACTOR,
    LIST_EVERY,
    LIST_MAX_AGE,
    MAX_EXACT,
    MIN_INTERVAL,
    AutovacuumSettings,
    CatalogNeeds,
    DatabasePages,
    HorizonHolder,
    IndexesData,
    IndexInfo,
    TableInfo,
    TablesData,
    VacuumData,
    VacuumProgress,
    VacuumTable,
)
from pgtop.collectors.catalog.reads import (
    CatalogRead,
    EveryNth,
    RowCache,
    _header,
    _names,
    exact_index_sizes,
    exact_table_sizes,
)
from pgtop.collectors.catalog.rules import (
    autovacuum_due,
    find_duplicates,
    horizon_order,
    index_signature,
    parse_reloptions,
    per_second,
    relocked,
    tables_pages,
    top_by,
)
from pgtop.model import ActivitySnapshot


class CatalogConnectError(psycopg.OperationalError):
    """The catalog tabs' connection to the chosen database could not be opened."""


class CatalogShared:
    """What the three catalog collectors of one connection share: the connection to a
    database other than the monitoring connection's, and the database size (a scan of all of
    pg_class, read now and then)."""

    def __init__(self) -> None:
        self.pages: EveryNth[DatabasePages] = EveryNth()
        self._conn: Connection | None = None
        self._conn_database: str | None = None

    async def connection(
        self, monitoring: Connection, database: str, context: CollectorContext
    ) -> Connection:
        """The connection to read ``database`` from: the monitoring one, or one of its own.

        Raises:
            CatalogConnectError: the database cannot be connected to.
        """
        if database == context.capabilities.database:
            await self.close()
            return monitoring
        conn = self._conn
        if conn is not None and (conn.closed or conn.broken or self._conn_database != database):
            await self.close()
            conn = None
        if conn is None:
            try:
                conn = await context.connect(database)
            except pg.ConnectError as exc:
                raise CatalogConnectError(str(exc)) from None
            self._conn, self._conn_database = conn, database
        return conn

    async def close(self) -> None:
        """Close the connection to another database, if any."""
        conn, self._conn, self._conn_database = self._conn, None, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()


class CatalogCollector:
    """The part the three catalog collectors share: cadence, what the pane asked for, and
    which connection."""

    tab: ClassVar[str] = ""
    fixed_interval: ClassVar[float | None] = None
    """A cadence of its own instead of the slow one (tests)."""

    def __init__(self, context: CollectorContext) -> None:
        self.context = context
        self.capabilities = context.capabilities
        self.shared = context.shared(CatalogShared)
        self.needs = CatalogNeeds()
        """What the pane asked for at the last collection."""
        self._version = self.capabilities.server_version_num
        self._listed: tuple[str, float, datetime] | None = None
        """The database, monotonic and server time of the last read of the whole list."""
        self._list_seen = 0
        self._sizes_seen = 0
        self._database: str | None = None

    @property
    def interval(self) -> float:
        """Least seconds between two collections: slow, these read catalogs."""
        if self.fixed_interval is not None:
            return self.fixed_interval
        return max(MIN_INTERVAL, INTERVAL_FACTOR * self.needs.refresh)

    async def close(self) -> None:
        await self.shared.close()

    async def collect(
        self,
        conn: Connection,
        activity: ActivitySnapshot,
        needs: CatalogNeeds | None = None,
        *,
        due: bool = True,
    ) -> object | None:
        """This tab's data, from the database ``needs`` names: all of it when ``due`` or
        asked for (F5, another database), exact sizes of the rows on screen alone when
        only those were asked for, else nothing."""
        needs = needs or CatalogNeeds()
        self.needs = needs
        list_asked = needs.list_asked != self._list_seen
        sizes_asked = needs.sizes_asked != self._sizes_seen
        self._list_seen, self._sizes_seen = needs.list_asked, needs.sizes_asked
        database = needs.database or self.capabilities.database
        moved = database != self._database
        if not (due or list_asked or sizes_asked or moved):
            return None
        source = await self.shared.connection(conn, database, self.context)
        self._database = database
        if sizes_asked and not (due or list_asked or moved):
            resized = await self.resize(source)
            if resized is not None:
                return resized
        if list_asked:
            self._listed = None
        own = set(activity.own_pids)
        if source is not conn:
            own.add(source.info.backend_pid)
        return await self.read(source, frozenset(own))

    async def resize(self, conn: Connection) -> object | None:
        """The last data with the rows on screen sized exactly; None when there is none."""
        return None

    async def read(self, conn: Connection, own_pids: frozenset[int]) -> object:
        raise NotImplementedError

    def _whole_list_due(self, database: str) -> bool:
        listed = self._listed
        if listed is None or listed[0] != database:
            return True
        return time.monotonic() - listed[1] >= min(LIST_EVERY * self.interval, LIST_MAX_AGE)

    async def _read(
        self,
        conn: Connection,
        lists: tuple[sql.Query, sql.Query],
        cache: RowCache[Any],
        *more: tuple[sql.Query, dict[str, Any]],
        rows_pages: Callable[[Sequence[str], Sequence[tuple[Any, ...]]], int] | None = None,
    ) -> CatalogRead:
        """One round trip, in one transaction without JIT or parallel workers: the header,
        the list (as tuples), the relations locked ACCESS EXCLUSIVE, and ``more``.

        ``lists``: the query of the whole list, and its variant for the rows on screen and
        the relations created since, run in between (``LIST_EVERY``); its rows are merged
        with those ``cache`` keeps.

        The database size is read on one refresh in ``SCAN_EVERY`` (the shared
        ``pages``). ``rows_pages``, for a tab whose rows are sized from relpages: the
        pages its rows count; then the size is read again only if the last read was not
        this tab's, and worked out from the rows in between.
        """
        version = self._version
        database = conn.info.dbname
        whole = self._whole_list_due(database)
        some: list[int] = []
        if not whole:
            some = list(self.needs.on_screen[:MAX_EXACT])
            after = max(cache.keys(), default=0)
        kept = self.shared.pages.reuse(database)
        if kept is not None and rows_pages is not None and kept.outside is None:
            kept = None
        async with conn.pipeline(), conn.transaction():
            await conn.execute(sql.CATALOG_READ.sql(version))
            header_cur = await conn.execute(sql.CATALOG_HEADER.sql(version))
            pages_cur = None
            if kept is None:
                pages_cur = await conn.execute(sql.DATABASE_PAGES.sql(version))
            main_cur = conn.cursor(row_factory=psycopg.rows.tuple_row)
            if whole:
                await main_cur.execute(lists[0].sql(version))
            else:
                await main_cur.execute(lists[1].sql(version), {"oids": some, "after": after})
            locked_cur = await conn.execute(sql.LOCKED_RELATIONS.sql(version))
            more_curs = [await conn.execute(query.sql(version), params) for query, params in more]
        header_row = await header_cur.fetchone()
        assert header_row is not None
        rows = await main_cur.fetchall()
        names = _names(main_cur)
        locked = {row["oid"] for row in await locked_cur.fetchall()}
        extra = [await cur.fetchall() for cur in more_curs]
        read: set[int] | None = None
        if whole:
            self._listed = (database, time.monotonic(), header_row["collected_at"])
        else:
            read = {row[0] for row in rows}
            rows = cache.merged(rows, (key for key in some if key not in read))
        listed_at = self._listed[2] if self._listed is not None else None
        own = rows_pages(names, rows) if rows_pages is not None else None
        if pages_cur is not None:
            pages_row = await pages_cur.fetchone()
            assert pages_row is not None
            total = pages_row["pages"]
            outside = max(total - own, 0) if own is not None else None
            self.shared.pages.keep(database, DatabasePages(total, outside))
        else:
            assert kept is not None
            total = kept.total
            if own is not None and kept.outside is not None:
                total = kept.outside + own
                self.shared.pages.update(database, DatabasePages(total, kept.outside))
        header = _header(header_row, total, listed_at)
        return CatalogRead(header, names, rows, read, locked, extra)


class TablesCollector(CatalogCollector):
    """Every table with its sizes (estimated, exact for the rows on screen), scans and
    write rates."""

    tab = "tables"

    def __init__(self, context: CollectorContext) -> None:
        super().__init__(context)
        self._last: TablesData | None = None
        self._rows: RowCache[TableInfo] = RowCache()
        self._read_at: dict[int, datetime] = {}
        """When each row was last read (rows are read at different times: ``LIST_EVERY``)."""

    async def resize(self, conn: Connection) -> TablesData | None:
        last = self._last
        if last is None or last.database != conn.info.dbname:
            return None
        self._last = await self._with_exact_sizes(conn, last)
        return self._last

    async def read(self, conn: Connection, own_pids: frozenset[int]) -> TablesData:
        got = await self._read(
            conn, (sql.TABLES, sql.TABLES_SOME), self._rows, rows_pages=tables_pages
        )
        data = await self._with_exact_sizes(conn, TablesData(got.header, self._tables(got)))
        self._last = data
        return data

    def _tables(self, got: CatalogRead) -> tuple[TableInfo, ...]:
        header, locked = got.header, got.locked
        block = header.block_size
        now = header.collected_at
        read_at = self._read_at if self._rows.scope == header.database else {}

        def elapsed(oid: int) -> float | None:
            then = read_at.get(oid)
            return (now - then).total_seconds() if then is not None else None

        def make(row: dict[str, Any], before: dict[str, Any] | None) -> TableInfo:
            oid = row["oid"]
            reltuples = row["reltuples"]
            seconds = elapsed(oid)

            def rate(column: str) -> float | None:
                return per_second(before[column] if before else None, row[column], seconds)

            return TableInfo(
                oid=oid,
                schema=row["schema"],
                name=row["name"],
                table_bytes=row["heap_pages"] * block,
                index_bytes=row["index_pages"] * block,
                toast_bytes=row["toast_pages"] * block,
                size_is_estimate=True,
                locked=oid in locked,
                est_rows=reltuples if reltuples >= 0 else float(row["n_live_tup"] or 0),
                seq_scan=row["seq_scan"],
                idx_scan=row["idx_scan"],
                n_tup_ins=row["n_tup_ins"],
                n_tup_upd=row["n_tup_upd"],
                n_tup_del=row["n_tup_del"],
                ins_per_s=rate("n_tup_ins"),
                upd_per_s=rate("n_tup_upd"),
                del_per_s=rate("n_tup_del"),
            )

        def reusable(table: TableInfo) -> bool:
            # A row read again unchanged keeps its object if its rates were already 0 (or
            # unknown with no previous read to compare with).
            rates = (table.ins_per_s, table.upd_per_s, table.del_per_s)
            return rates == (0.0, 0.0, 0.0) or (rates == (None,) * 3 and elapsed(table.oid) is None)

        tables = self._rows.build(
            got.rows,
            got.names,
            make,
            scope=header.database,
            read=got.read,
            reusable=reusable,
            adjust=lambda table: relocked(table, locked),
        )
        if got.read is None:
            self._read_at = dict.fromkeys((table.oid for table in tables), now)
        else:
            self._read_at = read_at
            read_at.update(dict.fromkeys(got.read, now))
        return tuple(tables)

    def _exact_oids(self, tables: Sequence[TableInfo]) -> list[int]:
        known = {table.oid for table in tables}
        focus = [oid for oid in self.needs.on_screen if oid in known]
        if focus:
            return focus[:MAX_EXACT]
        return top_by(((t.oid, t.total_bytes) for t in tables), self.needs.exact_default)

    async def _with_exact_sizes(self, conn: Connection, data: TablesData) -> TablesData:
        sizes, locked, problem = await exact_table_sizes(conn, self._exact_oids(data.tables))
        if not sizes and not locked:
            return replace(data, sizes_problem=problem)
        tables = []
        for table in data.tables:
            exact = sizes.get(table.oid)
            if exact is not None:
                heap, indexes, toast = exact
                table = replace(
                    table,
                    table_bytes=heap,
                    index_bytes=indexes,
                    toast_bytes=toast,
                    size_is_estimate=False,
                )
            elif table.oid in locked and not table.locked:
                table = replace(table, locked=True)
            tables.append(table)
        return replace(data, tables=tuple(tables), sizes_problem=problem)


class VacuumCollector(CatalogCollector):
    """Per-table vacuum state and whether autovacuum is due, vacuums running now, and what
    holds the xmin horizon back."""

    tab = "vacuum"

    def __init__(self, context: CollectorContext) -> None:
        super().__init__(context)
        self._rows: RowCache[VacuumTable] = RowCache()

    async def read(self, conn: Connection, own_pids: frozenset[int]) -> VacuumData:
        holder_params = {
            "own_pids": sorted(own_pids),
            "query_limit": 200,
            "limit": HORIZON_LIMIT,
        }
        got = await self._read(
            conn,
            (sql.VACUUM_TABLES, sql.VACUUM_TABLES_SOME),
            self._rows,
            (sql.AUTOVACUUM_SETTINGS, {}),
            (sql.XMIN_HOLDERS, holder_params),
            (sql.VACUUM_PROGRESS, {}),
        )
        header, locked = got.header, got.locked
        settings_rows, holder_rows, progress_rows = got.extra
        settings = AutovacuumSettings(**settings_rows[0])

        def make(row: dict[str, Any], before: dict[str, Any] | None) -> VacuumTable:
            return vacuum_table(row, settings, locked)

        tables = self._rows.build(
            got.rows,
            got.names,
            make,
            scope=(header.database, settings),
            read=got.read,
            adjust=lambda table: relocked(table, locked),
        )
        holders = horizon_order((HorizonHolder(**row) for row in holder_rows), header.database)
        running = tuple(VacuumProgress(**row) for row in progress_rows)
        return VacuumData(header, settings, tuple(tables), holders, running)


def vacuum_table(
    row: Mapping[str, Any], settings: AutovacuumSettings, locked: set[int]
) -> VacuumTable:
    """A VacuumTable from one row of the VACUUM_TABLES query."""
    verdict = autovacuum_due(
        settings,
        parse_reloptions(row["reloptions"]),
        reltuples=row["reltuples"],
        relpages=row["relpages"],
        relallfrozen=row["relallfrozen"],
        n_dead_tup=row["n_dead_tup"],
        n_ins_since_vacuum=row["n_ins_since_vacuum"],
        n_mod_since_analyze=row["n_mod_since_analyze"],
        xid_age=row["xid_age"],
        mxid_age=row["mxid_age"],
    )
    return VacuumTable(
        oid=row["oid"],
        schema=row["schema"],
        name=row["name"],
        relpages=row["relpages"],
        n_live_tup=row["n_live_tup"],
        n_dead_tup=row["n_dead_tup"],
        n_mod_since_analyze=row["n_mod_since_analyze"],
        n_ins_since_vacuum=row["n_ins_since_vacuum"],
        last_vacuum=row["last_vacuum"],
        last_autovacuum=row["last_autovacuum"],
        last_analyze=row["last_analyze"],
        last_autoanalyze=row["last_autoanalyze"],
        vacuum_count=row["vacuum_count"],
        autovacuum_count=row["autovacuum_count"],
        analyze_count=row["analyze_count"],
        autoanalyze_count=row["autoanalyze_count"],
        xid_age=row["xid_age"],
        mxid_age=row["mxid_age"],
        verdict=verdict,
        locked=row["oid"] in locked,
    )


class IndexesCollector(CatalogCollector):
    """Every index with its size, scans, and flags: unused, invalid, duplicate."""

    tab = "indexes"

    def __init__(self, context: CollectorContext) -> None:
        super().__init__(context)
        self._last: IndexesData | None = None
        self._rows: RowCache[IndexInfo] = RowCache()
        self._constraints: EveryNth[frozenset[int]] = EveryNth()
        """The indexes named by a constraint."""

    async def resize(self, conn: Connection) -> IndexesData | None:
        last = self._last
        if last is None or last.database != conn.info.dbname:
            return None
        self._last = await self._with_exact_sizes(conn, last)
        return self._last

    async def read(self, conn: Connection, own_pids: frozenset[int]) -> IndexesData:
        database = conn.info.dbname
        kept = self._constraints.reuse(database)
        more: list[tuple[sql.Query, dict[str, Any]]] = []
        if kept is None:
            more.append((sql.CONSTRAINT_INDEXES, {}))
        got = await self._read(conn, (sql.INDEXES, sql.INDEXES_SOME), self._rows, *more)
        header, locked = got.header, got.locked
        block = header.block_size
        if kept is None:
            constraints = frozenset(row["oid"] for row in got.extra[0])
            self._constraints.keep(database, constraints)
        else:
            constraints = kept
        appeared = False

        def make(row: dict[str, Any], before: dict[str, Any] | None) -> IndexInfo:
            nonlocal appeared
            appeared = appeared or before is None
            return IndexInfo(
                oid=row["oid"],
                schema=row["schema"],
                table=row["table"],
                table_oid=row["table_oid"],
                name=row["index"],
                method=row["method"],
                index_bytes=row["pages"] * block,
                size_is_estimate=True,
                locked=row["oid"] in locked,
                idx_scan=row["idx_scan"],
                idx_tup_read=row["idx_tup_read"],
                idx_tup_fetch=row["idx_tup_fetch"],
                last_idx_scan=row["last_idx_scan"],
                is_unique=row["is_unique"],
                is_primary=row["is_primary"],
                is_exclusion=row["is_exclusion"],
                backs_constraint=row["oid"] in constraints,
                is_valid=row["is_valid"],
                is_ready=row["is_ready"],
                signature=index_signature(row),
            )

        def adjust(index: IndexInfo) -> IndexInfo:
            index = relocked(index, locked)
            backs = index.oid in constraints
            return (
                index if index.backs_constraint == backs else replace(index, backs_constraint=backs)
            )

        indexes = self._rows.build(
            got.rows,
            got.names,
            make,
            scope=header.database,
            read=got.read,
            adjust=adjust,
        )
        if appeared and kept is not None:
            # An index new since the last refresh is flagged by its own kind (unique,
            # primary, exclusion) until the constraints are read again: next refresh.
            self._constraints.expire()
        duplicates = find_duplicates(indexes)
        for position, index in enumerate(indexes):
            keep = duplicates.get(index.oid)
            wanted = keep.name if keep is not None else None
            if index.duplicate_of != wanted:
                index = replace(index, duplicate_of=wanted)
                indexes[position] = index
                self._rows.update(index.oid, index)
        data = await self._with_exact_sizes(conn, IndexesData(header, tuple(indexes)))
        self._last = data
        return data

    def _exact_oids(self, indexes: Sequence[IndexInfo]) -> list[int]:
        known = {index.oid for index in indexes}
        focus = [oid for oid in self.needs.on_screen if oid in known]
        if focus:
            return focus[:MAX_EXACT]
        return top_by(((i.oid, i.index_bytes) for i in indexes), self.needs.exact_default)

    async def _with_exact_sizes(self, conn: Connection, data: IndexesData) -> IndexesData:
        sizes, locked, problem = await exact_index_sizes(conn, self._exact_oids(data.indexes))
        if not sizes and not locked:
            return replace(data, sizes_problem=problem)
        indexes = []
        for index in data.indexes:
            exact = sizes.get(index.oid)
            if exact is not None:
                index = replace(index, index_bytes=exact, size_is_estimate=False)
            elif index.oid in locked and not index.locked:
                index = replace(index, locked=True)
            indexes.append(index)
        return replace(data, indexes=tuple(indexes), sizes_problem=problem)
