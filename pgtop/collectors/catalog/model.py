"""What the catalog tabs show: one frozen record per relation, and each tab's data."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

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


@dataclass(frozen=True, slots=True)
class CatalogNeeds:
    """What a catalog pane needs from its collector."""

    database: str | None = None
    """The database to read (None: the monitoring connection's)."""
    on_screen: tuple[int, ...] = ()
    """The oids of the rows on screen: read on every refresh, and sized exactly."""
    refresh: float = 2.0
    """The Activity refresh interval: catalog tabs refresh ``INTERVAL_FACTOR`` times slower."""
    list_asked: int = 0
    """Raised by one to have the whole list read at once (F5)."""
    sizes_asked: int = 0
    """Raised by one to have the rows on screen sized exactly at once (the cursor rested)."""
    exact_default: int = DEFAULT_EXACT
    """Rows sized exactly, largest estimates first, when none are on screen."""


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
class CatalogData:
    """What the three catalog collectors return: a header, then each tab's rows."""

    header: CatalogHeader

    @property
    def database(self) -> str:
        return self.header.database

    @property
    def collected_at(self) -> datetime:
        return self.header.collected_at


@dataclass(frozen=True, slots=True)
class DatabasePages:
    """The database size, in pages, as the last read of every relation's relpages found it."""

    total: int
    """Pages of every relation."""
    outside: int | None
    """Of these, the pages not counted in the Tables tab's rows (system catalogs,
    sequences...), when that read was the Tables tab's; None otherwise."""


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
class SizedData(CatalogData):
    """What a tab whose rows on screen are sized exactly gets."""

    sizes_problem: str = field(default="", kw_only=True)
    """Why exact sizes could not be read this time ("" when they were)."""


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
class TablesData(SizedData):
    """What the Tables tab's collector returns."""

    tables: tuple[TableInfo, ...]


@dataclass(frozen=True, slots=True)
class VacuumData(CatalogData):
    """What the Vacuum tab's collector returns."""

    settings: AutovacuumSettings
    tables: tuple[VacuumTable, ...]
    holders: tuple[HorizonHolder, ...]
    """Oldest xmin holders, in display order (see ``horizon_order``)."""
    running: tuple[VacuumProgress, ...]


@dataclass(frozen=True, slots=True)
class IndexesData(SizedData):
    """What the Indexes tab's collector returns."""

    indexes: tuple[IndexInfo, ...]


@dataclass(frozen=True, slots=True)
class DatabaseEntry:
    """A database the catalog tabs can switch to."""

    name: str
    current: bool
    """The monitoring connection's database."""
    can_connect: bool
    bytes: int | None
    """pg_database_size(), or None without the privilege to read it."""


def xid_share(age: int | None, limit: int) -> float | None:
    """``age`` as a share of ``limit``.

    >>> xid_share(50_000_000, 200_000_000), xid_share(None, 10), xid_share(5, 0)
    (0.25, None, None)
    """
    if age is None or limit <= 0:
        return None
    return age / limit


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
