"""Tables, Vacuum and Indexes: the catalog tabs' data, read without ever waiting on a lock.

The usual way to size tables, ``pg_total_relation_size()`` over ``pg_tables``, opens every
relation with AccessShareLock: behind one ACCESS EXCLUSIVE lock (a migration, a
``VACUUM FULL``) the whole query waits, and over 100,000 relations it stats every file on
every refresh. Here, every list comes from ``pg_class``, ``pg_index`` and the statistics
functions, which take no relation lock; sizes are ``relpages`` estimates (what the last
VACUUM, ANALYZE or CREATE INDEX counted). Exact sizes are read only for the rows on screen,
never for a relation that ``pg_locks`` shows locked or queued for ACCESS EXCLUSIVE, and
under a 50 ms ``lock_timeout`` in case a lock arrives in between; a row that could not be
sized keeps its estimate and says so (``size_is_estimate``).

These views are per database, and refresh slowly (``CatalogTarget.interval``); a refresh
reads the rows on screen and the relations created since, and the whole list (the costly
part: the statistics of every relation) only now and then (``LIST_EVERY``). The three
collectors share one ``CatalogTarget``: which database they read (a connection of their own
when it is not the monitoring connection's), the refresh cadence, and the rows each tab
has on screen. Everything that decides something (autovacuum thresholds, duplicate
indexes, the xmin horizon order) is a pure function, tested without a server.
"""

from __future__ import annotations

import contextlib
import heapq
import re
import time
from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

import psycopg
from psycopg import conninfo as pq_conninfo

from pgtop import pg, queries
from pgtop.model import ActivitySnapshot, Capabilities
from pgtop.text import duration, one_line, size

if TYPE_CHECKING:
    from pgtop.once import Report

Connection = psycopg.AsyncConnection[dict[str, Any]]

MIN_INTERVAL = 10.0
"""Catalog tabs refresh at most this often..."""
INTERVAL_FACTOR = 5.0
"""...or every this many Activity refreshes, whichever is slower."""
DEFAULT_EXACT = 50
"""Rows sized exactly, largest estimates first, when no pane has said what is on screen."""
MAX_EXACT = 200
"""Rows sized exactly in one refresh at most."""
SIZE_LOCK_TIMEOUT = "50ms"
"""How long an exact size may wait for a lock that pg_locks did not show yet."""
WRAPAROUND_LIMIT = 2**31
"""Transaction IDs between the oldest unfrozen one and wraparound."""
HORIZON_LIMIT = 20
"""Holders of the xmin horizon listed at most."""
SCAN_EVERY = 6
"""What costs a scan of a whole catalog and rarely changes (the database size, which
indexes back a constraint) is read on one catalog refresh in this many (about once a
minute at the default cadence), and reused on the others."""
LIST_EVERY = SCAN_EVERY
"""A tab reads its whole list (every relation, with the statistics of each: at 100,000
relations the costly part of a refresh) when the last whole read is this many catalog
intervals old (about once a minute at the default cadence) or ``LIST_MAX_AGE``, or when
asked (F5). The refreshes in between read the rows on screen and the relations created
since."""
LIST_MAX_AGE = 300.0
"""Seconds: the whole list is never older than this, however slow the refresh."""
TABS = ("tables", "vacuum", "indexes")


class CatalogConnectError(psycopg.OperationalError):
    """The catalog tabs' connection to the chosen database could not be opened."""


# -- model -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CatalogHeader:
    """What every catalog tab shows above its rows."""

    database: str
    """The database these rows belong to (catalog views are per database)."""
    collected_at: datetime
    """Server clock when the rows were read."""
    block_size: int
    database_bytes: int
    """Sum of the relpages estimates of every relation: cheap, and close to
    pg_database_size() once relations have been vacuumed or analyzed. Read on one refresh
    in ``SCAN_EVERY``; in between, the Tables tab counts its own rows again and adds what
    the last read found outside them (see ``DatabasePages``)."""
    datfrozenxid_age: int | None
    """Age of the database's oldest unfrozen transaction ID."""
    stats_reset: datetime | None
    """When this database's statistics were last reset (scan counts start there)."""
    listed_at: datetime | None = None
    """Server clock when the whole list was last read, if before ``collected_at``: in
    between, a refresh reads the rows on screen and the relations created since, and
    every other row is as that read found it (see ``LIST_EVERY``)."""


@dataclass(frozen=True, slots=True)
class DatabasePages:
    """The database size, in pages, as the last read of every relation's relpages found it."""

    total: int
    """Pages of every relation."""
    outside: int | None
    """Of these, the pages not counted in the Tables tab's rows (system catalogs,
    sequences...), when that read was the Tables tab's; None otherwise."""


@dataclass(frozen=True, slots=True)
class RelationRef:
    """Which relation a row is, for actions (ANALYZE, VACUUM, REINDEX) on it."""

    database: str
    """The database it lives in: actions must connect there."""
    oid: int
    schema: str
    name: str
    kind: str
    """``"table"`` or ``"index"``."""
    size_bytes: int
    size_is_estimate: bool
    table_oid: int | None = None
    """For an index: its table."""
    table_schema: str | None = None
    table_name: str | None = None


@dataclass(frozen=True, slots=True)
class TableInfo:
    """One table (or materialized view) of the Tables tab."""

    oid: int
    schema: str
    name: str
    table_bytes: int
    """Heap, with its free space and visibility maps when exact."""
    index_bytes: int
    toast_bytes: int
    """TOAST table and its index."""
    size_is_estimate: bool
    """Sizes are relpages estimates, not the files' sizes."""
    locked: bool
    """Locked, or queued for, ACCESS EXCLUSIVE: not sized, nothing can read it now."""
    est_rows: float | None
    """pg_class.reltuples, or the live-row count before the first ANALYZE."""
    seq_scan: int
    idx_scan: int | None
    """Scans of all its indexes; None without indexes."""
    n_tup_ins: int
    n_tup_upd: int
    n_tup_del: int
    ins_per_s: float | None = None
    upd_per_s: float | None = None
    del_per_s: float | None = None

    @property
    def total_bytes(self) -> int:
        return self.table_bytes + self.index_bytes + self.toast_bytes


@dataclass(frozen=True, slots=True)
class TablesData:
    """What the Tables tab's collector returns."""

    header: CatalogHeader
    tables: tuple[TableInfo, ...]
    sizes_problem: str = ""
    """Why exact sizes could not be read this time ("" when they were)."""

    @property
    def database(self) -> str:
        return self.header.database

    @property
    def collected_at(self) -> datetime:
        return self.header.collected_at


@dataclass(frozen=True, slots=True)
class AutovacuumSettings:
    """The server's autovacuum settings that decide when a table is due."""

    active: bool
    """autovacuum and track_counts are on: threshold-based vacuums happen at all."""
    vacuum_threshold: float
    vacuum_scale_factor: float
    vacuum_max_threshold: float | None
    """Cap on the dead-row threshold (PostgreSQL 18+; -1 or None: no cap)."""
    insert_threshold: float
    """-1 disables insert-driven vacuums."""
    insert_scale_factor: float
    analyze_threshold: float
    analyze_scale_factor: float
    freeze_max_age: int
    multixact_freeze_max_age: int


@dataclass(frozen=True, slots=True)
class AutovacuumVerdict:
    """Whether autovacuum would process a table now, and the thresholds it compares."""

    vacuum: str
    """Why a vacuum is due: ``"wraparound"``, ``"dead rows"``, ``"inserts"``; ``""``
    when it is not."""
    analyze: bool
    enabled: bool
    """autovacuum_enabled for this table (a wraparound vacuum runs even when off)."""
    vacuum_threshold: float
    insert_threshold: float | None
    """None: insert-driven vacuums are disabled."""
    analyze_threshold: float
    freeze_max_age: int
    multixact_freeze_max_age: int

    @property
    def due(self) -> bool:
        return bool(self.vacuum)


@dataclass(frozen=True, slots=True)
class VacuumTable:
    """One table of the Vacuum tab."""

    oid: int
    schema: str
    name: str
    relpages: int
    n_live_tup: int
    n_dead_tup: int
    n_mod_since_analyze: int
    n_ins_since_vacuum: int
    last_vacuum: datetime | None
    last_autovacuum: datetime | None
    last_analyze: datetime | None
    last_autoanalyze: datetime | None
    vacuum_count: int
    autovacuum_count: int
    analyze_count: int
    autoanalyze_count: int
    xid_age: int | None
    """Age of the older of the table's and its TOAST table's relfrozenxid."""
    mxid_age: int | None
    verdict: AutovacuumVerdict
    locked: bool
    """Locked, or queued for, ACCESS EXCLUSIVE: no vacuum can start on it now."""

    @property
    def dead_ratio(self) -> float | None:
        """Dead rows among all rows, or None when the table has none."""
        total = self.n_live_tup + self.n_dead_tup
        return self.n_dead_tup / total if total else None

    @property
    def freeze_share(self) -> float | None:
        """xid age as a share of the age that forces an anti-wraparound vacuum."""
        return xid_share(self.xid_age, self.verdict.freeze_max_age)

    @property
    def wraparound_share(self) -> float | None:
        """xid age as a share of the 2^31 wraparound limit."""
        return xid_share(self.xid_age, WRAPAROUND_LIMIT)


@dataclass(frozen=True, slots=True)
class HorizonHolder:
    """Something that keeps old row versions alive: vacuum cannot remove rows newer than
    the oldest of these."""

    kind: str
    """``"session"``, ``"slot"`` (a replication slot) or ``"prepared"`` (a prepared
    transaction)."""
    ident: str
    """Pid, slot name, or global transaction identifier."""
    pid: int | None
    database: str | None
    user: str | None
    application_name: str
    backend_type: str
    """For a session; for a slot its type (physical, logical)."""
    state: str | None
    since: datetime | None
    """Start of the transaction, or when it was prepared."""
    state_change: datetime | None
    xid: str | None
    xmin: str | None
    catalog_xmin: str | None
    age: int | None
    """Transaction IDs between the held horizon and now."""
    detail: str
    """The session's query (clipped), or a slot's output plugin."""

    @property
    def idle_in_transaction(self) -> bool:
        return self.state in ("idle in transaction", "idle in transaction (aborted)")


@dataclass(frozen=True, slots=True)
class VacuumProgress:
    """A VACUUM (or VACUUM FULL) running now, from the progress views."""

    pid: int
    database: str | None
    relid: int | None
    relation: str | None
    command: str
    """``"VACUUM"``, ``"autovacuum"``, ``"VACUUM FULL"`` or ``"CLUSTER"``."""
    phase: str | None
    heap_blks_total: int | None
    heap_blks_scanned: int | None
    heap_blks_vacuumed: int | None
    index_vacuum_count: int | None
    max_dead_tuples: int | None
    """Up to PostgreSQL 16: room for dead-row pointers..."""
    num_dead_tuples: int | None
    """...and how many are stored."""
    max_dead_tuple_bytes: int | None
    """From PostgreSQL 17: the dead-item store's size limit..."""
    dead_tuple_bytes: int | None
    """...its size now..."""
    num_dead_item_ids: int | None
    """...and how many dead item identifiers it holds."""
    indexes_total: int | None
    indexes_processed: int | None
    started: datetime | None

    @property
    def percent(self) -> float | None:
        """Progress of the current phase, 0 to 100, where the view says it."""
        return vacuum_percent(self)

    @property
    def dead_items(self) -> int | None:
        return (
            self.num_dead_item_ids if self.num_dead_item_ids is not None else self.num_dead_tuples
        )

    @property
    def dead_store_fill(self) -> float | None:
        """How full the dead-item store is: when full, indexes are vacuumed once more."""
        if self.max_dead_tuple_bytes:
            return (self.dead_tuple_bytes or 0) / self.max_dead_tuple_bytes
        if self.max_dead_tuples:
            return (self.num_dead_tuples or 0) / self.max_dead_tuples
        return None


@dataclass(frozen=True, slots=True)
class VacuumData:
    """What the Vacuum tab's collector returns."""

    header: CatalogHeader
    settings: AutovacuumSettings
    tables: tuple[VacuumTable, ...]
    holders: tuple[HorizonHolder, ...]
    """Oldest xmin holders, in display order (see ``horizon_order``)."""
    running: tuple[VacuumProgress, ...]

    @property
    def database(self) -> str:
        return self.header.database

    @property
    def collected_at(self) -> datetime:
        return self.header.collected_at


@dataclass(frozen=True, slots=True)
class IndexInfo:
    """One index of the Indexes tab."""

    oid: int
    schema: str
    table: str
    table_oid: int
    name: str
    method: str
    index_bytes: int
    size_is_estimate: bool
    locked: bool
    idx_scan: int
    idx_tup_read: int
    idx_tup_fetch: int
    last_idx_scan: datetime | None
    """When it was last scanned (PostgreSQL 16+)."""
    is_unique: bool
    is_primary: bool
    is_exclusion: bool
    backs_constraint: bool
    """Named by a constraint (pg_constraint.conindid): primary key, unique, exclusion,
    or the referenced side of a foreign key."""
    is_valid: bool
    is_ready: bool
    signature: tuple[object, ...]
    """What makes two indexes the same (see ``index_signature``)."""
    duplicate_of: str | None = None
    """Name of the index this one duplicates (the one to keep)."""

    @property
    def enforces_constraint(self) -> bool:
        """Dropping it would change what the table accepts: never "unused"."""
        return self.is_unique or self.is_primary or self.is_exclusion or self.backs_constraint

    @property
    def unused(self) -> bool:
        """Never scanned since the statistics reset, and enforcing nothing."""
        return self.idx_scan == 0 and not self.enforces_constraint

    @property
    def invalid(self) -> bool:
        """Not used by queries: a failed CREATE INDEX CONCURRENTLY or REINDEX CONCURRENTLY
        (or one still being built)."""
        return not self.is_valid


@dataclass(frozen=True, slots=True)
class IndexesData:
    """What the Indexes tab's collector returns."""

    header: CatalogHeader
    indexes: tuple[IndexInfo, ...]
    sizes_problem: str = ""

    @property
    def database(self) -> str:
        return self.header.database

    @property
    def collected_at(self) -> datetime:
        return self.header.collected_at


@dataclass(frozen=True, slots=True)
class DatabaseEntry:
    """A database the catalog tabs can switch to."""

    name: str
    current: bool
    """The monitoring connection's database."""
    can_connect: bool
    bytes: int | None
    """pg_database_size(), or None without the privilege to read it."""


# -- pure functions --------------------------------------------------------------------------


def xid_share(age: int | None, limit: int) -> float | None:
    """``age`` as a share of ``limit``.

    >>> xid_share(50_000_000, 200_000_000), xid_share(None, 10), xid_share(5, 0)
    (0.25, None, None)
    """
    if age is None or limit <= 0:
        return None
    return age / limit


def parse_bool(text: str) -> bool | None:
    """A boolean the way PostgreSQL reads reloptions (unique prefixes allowed).

    >>> [parse_bool(t) for t in ("off", "ON", "t", "fals", "1", "yes", "o", "maybe")]
    [False, True, True, False, True, True, None, None]
    """
    value = text.strip().lower()
    if not value:
        return None
    for word, meaning in (("true", True), ("false", False), ("yes", True), ("no", False)):
        if word.startswith(value):
            return meaning
    if value == "on":
        return True
    if len(value) >= 2 and "off".startswith(value):
        return False
    return {"1": True, "0": False}.get(value)


def parse_reloptions(options: Iterable[str] | None) -> dict[str, str]:
    """``pg_class.reloptions`` (``{"name=value", ...}``) as a dict.

    >>> parse_reloptions(["autovacuum_enabled=off", "fillfactor=70"])
    {'autovacuum_enabled': 'off', 'fillfactor': '70'}
    """
    parsed: dict[str, str] = {}
    for option in options or ():
        name, _, value = option.partition("=")
        parsed[name.strip().lower()] = value.strip()
    return parsed


def _number(options: Mapping[str, str], name: str) -> float | None:
    raw = options.get(name)
    if raw is None:
        return None
    try:
        return float(raw)
    except ValueError:
        return None


def autovacuum_due(
    settings: AutovacuumSettings,
    reloptions: Mapping[str, str],
    *,
    reltuples: float,
    relpages: int,
    relallfrozen: int | None,
    n_dead_tup: int,
    n_ins_since_vacuum: int,
    n_mod_since_analyze: int,
    xid_age: int | None,
    mxid_age: int | None,
) -> AutovacuumVerdict:
    """Would autovacuum vacuum or analyze this table now? As ``relation_needs_vacanalyze()``
    in PostgreSQL's autovacuum.c decides it.

    Per-table settings (``autovacuum_*`` reloptions) override the server's. A table whose
    transaction-ID (or multixact) age passed its freeze max age is vacuumed whatever
    the settings say; otherwise nothing is due when autovacuum is off, for the server or
    the table. Vacuum is due when dead rows pass ``threshold + scale_factor * reltuples``
    (capped at ``autovacuum_vacuum_max_threshold`` from 18), or inserts since the last
    vacuum pass the insert threshold (13+; from 18 scaled by the unfrozen share of the
    table). ``reltuples`` is -1 before the first VACUUM or ANALYZE: counted as 0.

    >>> s = AutovacuumSettings(True, 50, 0.2, None, 1000, 0.2, 50, 0.1, 200_000_000,
    ...                        400_000_000)
    >>> v = autovacuum_due(s, {}, reltuples=1000, relpages=10, relallfrozen=None,
    ...                    n_dead_tup=251, n_ins_since_vacuum=0, n_mod_since_analyze=0,
    ...                    xid_age=10, mxid_age=1)
    >>> v.vacuum, v.vacuum_threshold, v.analyze
    ('dead rows', 250.0, False)
    """
    options = reloptions

    def pick(name: str, default: float, minimum: float = 0) -> float:
        value = _number(options, name)
        return value if value is not None and value >= minimum else default

    vac_base = pick("autovacuum_vacuum_threshold", settings.vacuum_threshold)
    vac_scale = pick("autovacuum_vacuum_scale_factor", settings.vacuum_scale_factor)
    vac_max = pick("autovacuum_vacuum_max_threshold", settings.vacuum_max_threshold or -1, -1)
    ins_base = pick("autovacuum_vacuum_insert_threshold", settings.insert_threshold, -1)
    ins_scale = pick("autovacuum_vacuum_insert_scale_factor", settings.insert_scale_factor)
    anl_base = pick("autovacuum_analyze_threshold", settings.analyze_threshold)
    anl_scale = pick("autovacuum_analyze_scale_factor", settings.analyze_scale_factor)
    freeze_max_age = settings.freeze_max_age
    own_freeze = _number(options, "autovacuum_freeze_max_age")
    if own_freeze is not None and own_freeze >= 0:
        freeze_max_age = min(int(own_freeze), freeze_max_age)
    multixact_max_age = settings.multixact_freeze_max_age
    own_multixact = _number(options, "autovacuum_multixact_freeze_max_age")
    if own_multixact is not None and own_multixact >= 0:
        multixact_max_age = min(int(own_multixact), multixact_max_age)
    enabled_text = options.get("autovacuum_enabled")
    enabled = True if enabled_text is None else parse_bool(enabled_text) is not False

    tuples = max(reltuples, 0.0)
    unfrozen = 1.0
    if relallfrozen is not None and relpages > 0 and relallfrozen > 0:
        unfrozen = 1.0 - min(relallfrozen, relpages) / relpages
    vac_threshold = vac_base + vac_scale * tuples
    if vac_max >= 0 and vac_threshold > vac_max:
        vac_threshold = vac_max
    ins_threshold = ins_base + ins_scale * tuples * unfrozen if ins_base >= 0 else None
    anl_threshold = anl_base + anl_scale * tuples

    wraparound = (xid_age is not None and xid_age > freeze_max_age) or (
        mxid_age is not None and mxid_age > multixact_max_age
    )
    reason = ""
    analyze = False
    if wraparound:
        reason = "wraparound"
    if enabled and settings.active:
        if not reason and n_dead_tup > vac_threshold:
            reason = "dead rows"
        if not reason and ins_threshold is not None and n_ins_since_vacuum > ins_threshold:
            reason = "inserts"
        analyze = n_mod_since_analyze > anl_threshold
    return AutovacuumVerdict(
        vacuum=reason,
        analyze=analyze,
        enabled=enabled,
        vacuum_threshold=vac_threshold,
        insert_threshold=ins_threshold,
        analyze_threshold=anl_threshold,
        freeze_max_age=freeze_max_age,
        multixact_freeze_max_age=multixact_max_age,
    )


_LOCATION = re.compile(r" :location -?\d+")


def normalize_node_tree(tree: str | None) -> str:
    """A stored expression (``pg_node_tree``) without its source positions.

    Two indexes on the same expression, created by different statements, store the
    offsets of the expression in each statement's text (PostgreSQL 18 stores -1).

    >>> normalize_node_tree("{VAR :varno 1 :location 30}") == normalize_node_tree(
    ...     "{VAR :varno 1 :location 77}")
    True
    """
    if not tree:
        return ""
    return _LOCATION.sub("", tree)


def index_signature(row: Mapping[str, Any]) -> tuple[object, ...]:
    """What two indexes must share to be duplicates: the table, the access method, the
    key columns (and INCLUDE columns), operator classes, collations, options (ASC/DESC,
    NULLS FIRST/LAST), expressions and predicate, and NULLS NOT DISTINCT."""
    return (
        row["table_oid"],
        row["method"],
        row["key_columns"],
        normalize_node_tree(row["exprs"]),
        normalize_node_tree(row["pred"]),
        bool(row["nulls_not_distinct"]),
    )


def _keep_rank(index: IndexInfo) -> tuple[bool, bool, bool, bool, int]:
    return (
        not index.is_valid,
        not index.is_primary,
        not index.enforces_constraint,
        not index.is_unique,
        index.oid,
    )


def find_duplicates(indexes: Iterable[IndexInfo]) -> dict[int, IndexInfo]:
    """Indexes that duplicate another, by oid, with the index to keep instead.

    In each group of indexes with the same signature, the one kept is valid rather than
    invalid, then a primary key, then one that enforces a constraint, then unique, then
    the oldest (lowest oid); every other member duplicates it.
    """
    groups: dict[tuple[object, ...], list[IndexInfo]] = {}
    for index in indexes:
        groups.setdefault(index.signature, []).append(index)
    duplicates: dict[int, IndexInfo] = {}
    for members in groups.values():
        if len(members) < 2:
            continue
        keep = min(members, key=_keep_rank)
        for member in members:
            if member is not keep:
                duplicates[member.oid] = keep
    return duplicates


def _affects_database(holder: HorizonHolder, database: str) -> bool:
    """Whether ``holder`` holds back vacuum in ``database``.

    Replication slots and standbys' feedback hold every database back; a session or a
    prepared transaction only its own (and the shared catalogs).
    """
    if holder.kind == "slot" or holder.backend_type == "walsender":
        return True
    return holder.database is None or holder.database == database


def horizon_order(holders: Iterable[HorizonHolder], database: str) -> tuple[HorizonHolder, ...]:
    """Holders of the xmin horizon in display order: those that hold back ``database``
    first; among them sessions idle in a transaction first (the usual culprit, and one
    that is safe to end), then the oldest first."""
    return tuple(
        sorted(
            holders,
            key=lambda h: (
                not _affects_database(h, database),
                not h.idle_in_transaction,
                -(h.age or 0),
            ),
        )
    )


_HEAP_SCAN_PHASES = ("scanning heap", "seq scanning heap")
_INDEX_PHASES = ("vacuuming indexes", "cleaning up indexes")


def vacuum_percent(progress: VacuumProgress) -> float | None:
    """Progress of a vacuum's current phase, 0 to 100.

    Scanning the heap: blocks scanned; vacuuming the heap: blocks vacuumed; vacuuming or
    cleaning up indexes: indexes processed (PostgreSQL 17+). Other phases report nothing
    to measure.
    """
    total = progress.heap_blks_total
    phase = progress.phase or ""
    if phase in _HEAP_SCAN_PHASES and total:
        return 100.0 * (progress.heap_blks_scanned or 0) / total
    if phase == "vacuuming heap" and total:
        return 100.0 * (progress.heap_blks_vacuumed or 0) / total
    if phase in _INDEX_PHASES and progress.indexes_total:
        return 100.0 * (progress.indexes_processed or 0) / progress.indexes_total
    return None


def per_second(previous: int | None, current: int, elapsed: float | None) -> float | None:
    """A counter's rate between two reads; None without a usable previous read.

    >>> per_second(100, 150, 10.0), per_second(None, 5, 10.0), per_second(9, 3, 10.0)
    (5.0, None, None)
    """
    if previous is None or elapsed is None or elapsed <= 0 or current < previous:
        return None
    return (current - previous) / elapsed


def top_by(rows: Iterable[tuple[int, int]], count: int) -> list[int]:
    """The keys of the ``count`` largest ``(key, value)`` pairs, largest first.

    >>> top_by([(1, 5), (2, 9), (3, 7)], 2)
    [2, 3]
    """
    return [key for key, _ in heapq.nsmallest(count, rows, key=lambda kv: (-kv[1], kv[0]))]


def tables_pages(names: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """Pages of every relation that rows of the TABLES query count: the tables, their
    TOAST tables and indexes.

    >>> tables_pages(["oid", "heap_pages", "toast_pages", "index_pages"], [(1, 5, 2, 1)])
    8
    """
    heap, toast, index = (names.index(n) for n in ("heap_pages", "toast_pages", "index_pages"))
    return sum(row[heap] + row[toast] + row[index] for row in rows)


Relation = TypeVar("Relation", TableInfo, VacuumTable, IndexInfo)


def relocked(item: Relation, locked: Container[int]) -> Relation:
    """``item`` with its ``locked`` flag as ``locked`` has it: the same object if right."""
    is_locked = item.oid in locked
    return item if item.locked == is_locked else replace(item, locked=is_locked)


def with_database(conninfo: str, database: str) -> str:
    """``conninfo`` (keywords or URI) pointing at another database.

    >>> with_database("host=db1 dbname=app", "shop")
    'dbname=shop host=db1'
    """
    return pq_conninfo.make_conninfo(conninfo, dbname=database)


# -- reading the server ----------------------------------------------------------------------


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
    conn: Connection, query: queries.Query, oids: Sequence[int]
) -> tuple[list[dict[str, Any]], str]:
    """Run a size query for ``oids`` in a transaction whose lock_timeout is 50 ms.

    Returns:
        The rows, and "" or why there are none (a lock arrived, the statement timed out).
    """
    version = conn.info.server_version
    try:
        async with conn.transaction():
            await conn.execute(
                queries.SIZE_LOCK_TIMEOUT.sql(version), {"lock_timeout": SIZE_LOCK_TIMEOUT}
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
    rows, problem = await under_lock_timeout(conn, queries.TABLE_SIZES, oids)
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
    rows, problem = await under_lock_timeout(conn, queries.INDEX_SIZES, oids)
    sizes = {
        row["oid"]: row["bytes"] for row in rows if not row["locked"] and row["bytes"] is not None
    }
    locked = {row["oid"] for row in rows if row["locked"]}
    return sizes, locked, problem


async def list_databases(conn: Connection) -> list[DatabaseEntry]:
    """The databases the catalog tabs can switch to, with their sizes (expensive: on
    demand only)."""
    cur = await conn.execute(queries.DATABASES.sql(conn.info.server_version))
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


class Sometimes(Generic[Item]):
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


class CatalogTarget:
    """What the three catalog tabs share: the database they read, the cadence, and the
    rows each tab has on screen.

    The database is the monitoring connection's until one is chosen; another one is read
    on a connection of its own, opened like the monitoring one (same conninfo and
    password, another dbname), by the next collection.
    """

    def __init__(self) -> None:
        self.database: str | None = None
        """The database chosen, or None for the monitoring connection's."""
        self.refresh: float = 2.0
        """The Activity refresh interval (the panes keep it current)."""
        self.focus: dict[str, tuple[int, ...]] = {}
        """Per tab, the oids of the rows on screen: they get exact sizes."""
        self.pages: Sometimes[DatabasePages] = Sometimes()
        """The database size, shared by the three tabs."""
        self._requests: set[tuple[str, str]] = set()
        self._conninfo = ""
        self._password: str | None = None
        self._conn: Connection | None = None
        self._conn_database: str | None = None

    @property
    def interval(self) -> float:
        """Least seconds between two refreshes of a catalog tab."""
        return max(MIN_INTERVAL, INTERVAL_FACTOR * self.refresh)

    def choose(self, database: str | None, conninfo: str, password: str | None) -> None:
        """Read ``database`` from the next collection on (None: the monitoring one's)."""
        self.database = database
        self._conninfo = conninfo
        self._password = password
        self.focus.clear()

    def expected_database(self, capabilities: Capabilities | None) -> str | None:
        """The database the next data should come from."""
        if self.database is not None:
            return self.database
        return capabilities.database if capabilities is not None else None

    def request(self, tab: str, what: str) -> None:
        """Ask ``tab``'s next collection for ``"sizes"`` (exact sizes of the rows on screen,
        nothing else) or the ``"list"`` (a read of the whole list)."""
        self._requests.add((tab, what))

    def take_request(self, tab: str, what: str) -> bool:
        """Whether ``request(tab, what)`` was made since the last time this was asked."""
        if (tab, what) in self._requests:
            self._requests.discard((tab, what))
            return True
        return False

    async def connection(self, monitoring: Connection, capabilities: Capabilities) -> Connection:
        """The connection to read from: the monitoring one, or one to the chosen database.

        Raises:
            CatalogConnectError: the chosen database cannot be connected to.
        """
        wanted = self.database
        if wanted is None or wanted == capabilities.database:
            await self.close()
            return monitoring
        conn = self._conn
        if conn is not None and (conn.closed or conn.broken or self._conn_database != wanted):
            await self.close()
            conn = None
        if conn is None:
            try:
                conn = await pg.connect(with_database(self._conninfo, wanted), self._password)
            except pg.ConnectError as exc:
                raise CatalogConnectError(str(exc)) from None
            self._conn, self._conn_database = conn, wanted
        return conn

    async def close(self) -> None:
        """Close the connection to the chosen database, if any."""
        conn, self._conn, self._conn_database = self._conn, None, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()


class CatalogCollector:
    """The part the three catalog collectors share: cadence and which connection."""

    tab: ClassVar[str] = ""

    def __init__(self, capabilities: Capabilities, target: CatalogTarget | None = None) -> None:
        self.capabilities = capabilities
        self.target = target or CatalogTarget()
        self._interval: float | None = None
        self._version = capabilities.server_version_num
        self._listed: tuple[str, float, datetime] | None = None
        """The database, monotonic and server time of the last read of the whole list."""

    @property
    def interval(self) -> float:
        """Least seconds between two collections (the target's slow cadence)."""
        return self.target.interval if self._interval is None else self._interval

    @interval.setter
    def interval(self, seconds: float) -> None:
        self._interval = seconds

    async def collect(self, conn: Connection, activity: ActivitySnapshot) -> object:
        """Read this tab's data, from the chosen database."""
        source = await self.target.connection(conn, self.capabilities)
        own = set(activity.own_pids)
        if source is not conn:
            own.add(source.info.backend_pid)
        return await self.read(source, frozenset(own))

    async def read(self, conn: Connection, own_pids: frozenset[int]) -> object:
        raise NotImplementedError

    def _whole_list_due(self, database: str) -> bool:
        listed = self._listed
        requested = self.target.take_request(self.tab, "list")
        if requested or listed is None or listed[0] != database:
            return True
        return time.monotonic() - listed[1] >= min(LIST_EVERY * self.interval, LIST_MAX_AGE)

    async def _read(
        self,
        conn: Connection,
        lists: tuple[queries.Query, queries.Query],
        cache: RowCache[Any],
        *more: tuple[queries.Query, dict[str, Any]],
        rows_pages: Callable[[Sequence[str], Sequence[tuple[Any, ...]]], int] | None = None,
    ) -> CatalogRead:
        """One round trip, in one transaction without JIT or parallel workers: the header,
        the list (as tuples), the relations locked ACCESS EXCLUSIVE, and ``more``.

        ``lists``: the query of the whole list, and its variant for the rows on screen and
        the relations created since, run in between (``LIST_EVERY``); its rows are merged
        with those ``cache`` keeps.

        The database size is read on one refresh in ``SCAN_EVERY`` (the target's
        ``pages``). ``rows_pages``, for a tab whose rows are sized from relpages: the
        pages its rows count; then the size is read again only if the last read was not
        this tab's, and worked out from the rows in between.
        """
        version = self._version
        database = conn.info.dbname
        whole = self._whole_list_due(database)
        some: list[int] = []
        if not whole:
            some = list(self.target.focus.get(self.tab, ())[:MAX_EXACT])
            after = max(cache.keys(), default=0)
        kept = self.target.pages.reuse(database)
        if kept is not None and rows_pages is not None and kept.outside is None:
            kept = None
        async with conn.pipeline(), conn.transaction():
            await conn.execute(queries.CATALOG_READ.sql(version))
            header_cur = await conn.execute(queries.CATALOG_HEADER.sql(version))
            pages_cur = None
            if kept is None:
                pages_cur = await conn.execute(queries.DATABASE_PAGES.sql(version))
            main_cur = conn.cursor(row_factory=psycopg.rows.tuple_row)
            if whole:
                await main_cur.execute(lists[0].sql(version))
            else:
                await main_cur.execute(lists[1].sql(version), {"oids": some, "after": after})
            locked_cur = await conn.execute(queries.LOCKED_RELATIONS.sql(version))
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
            self.target.pages.keep(database, DatabasePages(total, outside))
        else:
            assert kept is not None
            total = kept.total
            if own is not None and kept.outside is not None:
                total = kept.outside + own
                self.target.pages.update(database, DatabasePages(total, kept.outside))
        header = _header(header_row, total, listed_at)
        return CatalogRead(header, names, rows, read, locked, extra)


class TablesCollector(CatalogCollector):
    """Every table with its sizes (estimated, exact for the rows on screen), scans and
    write rates."""

    tab = "tables"

    def __init__(
        self,
        capabilities: Capabilities,
        target: CatalogTarget | None = None,
        *,
        default_exact: int = DEFAULT_EXACT,
    ) -> None:
        super().__init__(capabilities, target)
        self.default_exact = default_exact
        self._last: TablesData | None = None
        self._last_read = 0.0
        self._rows: RowCache[TableInfo] = RowCache()
        self._read_at: dict[int, datetime] = {}
        """When each row was last read (rows are read at different times: ``LIST_EVERY``)."""

    async def read(self, conn: Connection, own_pids: frozenset[int]) -> TablesData:
        last = self._last
        if (
            self.target.take_request(self.tab, "sizes")
            and last is not None
            and last.database == conn.info.dbname
            and time.monotonic() - self._last_read < self.interval
        ):
            data = await self._with_exact_sizes(conn, last)
            self._last = data
            return data
        got = await self._read(
            conn, (queries.TABLES, queries.TABLES_SOME), self._rows, rows_pages=tables_pages
        )
        data = await self._with_exact_sizes(conn, TablesData(got.header, self._tables(got)))
        self._last, self._last_read = data, time.monotonic()
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
        focus = [oid for oid in self.target.focus.get(self.tab, ()) if oid in known]
        if focus:
            return focus[:MAX_EXACT]
        return top_by(((t.oid, t.total_bytes) for t in tables), self.default_exact)

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

    def __init__(self, capabilities: Capabilities, target: CatalogTarget | None = None) -> None:
        super().__init__(capabilities, target)
        self._rows: RowCache[VacuumTable] = RowCache()

    async def read(self, conn: Connection, own_pids: frozenset[int]) -> VacuumData:
        holder_params = {
            "own_pids": sorted(own_pids),
            "query_limit": 200,
            "limit": HORIZON_LIMIT,
        }
        got = await self._read(
            conn,
            (queries.VACUUM_TABLES, queries.VACUUM_TABLES_SOME),
            self._rows,
            (queries.AUTOVACUUM_SETTINGS, {}),
            (queries.XMIN_HOLDERS, holder_params),
            (queries.VACUUM_PROGRESS, {}),
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

    def __init__(
        self,
        capabilities: Capabilities,
        target: CatalogTarget | None = None,
        *,
        default_exact: int = DEFAULT_EXACT,
    ) -> None:
        super().__init__(capabilities, target)
        self.default_exact = default_exact
        self._last: IndexesData | None = None
        self._last_read = 0.0
        self._rows: RowCache[IndexInfo] = RowCache()
        self._constraints: Sometimes[frozenset[int]] = Sometimes()
        """The indexes named by a constraint."""

    async def read(self, conn: Connection, own_pids: frozenset[int]) -> IndexesData:
        last = self._last
        if (
            self.target.take_request(self.tab, "sizes")
            and last is not None
            and last.database == conn.info.dbname
            and time.monotonic() - self._last_read < self.interval
        ):
            data = await self._with_exact_sizes(conn, last)
            self._last = data
            return data
        database = conn.info.dbname
        kept = self._constraints.reuse(database)
        more: list[tuple[queries.Query, dict[str, Any]]] = []
        if kept is None:
            more.append((queries.CONSTRAINT_INDEXES, {}))
        got = await self._read(conn, (queries.INDEXES, queries.INDEXES_SOME), self._rows, *more)
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
        self._last, self._last_read = data, time.monotonic()
        return data

    def _exact_oids(self, indexes: Sequence[IndexInfo]) -> list[int]:
        known = {index.oid for index in indexes}
        focus = [oid for oid in self.target.focus.get(self.tab, ()) if oid in known]
        if focus:
            return focus[:MAX_EXACT]
        return top_by(((i.oid, i.index_bytes) for i in indexes), self.default_exact)

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


@dataclass(frozen=True, slots=True)
class CatalogCollectorFactory:
    """Makes one catalog tab's collector; the three share one ``CatalogTarget``."""

    collector: type[CatalogCollector]
    target: CatalogTarget
    interval: float | None = None
    """A fixed cadence instead of the target's."""

    def __call__(self, capabilities: Capabilities) -> CatalogCollector:
        made = self.collector(capabilities, self.target)
        if self.interval is not None:
            made.interval = self.interval
        return made


def catalog_collectors(interval: float | None = None) -> dict[str, CatalogCollectorFactory]:
    """The factories of the Tables, Vacuum and Indexes collectors, sharing one target.

    Args:
        interval: a fixed cadence in seconds; by default the target's (slow) one.
    """
    target = CatalogTarget()
    return {
        "tables": CatalogCollectorFactory(TablesCollector, target, interval),
        "vacuum": CatalogCollectorFactory(VacuumCollector, target, interval),
        "indexes": CatalogCollectorFactory(IndexesCollector, target, interval),
    }


def catalog_target(factory: object) -> CatalogTarget | None:
    """The target behind a tab's collector factory, if it is a catalog one."""
    return factory.target if isinstance(factory, CatalogCollectorFactory) else None


# -- selections, for actions -----------------------------------------------------------------


def table_ref(database: str, table: TableInfo) -> RelationRef:
    return RelationRef(
        database=database,
        oid=table.oid,
        schema=table.schema,
        name=table.name,
        kind="table",
        size_bytes=table.total_bytes,
        size_is_estimate=table.size_is_estimate,
    )


def vacuum_table_ref(header: CatalogHeader, table: VacuumTable) -> RelationRef:
    return RelationRef(
        database=header.database,
        oid=table.oid,
        schema=table.schema,
        name=table.name,
        kind="table",
        size_bytes=table.relpages * header.block_size,
        size_is_estimate=True,
    )


def index_ref(database: str, index: IndexInfo) -> RelationRef:
    return RelationRef(
        database=database,
        oid=index.oid,
        schema=index.schema,
        name=index.name,
        kind="index",
        size_bytes=index.index_bytes,
        size_is_estimate=index.size_is_estimate,
        table_oid=index.table_oid,
        table_schema=index.schema,
        table_name=index.table,
    )


# -- --once ----------------------------------------------------------------------------------


def _text(field: str, limit: int = 40) -> Any:
    return lambda row: one_line(None if row[field] is None else str(row[field]), limit)


def _bytes(field: str) -> Any:
    def show(row: Mapping[str, Any]) -> str:
        mark = "~" if row.get("size_is_estimate") else ""
        return mark + size(row[field])

    return show


def _own(conn: Connection) -> frozenset[int]:
    return frozenset({conn.info.backend_pid})


async def tables_report(conn: Connection, caps: Capabilities) -> Report:
    """``--once tables``: every table, largest first; sizes exact for the largest."""
    from pgtop.once import Report

    data = await TablesCollector(caps, default_exact=MAX_EXACT).read(conn, _own(conn))
    database_bytes = data.header.database_bytes
    rows = [
        {
            "schema": t.schema,
            "table": t.name,
            "oid": t.oid,
            "total_bytes": t.total_bytes,
            "table_bytes": t.table_bytes,
            "index_bytes": t.index_bytes,
            "toast_bytes": t.toast_bytes,
            "size_is_estimate": t.size_is_estimate,
            "locked": t.locked,
            "estimated_rows": t.est_rows,
            "share_of_database": t.total_bytes / database_bytes if database_bytes else None,
            "seq_scan": t.seq_scan,
            "idx_scan": t.idx_scan,
            "n_tup_ins": t.n_tup_ins,
            "n_tup_upd": t.n_tup_upd,
            "n_tup_del": t.n_tup_del,
        }
        for t in sorted(data.tables, key=lambda t: (-t.total_bytes, t.schema, t.name))
    ]
    columns = [
        ("SCHEMA", _text("schema")),
        ("TABLE", _text("table", 60)),
        ("TOTAL", _bytes("total_bytes")),
        ("HEAP", _bytes("table_bytes")),
        ("INDEXES", _bytes("index_bytes")),
        ("TOAST", _bytes("toast_bytes")),
        ("ROWS", lambda r: "" if r["estimated_rows"] is None else f"{r['estimated_rows']:.0f}"),
        ("SEQ SCANS", _text("seq_scan")),
        ("IDX SCANS", _text("idx_scan")),
        ("LOCKED", lambda r: "locked" if r["locked"] else ""),
    ]
    return Report(data.collected_at, rows, columns)


async def vacuum_report(conn: Connection, caps: Capabilities) -> Report:
    """``--once vacuum``: every table's vacuum state, most dead rows first."""
    from pgtop.once import Report

    data = await VacuumCollector(caps).read(conn, _own(conn))
    now = data.collected_at
    rows = [
        {
            "schema": t.schema,
            "table": t.name,
            "oid": t.oid,
            "n_live_tup": t.n_live_tup,
            "n_dead_tup": t.n_dead_tup,
            "dead_ratio": t.dead_ratio,
            "last_vacuum": t.last_vacuum,
            "last_autovacuum": t.last_autovacuum,
            "last_analyze": t.last_analyze,
            "last_autoanalyze": t.last_autoanalyze,
            "vacuum_count": t.vacuum_count,
            "autovacuum_count": t.autovacuum_count,
            "analyze_count": t.analyze_count,
            "autoanalyze_count": t.autoanalyze_count,
            "xid_age": t.xid_age,
            "xid_share_of_freeze_max_age": t.freeze_share,
            "xid_share_of_wraparound": t.wraparound_share,
            "autovacuum_due": t.verdict.due,
            "autovacuum_reason": t.verdict.vacuum or None,
            "autoanalyze_due": t.verdict.analyze,
            "autovacuum_enabled": t.verdict.enabled,
            "locked": t.locked,
        }
        for t in sorted(data.tables, key=lambda t: (-t.n_dead_tup, t.schema, t.name))
    ]

    def ago(field: str) -> Any:
        return lambda r: duration((now - r[field]).total_seconds()) if r[field] else ""

    columns = [
        ("SCHEMA", _text("schema")),
        ("TABLE", _text("table", 60)),
        ("LIVE", _text("n_live_tup")),
        ("DEAD", _text("n_dead_tup")),
        ("LAST VACUUM", ago("last_vacuum")),
        ("LAST AUTOVACUUM", ago("last_autovacuum")),
        ("LAST ANALYZE", ago("last_analyze")),
        ("LAST AUTOANALYZE", ago("last_autoanalyze")),
        ("XID AGE", _text("xid_age")),
        ("AUTOVACUUM DUE", lambda r: r["autovacuum_reason"] or ""),
    ]
    return Report(now, rows, columns)


async def indexes_report(conn: Connection, caps: Capabilities) -> Report:
    """``--once indexes``: every index with its flags, largest first."""
    from pgtop.once import Report

    data = await IndexesCollector(caps, default_exact=MAX_EXACT).read(conn, _own(conn))
    rows = [
        {
            "schema": i.schema,
            "table": i.table,
            "index": i.name,
            "oid": i.oid,
            "index_bytes": i.index_bytes,
            "size_is_estimate": i.size_is_estimate,
            "locked": i.locked,
            "idx_scan": i.idx_scan,
            "idx_tup_read": i.idx_tup_read,
            "idx_tup_fetch": i.idx_tup_fetch,
            "last_idx_scan": i.last_idx_scan,
            "unused": i.unused,
            "invalid": i.invalid,
            "duplicate_of": i.duplicate_of,
            "enforces_constraint": i.enforces_constraint,
        }
        for i in sorted(data.indexes, key=lambda i: (-i.index_bytes, i.schema, i.name))
    ]
    columns = [
        ("SCHEMA", _text("schema")),
        ("TABLE", _text("table", 60)),
        ("INDEX", _text("index", 60)),
        ("SIZE", _bytes("index_bytes")),
        ("SCANS", _text("idx_scan")),
        ("FLAGS", lambda r: one_line(", ".join(index_flags_of(r)), 120)),
    ]
    return Report(data.collected_at, rows, columns)


def index_flags_of(row: Mapping[str, Any]) -> list[str]:
    flags = []
    if row["invalid"]:
        flags.append("invalid")
    if row["unused"]:
        flags.append("unused")
    if row["duplicate_of"]:
        flags.append(f"duplicate of {row['duplicate_of']}")
    if row.get("locked"):
        flags.append("locked")
    return flags
