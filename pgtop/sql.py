"""Every SQL statement pgtop sends, named once, with variants by server version.

A query is a list of ``(minimum server_version_num, sql)`` pairs; ``Query.sql(version)``
returns the newest variant the server supports. Callers never test versions themselves.
Columns keep the same names in every variant (``NULL AS col`` where a server lacks one).
A statement with variants is written once, as a template whose ``{slots}`` take their
text by version (``_variants``, ``_columns``): only what differs is written per version.
Values are always bound parameters; identifiers in utility statements are built with
``psycopg.sql.Identifier`` in the module that runs them, never here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

from psycopg.sql import Identifier

MIN_SERVER_VERSION = 130000
"""Oldest supported server: PostgreSQL 13."""


class UnsupportedServerError(Exception):
    """The server is older than every variant of a query."""


@dataclass(frozen=True, slots=True)
class Query:
    """One named statement with its version variants, oldest first."""

    name: str
    variants: tuple[tuple[int, str], ...]

    def sql(self, server_version_num: int) -> str:
        """The newest variant that runs on ``server_version_num``."""
        chosen: str | None = None
        for minimum, text in self.variants:
            if server_version_num >= minimum:
                chosen = text
        if chosen is None:
            raise UnsupportedServerError(
                f"{self.name} needs PostgreSQL {self.variants[0][0] // 10000} or newer"
            )
        return chosen


REGISTRY: dict[str, Query] = {}


def _query(name: str, *variants: tuple[int, str]) -> Query:
    query = Query(name, tuple(sorted(variants)))
    REGISTRY[name] = query
    return query


# A server_version_num, or an extension's (major, minor) version.
_Version = TypeVar("_Version", int, tuple[int, int])


class _Later(dict[str, str]):
    """Slot texts for ``str.format_map``; a field that names no slot (``{only}``,
    ``{schema}``) is left as it stands, for the code that fills it later."""

    def __missing__(self, key: str) -> str:
        return f"{{{key}}}"


def _variants(template: str, **slots: Mapping[_Version, str]) -> list[tuple[_Version, str]]:
    """The variants of one statement: ``template`` with each ``{slot}`` filled by version.

    A slot maps each version from which a text is used to that text; every slot starts at
    the oldest version the statement runs on. There is a variant from each version where
    some slot's text changes, and only there (``Query.sql`` takes the newest one a server
    reaches), so what differs between versions is written once, in its slot.
    """
    if not slots:
        raise ValueError("a statement without slots has a single variant: write it out")
    missing = [name for name in slots if f"{{{name}}}" not in template]
    if missing:
        raise ValueError(f"the template has no slot {missing}")
    oldest = {min(slot) for slot in slots.values()}
    if len(oldest) != 1:
        raise ValueError(f"the slots start from different versions: {sorted(oldest)}")
    variants = []
    for version in sorted({start for slot in slots.values() for start in slot}):
        texts = {
            name: slot[max(start for start in slot if start <= version)]
            for name, slot in slots.items()
        }
        variants.append((version, template.format_map(_Later(texts))))
    return variants


def _aliased(expression: str, alias: str) -> str:
    """``expression AS alias``, or the expression alone where it ends in that name already
    (``s.calls``)."""
    return expression if expression.rpartition(".")[2] == alias else f"{expression} AS {alias}"


def _columns(*columns: tuple[str, Mapping[_Version, str]]) -> dict[_Version, str]:
    """A slot that holds a list of output columns, each given by its alias and its source
    expression by version (as in a slot), in the order given."""
    slots = {
        f"column{i}": {start: _aliased(expression, alias) for start, expression in by.items()}
        for i, (alias, by) in enumerate(columns)
    }
    template = ",\n               ".join(f"{{{name}}}" for name in slots)
    return dict(_variants(template, **slots))


_BLANK_LINE = re.compile(r"\n[ ]+(?=\n)")

# The catalog tabs list relations outside the system schemas (``n``: their namespace).
_USER_SCHEMAS = """n.nspname NOT IN ('pg_catalog', 'information_schema')
          AND n.nspname !~ '^pg_toast'"""


def _listing(name: str, oid: str, *variants: tuple[int, str], **part: str) -> tuple[Query, Query]:
    """A catalog tab's list query, and its variant for the refreshes between two full reads.

    The variant reads the relations given (``%(oids)s``: those on screen) and any whose oid
    is above ``%(after)s`` (the largest listed: relations created since). ``{only}`` in
    the text is where that condition on ``oid`` goes; ``{user_schemas}`` is the condition on
    ``n`` that every tab applies (``_USER_SCHEMAS``); any other ``{name}`` takes ``part``'s
    text in the variant and nothing in the full query.
    """
    some = f"AND ({oid} = ANY(%(oids)s::oid[]) OR {oid} > %(after)s::oid)"
    empty = dict.fromkeys(part, "")
    every = {"user_schemas": _USER_SCHEMAS}
    full = [(v, _BLANK_LINE.sub("", sql.format(only="", **every, **empty))) for v, sql in variants]
    partial = [(v, sql.format(only=some, **every, **part)) for v, sql in variants]
    return _query(name, *full), _query(f"{name}_some", *partial)


# The first statement of every connection; its settings came in the startup packet
# (pg.FIXED_SETTINGS). It checks that pgtop acts as the role it logged in as, and from 17
# switches off transaction_timeout, which a database owner may set and the startup packet
# of an older server could not name. Every name is qualified: it is also safe where the
# fixed search_path did not apply.
_SESSION_SETUP = """
        SELECT session_user::pg_catalog.text AS login,
               current_user::pg_catalog.text AS acting,
               {transaction_timeout} AS transaction_timeout
        """
SESSION_SETUP = _query(
    "session_setup",
    *_variants(
        _SESSION_SETUP,
        transaction_timeout={
            130000: "NULL::pg_catalog.text",
            170000: "pg_catalog.set_config('transaction_timeout', '0', false)",
        },
    ),
)

# What this role may see and use. pg_has_role() is true for superusers, so membership
# flags mean "has the power", not "was granted the role". shared_preload_libraries is
# readable only with pg_read_all_settings: without it, whether pg_stat_statements is
# preloaded is unknown (NULL), not an error.
_PROBE = """
        SELECT current_setting('server_version') AS server_version,
               current_setting('server_version_num')::int AS server_version_num,
               pg_is_in_recovery() AS is_standby,
               current_user AS "user",
               current_database() AS database,
               r.rolsuper AS is_superuser,
               pg_has_role('pg_read_all_stats', 'USAGE') AS read_all_stats,
               pg_has_role('pg_monitor', 'USAGE') AS monitor,
               pg_has_role('pg_signal_backend', 'USAGE') AS signal_backend,
               CASE WHEN pg_has_role('pg_read_all_settings', 'USAGE')
                    THEN 'pg_stat_statements' = ANY(string_to_array(
                        replace(current_setting('shared_preload_libraries'), ' ', ''), ','))
                    END AS pgss_preloaded,
               (SELECT extversion FROM pg_extension WHERE extname = 'pg_stat_statements')
                   AS pgss_version,
               (SELECT n.nspname FROM pg_extension e
                JOIN pg_namespace n ON n.oid = e.extnamespace
                WHERE e.extname = 'pg_stat_statements') AS pgss_schema,
               current_setting('max_connections')::int AS max_connections,
               {reserved} AS reserved_connections,
               pg_postmaster_start_time() AS started_at
        FROM pg_roles r
        WHERE r.rolname = current_user
        """
PROBE = _query(
    "probe",
    *_variants(
        _PROBE,
        reserved={
            130000: "current_setting('superuser_reserved_connections')::int",
            # reserved_connections (for pg_use_reserved_connections) appeared in 16.
            160000: "current_setting('superuser_reserved_connections')::int"
            " + current_setting('reserved_connections')::int",
        },
    ),
)

# Server-wide counters for the header: one row, no per-database function calls
# (pg_database_size() over every database is what makes other monitors expensive).
SERVER_COUNTERS = _query(
    "server_counters",
    (
        130000,
        """
        SELECT now() AS collected_at,
               coalesce(sum(xact_commit + xact_rollback), 0)::bigint AS xact_total,
               coalesce(sum(blks_hit), 0)::bigint AS blks_hit,
               coalesce(sum(blks_read), 0)::bigint AS blks_read,
               pg_is_in_recovery() AS in_recovery,
               -- pgtop's own backends that are still there: a connection the server ended
               -- while pgtop sat idle holds no slot.
               (SELECT count(*) FROM pg_stat_get_backend_idset() b
                WHERE pg_stat_get_backend_pid(b) = ANY(%(own_pids)s::int[]))::int AS own_alive
        FROM pg_stat_database
        """,
    ),
)

# One row per backend but pgtop's own. pg_blocking_pids() is costly (it inspects the
# whole lock table), so it is called only for backends waiting on a heavyweight lock;
# the CASE evaluates it for those rows alone. The query text is clipped server-side to
# %(query_limit)s characters so that huge texts never cross the wire on every poll.
# pg_stat_get_activity() is what pg_stat_activity reads, joined here to the names. The
# first column, the pid, is each statement's own.
_ACTIVITY_COLUMNS = """, d.datname AS database, u.rolname AS "user",
               coalesce(a.application_name, '') AS application_name,
               host(a.client_addr) AS client_addr, a.client_hostname, a.client_port,
               coalesce(a.backend_type, '') AS backend_type, a.state,
               a.wait_event_type, a.wait_event,
               a.backend_start, a.xact_start, a.query_start, a.state_change,
               a.backend_xid::text AS backend_xid, a.backend_xmin::text AS backend_xmin,
               a.leader_pid, {query_id} AS query_id,
               CASE WHEN a.wait_event_type = 'Lock' THEN pg_blocking_pids(a.pid) END
                   AS blocked_by,
               left(coalesce(a.query, ''), %(query_limit)s::int) AS query"""
_QUERY_ID = {130000: "NULL::bigint", 140000: "a.query_id"}  # query_id appeared in 14.
_NAMES = """
        LEFT JOIN pg_database d ON d.oid = a.datid
        LEFT JOIN pg_roles u ON u.oid = a.usesysid"""
_ACTIVITY = (
    """
        SELECT a.pid"""
    + _ACTIVITY_COLUMNS
    + """
        FROM pg_stat_get_activity(NULL) a"""
    + _NAMES
    + """
        WHERE a.pid <> ALL(%(own_pids)s::int[])
        """
)
ACTIVITY = _query(
    "activity",
    *_variants(_ACTIVITY, query_id=_QUERY_ID),
)

# pg_stat_get_activity() finds each backend's PGPROC by a linear search, so reading every
# row costs the square of the number of backends (20 ms at 5,000). The two statements
# below read ACTIVITY's rows one by one, for a few pids. Each row ends with ``gone``:
# true for a pid that is no longer there (its other columns NULL).

# The rows of the pids a poll %(watched)s: those in a state that changes without a new
# statement (active: wait events, end of the statement).
_ACTIVITY_WATCHED = (
    """
        SELECT w.pid"""
    + _ACTIVITY_COLUMNS
    + """, a.pid IS NULL AS gone
        FROM unnest(%(watched)s::int[]) AS w(pid)
        LEFT JOIN LATERAL pg_stat_get_activity(w.pid) a ON true"""
    + _NAMES
    + "\n"
)
ACTIVITY_WATCHED = _query(
    "activity_watched",
    *_variants(_ACTIVITY_WATCHED, query_id=_QUERY_ID),
)

# The rows that changed since the last scan, and the pids that left. The per-backend
# accessors find, in one pass, the backends that are new (not in %(known)s), gone, or
# that started since %(since)s (a new backend on a reused pid), or a statement since, or a
# transaction since (a fast-path call starts no statement); the caller adds the pids it
# %(watched)s. Only those are read, one by one while they are at most %(limit)s, else in
# one full read. One statement, so one view of the backends.
_ACTIVITY_CHANGES = (
    """
        WITH present AS (
            SELECT pg_stat_get_backend_pid(b) AS pid,
                   pg_stat_get_backend_start(b) AS backend_start,
                   pg_stat_get_backend_xact_start(b) AS xact_start,
                   pg_stat_get_backend_activity_start(b) AS query_start
            FROM pg_stat_get_backend_idset() AS b
        ), changed AS MATERIALIZED (
            SELECT coalesce(p.pid, k.pid) AS pid, p.pid IS NULL AS gone
            FROM present p
            FULL JOIN unnest(%(known)s::int[]) AS k(pid) ON k.pid = p.pid
            WHERE (k.pid IS NULL OR p.pid IS NULL OR p.pid = ANY(%(watched)s::int[])
                   OR p.backend_start >= %(since)s OR p.query_start >= %(since)s
                   OR p.xact_start >= %(since)s)
              AND coalesce(p.pid, k.pid) <> ALL(%(own_pids)s::int[])
        ), few AS (
            SELECT count(*) FILTER (WHERE NOT gone) <= %(limit)s AS few FROM changed
        ), activity AS (
            SELECT a.* FROM changed c CROSS JOIN LATERAL pg_stat_get_activity(c.pid) a
            WHERE NOT c.gone AND (SELECT few FROM few)
            UNION ALL
            SELECT a.* FROM pg_stat_get_activity(NULL) a
            WHERE NOT (SELECT few FROM few)
              AND a.pid IN (SELECT pid FROM changed WHERE NOT gone)
        )
        SELECT a.pid"""
    + _ACTIVITY_COLUMNS
    + """, false AS gone
        FROM activity a"""
    + _NAMES
    + """
        UNION ALL
        SELECT pid"""
    + ", NULL" * 20
    + """, true
        FROM changed WHERE gone
        """
)
ACTIVITY_CHANGES = _query(
    "activity_changes",
    *_variants(_ACTIVITY_CHANGES, query_id=_QUERY_ID),
)

# The encoding of every database: a session's query text is in its own database's.
DATABASE_ENCODINGS = _query(
    "database_encodings",
    (
        130000,
        """
        SELECT datname AS name, pg_encoding_to_char(encoding)::text AS encoding
        FROM pg_database
        """,
    ),
)

# One backend's full query text, for the detail view.
BACKEND_QUERY = _query(
    "backend_query",
    (
        130000,
        """
        SELECT left(coalesce(query, ''), %(limit)s::int) AS query
        FROM pg_stat_activity
        WHERE pid = %(pid)s AND backend_start = %(backend_start)s
        """,
    ),
)

# The locks one backend holds or waits for. regclass output needs no lock; relations of
# other databases cannot be named from here and are shown by OID.
_BACKEND_LOCKS = """
        SELECT l.locktype, l.mode, l.granted,
               CASE WHEN l.relation IS NULL THEN NULL
                    WHEN l.database = (SELECT oid FROM pg_database
                                       WHERE datname = current_database())
                    THEN l.relation::regclass::text
                    ELSE 'oid ' || l.relation::text END AS relation,
               l.transactionid::text AS transactionid, l.virtualxid,
               l.classid::int AS classid, l.objid::bigint AS objid,
               {waitstart} AS waitstart
        FROM pg_locks l
        WHERE l.pid = %(pid)s
        ORDER BY l.granted, l.locktype, relation NULLS LAST
        """
_WAITSTART = {130000: "NULL::timestamptz", 140000: "l.waitstart"}  # waitstart appeared in 14.
BACKEND_LOCKS = _query("backend_locks", *_variants(_BACKEND_LOCKS, waitstart=_WAITSTART))

# The lock each waiting backend has requested and not yet been granted: at most one per
# backend. Only called when the Activity poll saw at least one backend waiting on a lock,
# and only for those pids (reading pg_locks briefly takes every lock-manager partition).
# regclass output takes no lock; relations of other databases are shown by OID.
_LOCK_WAITS = """
        SELECT l.pid, l.locktype, l.mode,
               CASE WHEN l.relation IS NULL THEN NULL
                    WHEN l.database = 0 OR l.database = (SELECT oid FROM pg_database
                                                         WHERE datname = current_database())
                    THEN l.relation::regclass::text
                    ELSE 'oid ' || l.relation::text END AS relation,
               l.page, l.tuple::int AS tuple,
               l.transactionid::text AS transactionid, l.virtualxid,
               l.classid::bigint AS classid, l.objid::bigint AS objid,
               l.objsubid::int AS objsubid,
               {waitstart}
        FROM pg_locks l
        WHERE NOT l.granted AND l.pid = ANY(%(pids)s::int[])
        ORDER BY l.pid
        """
LOCK_WAITS = _query(
    "lock_waits", *_variants(_LOCK_WAITS, waitstart=_columns(("waitstart", _WAITSTART)))
)

# -- actions -----------------------------------------------------------------------------------

# After a signal: the session has left (terminate), or its captured query is no longer
# running (cancel, when query_start is given).
SESSION_GONE = _query(
    "session_gone",
    (
        130000,
        """
        SELECT NOT EXISTS (
            SELECT 1 FROM pg_stat_activity
            WHERE pid = %(pid)s AND backend_start = %(backend_start)s
              AND (%(query_start)s::timestamptz IS NULL
                   OR (query_start = %(query_start)s::timestamptz AND state = 'active'))
        ) AS gone
        """,
    ),
)

# A relation's current name and owner, read back by OID before a utility statement is
# built (and before the confirm dialog, which names the owner).
RELATION_IDENTITY = _query(
    "relation_identity",
    (
        130000,
        """
        SELECT n.nspname AS schema, c.relname AS name,
               pg_get_userbyid(c.relowner)::text AS owner
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.oid = %(oid)s
        """,
    ),
)

# Who stopped an action that gave up on its lock: holders of a conflicting lock on the
# table; if none (REINDEX CONCURRENTLY also waits for older transactions), the sessions
# whose snapshots are oldest.
LOCK_HOLDERS = _query(
    "lock_holders",
    (
        130000,
        """
        WITH holders AS (
            SELECT l.pid, l.mode
            FROM pg_locks l
            WHERE l.locktype = 'relation' AND l.relation = %(oid)s AND l.granted
              AND l.mode = ANY(%(conflicts)s::text[])
              AND l.pid <> pg_backend_pid() AND l.pid <> ALL(%(own_pids)s::int[])
        )
        SELECT h.pid, h.mode, a.usename, a.application_name, a.state, a.xact_start
        FROM holders h LEFT JOIN pg_stat_activity a ON a.pid = h.pid
        UNION ALL
        SELECT a.pid, 'an old snapshot', a.usename, a.application_name, a.state, a.xact_start
        FROM pg_stat_activity a
        WHERE NOT EXISTS (SELECT 1 FROM holders)
          AND a.backend_xmin IS NOT NULL
          AND a.pid <> pg_backend_pid() AND a.pid <> ALL(%(own_pids)s::int[])
        ORDER BY xact_start NULLS LAST
        LIMIT 5
        """,
    ),
)

# Before a REINDEX CONCURRENTLY: the indexes of the table and of its TOAST table (which
# REINDEX TABLE rebuilds too), and the transaction counter, so that what the REINDEX leaves
# behind can be told from what others create meanwhile.
REINDEX_BEFORE = _query(
    "reindex_before",
    (
        130000,
        """
        SELECT coalesce(array_agg(i.indexrelid::bigint), '{}') AS indexes,
               (SELECT array_agg(oid::bigint) FROM pg_class
                WHERE oid = %(table_oid)s::oid OR oid = (
                    SELECT reltoastrelid FROM pg_class WHERE oid = %(table_oid)s::oid)
               ) AS tables,
               pg_current_xact_id()::text::bigint AS xid
        FROM pg_index i
        WHERE i.indrelid IN (SELECT reltoastrelid FROM pg_class WHERE oid = %(table_oid)s::oid
                             UNION ALL SELECT %(table_oid)s::oid)
        """,
    ),
)

# What a failed or cancelled REINDEX CONCURRENTLY left behind, and only that: invalid
# indexes of the tables it rebuilt named like its new (``_ccnew``) or replaced (``_ccold``)
# indexes, new or renamed by a transaction of its time span (%(xid_before)s to now, 32-bit
# transaction IDs compared modulo 2^32), that nobody is building now.
REINDEX_LEFTOVERS = _query(
    "reindex_leftovers",
    (
        130000,
        """
        SELECT c.oid::bigint AS oid, n.nspname AS schema, c.relname AS name,
               i.indrelid::bigint AS table_oid
        FROM pg_index i
        JOIN pg_class c ON c.oid = i.indexrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE i.indrelid = ANY(%(tables)s::oid[]) AND NOT i.indisvalid
          AND ((c.relname ~ '_ccnew[0-9]*$' AND c.oid <> ALL(%(before)s::oid[]))
               OR (c.relname ~ '_ccold[0-9]*$' AND c.oid = ANY(%(before)s::oid[])))
          AND ((c.xmin::text::bigint - %(xid_before)s %% 4294967296 + 4294967296)
               %% 4294967296)
              <= pg_current_xact_id()::text::bigint - %(xid_before)s
          AND NOT EXISTS (SELECT FROM pg_stat_progress_create_index p
                          WHERE p.index_relid = c.oid
                             OR (p.relid = i.indrelid AND p.pid <> pg_backend_pid()))
        ORDER BY c.oid
        """,
    ),
)

# Just before dropping a leftover index: it is still that index, still invalid, and no
# session is building an index on its table or holds a lock on it.
LEFTOVER_STILL_INVALID = _query(
    "leftover_still_invalid",
    (
        130000,
        """
        SELECT EXISTS (
            SELECT FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE i.indexrelid = %(oid)s AND NOT i.indisvalid
              AND n.nspname = %(schema)s AND c.relname = %(name)s
              AND NOT EXISTS (SELECT FROM pg_stat_progress_create_index p
                              WHERE p.index_relid = i.indexrelid OR p.relid = i.indrelid)
              AND NOT EXISTS (SELECT FROM pg_locks l
                              WHERE l.locktype = 'relation' AND l.relation = i.indexrelid
                                AND l.pid <> pg_backend_pid())
        ) AS still
        """,
    ),
)

# Progress of the action connection's statement, from the server's progress views.
ACTION_PROGRESS = _query(
    "action_progress",
    (
        130000,
        """
        SELECT 'vacuum: ' || phase AS phase,
               CASE WHEN heap_blks_total > 0
                    THEN 100.0 * heap_blks_scanned / heap_blks_total END AS percent
        FROM pg_stat_progress_vacuum WHERE pid = %(pid)s
        UNION ALL
        SELECT 'analyze: ' || phase,
               CASE WHEN sample_blks_total > 0
                    THEN 100.0 * sample_blks_scanned / sample_blks_total END
        FROM pg_stat_progress_analyze WHERE pid = %(pid)s
        UNION ALL
        SELECT 'reindex: ' || phase,
               CASE WHEN blocks_total > 0 THEN 100.0 * blocks_done / blocks_total END
        FROM pg_stat_progress_create_index WHERE pid = %(pid)s
        """,
    ),
)

# What one session's command has done so far, from every progress view that reports it:
# each view's row whole (to_jsonb: the columns differ between versions; pgtop reads the
# ones it knows), and the relation it works on, named only in the connected database
# (regclass output takes no lock). COPY's view appeared in 14.
_SESSION_PROGRESS = """
        SELECT v.kind, v.figures,
               CASE WHEN v.relid IS NULL OR v.relid = 0 THEN NULL
                    WHEN v.datid = (SELECT oid FROM pg_database
                                    WHERE datname = current_database())
                    THEN v.relid::regclass::text
                    ELSE 'oid ' || v.relid::text END AS relation
        FROM (
            SELECT 'vacuum' AS kind, to_jsonb(p) AS figures, p.datid, p.relid
            FROM pg_stat_progress_vacuum p WHERE p.pid = %(pid)s
            UNION ALL
            SELECT 'analyze', to_jsonb(p), p.datid, p.relid
            FROM pg_stat_progress_analyze p WHERE p.pid = %(pid)s
            UNION ALL
            SELECT 'create_index', to_jsonb(p), p.datid, p.relid
            FROM pg_stat_progress_create_index p WHERE p.pid = %(pid)s
            UNION ALL
            SELECT 'cluster', to_jsonb(p), p.datid, p.relid
            FROM pg_stat_progress_cluster p WHERE p.pid = %(pid)s
            UNION ALL
            SELECT 'basebackup', to_jsonb(p), NULL::oid, NULL::oid
            FROM pg_stat_progress_basebackup p WHERE p.pid = %(pid)s{copy}
        ) AS v
        """
SESSION_PROGRESS = _query(
    "session_progress",
    *_variants(
        _SESSION_PROGRESS,
        copy={
            130000: "",
            140000: """
            UNION ALL
            SELECT 'copy', to_jsonb(p), p.datid, p.relid
            FROM pg_stat_progress_copy p WHERE p.pid = %(pid)s""",
        },
    ),
)

# A session's role as the server weighs a signal to it: only superusers signal
# superusers; a role with the target role's privileges (a member that inherits them)
# signals its sessions without pg_signal_backend.
TARGET_ROLE = _query(
    "target_role",
    (
        130000,
        """
        SELECT rolsuper AS superuser, pg_has_role(oid, 'USAGE') AS inherited
        FROM pg_roles WHERE rolname = %(role)s
        """,
    ),
)


# -- pg_stat_statements (Queries tab) ------------------------------------------------------------
# Its columns follow the version of the extension created in the connected database, which
# can lag the server's (an extension is not updated by pg_upgrade). So these statements
# have variants by extension version, and they live outside REGISTRY: they can run only in
# a database where the extension exists (tests/integration/test_statements.py runs each
# variant on a database created with that extension version).


@dataclass(frozen=True, slots=True)
class ExtensionQuery:
    """A statement on an extension's objects, with variants by extension version, oldest first."""

    name: str
    extension: str
    variants: tuple[tuple[tuple[int, int], str], ...]

    def sql(self, extension_version: tuple[int, ...], schema: str) -> str:
        """The newest variant for ``extension_version`` (e.g. ``(1, 10)``), its objects
        named through ``schema``, the schema the extension was created in: a name resolved
        through a search_path could reach another user's object of the same name."""
        chosen: str | None = None
        for minimum, text in self.variants:
            if tuple(extension_version) >= minimum:
                chosen = text
        if chosen is None:
            oldest = ".".join(map(str, self.variants[0][0]))
            raise UnsupportedServerError(f"{self.name} needs {self.extension} {oldest} or newer")
        return chosen.format(schema=Identifier(schema).as_string(None))


EXTENSION_REGISTRY: dict[str, ExtensionQuery] = {}


def _extension_query(
    name: str, extension: str, *variants: tuple[tuple[int, int], str]
) -> ExtensionQuery:
    query = ExtensionQuery(name, extension, tuple(sorted(variants)))
    EXTENSION_REGISTRY[name] = query
    return query


# The counters of every entry, without texts (showtext => false): texts live in a file on
# the server and are read only for the statements on screen (STATEMENT_TEXTS). Column
# names are pgtop's own (``*_ms``), the same in every variant; what a version lacks is NULL.
# Each column: its name, and its source by the extension version that has it.
_COUNTER_COLUMNS: tuple[tuple[str, dict[tuple[int, int], str]], ...] = (
    ("userid", {(1, 3): "s.userid::bigint"}),
    ("dbid", {(1, 3): "s.dbid::bigint"}),
    # 1.9 added toplevel, part of an entry's identity.
    ("toplevel", {(1, 3): "NULL::bool", (1, 9): "s.toplevel"}),
    ("queryid", {(1, 3): "s.queryid"}),
    ('"user"', {(1, 3): "r.rolname"}),
    ("database", {(1, 3): "d.datname"}),
    ("calls", {(1, 3): "s.calls"}),
    # Before 1.8 there was no planning time and total_time was execution time.
    ("exec_ms", {(1, 3): "s.total_time", (1, 8): "s.total_exec_time"}),
    ("plans", {(1, 3): "NULL::bigint", (1, 8): "s.plans"}),
    ("plan_ms", {(1, 3): "NULL::float8", (1, 8): "s.total_plan_time"}),
    ("rows", {(1, 3): "s.rows"}),
    ("shared_blks_hit", {(1, 3): "s.shared_blks_hit"}),
    ("shared_blks_read", {(1, 3): "s.shared_blks_read"}),
    ("shared_blks_dirtied", {(1, 3): "s.shared_blks_dirtied"}),
    ("shared_blks_written", {(1, 3): "s.shared_blks_written"}),
    ("local_blks_hit", {(1, 3): "s.local_blks_hit"}),
    ("local_blks_read", {(1, 3): "s.local_blks_read"}),
    ("local_blks_dirtied", {(1, 3): "s.local_blks_dirtied"}),
    ("local_blks_written", {(1, 3): "s.local_blks_written"}),
    ("temp_blks_read", {(1, 3): "s.temp_blks_read"}),
    ("temp_blks_written", {(1, 3): "s.temp_blks_written"}),
    # 1.11 renamed blk_read_time/blk_write_time to shared_blk_*_time and added local I/O
    # timing; 1.10 added temp I/O timing.
    ("shared_blk_read_ms", {(1, 3): "s.blk_read_time", (1, 11): "s.shared_blk_read_time"}),
    ("shared_blk_write_ms", {(1, 3): "s.blk_write_time", (1, 11): "s.shared_blk_write_time"}),
    ("local_blk_read_ms", {(1, 3): "NULL::float8", (1, 11): "s.local_blk_read_time"}),
    ("local_blk_write_ms", {(1, 3): "NULL::float8", (1, 11): "s.local_blk_write_time"}),
    ("temp_blk_read_ms", {(1, 3): "NULL::float8", (1, 10): "s.temp_blk_read_time"}),
    ("temp_blk_write_ms", {(1, 3): "NULL::float8", (1, 10): "s.temp_blk_write_time"}),
    # 1.8 added WAL usage; 1.12 WAL buffers full.
    ("wal_records", {(1, 3): "NULL::bigint", (1, 8): "s.wal_records"}),
    ("wal_fpi", {(1, 3): "NULL::bigint", (1, 8): "s.wal_fpi"}),
    ("wal_bytes", {(1, 3): "NULL::bigint", (1, 8): "s.wal_bytes::bigint"}),
    ("wal_buffers_full", {(1, 3): "NULL::bigint", (1, 12): "s.wal_buffers_full"}),
    # 1.10 added JIT; 1.11 JIT deform.
    ("jit_functions", {(1, 3): "NULL::bigint", (1, 10): "s.jit_functions"}),
    ("jit_generation_ms", {(1, 3): "NULL::float8", (1, 10): "s.jit_generation_time"}),
    ("jit_inlining_count", {(1, 3): "NULL::bigint", (1, 10): "s.jit_inlining_count"}),
    ("jit_inlining_ms", {(1, 3): "NULL::float8", (1, 10): "s.jit_inlining_time"}),
    ("jit_optimization_count", {(1, 3): "NULL::bigint", (1, 10): "s.jit_optimization_count"}),
    ("jit_optimization_ms", {(1, 3): "NULL::float8", (1, 10): "s.jit_optimization_time"}),
    ("jit_emission_count", {(1, 3): "NULL::bigint", (1, 10): "s.jit_emission_count"}),
    ("jit_emission_ms", {(1, 3): "NULL::float8", (1, 10): "s.jit_emission_time"}),
    ("jit_deform_count", {(1, 3): "NULL::bigint", (1, 11): "s.jit_deform_count"}),
    ("jit_deform_ms", {(1, 3): "NULL::float8", (1, 11): "s.jit_deform_time"}),
    # 1.12 added parallel workers.
    (
        "parallel_workers_to_launch",
        {(1, 3): "NULL::bigint", (1, 12): "s.parallel_workers_to_launch"},
    ),
    (
        "parallel_workers_launched",
        {(1, 3): "NULL::bigint", (1, 12): "s.parallel_workers_launched"},
    ),
    # Execution time again: named *_time before 1.8.
    ("min_exec_ms", {(1, 3): "s.min_time", (1, 8): "s.min_exec_time"}),
    ("max_exec_ms", {(1, 3): "s.max_time", (1, 8): "s.max_exec_time"}),
    ("mean_exec_ms", {(1, 3): "s.mean_time", (1, 8): "s.mean_exec_time"}),
    ("stddev_exec_ms", {(1, 3): "s.stddev_time", (1, 8): "s.stddev_exec_time"}),
    # 1.11 added stats_since.
    ("stats_since", {(1, 3): "NULL::timestamptz", (1, 11): "s.stats_since"}),
    ("minmax_stats_since", {(1, 3): "NULL::timestamptz", (1, 11): "s.minmax_stats_since"}),
)
_STATEMENT_COUNTERS = """
        SELECT {columns}
        FROM {schema}.pg_stat_statements(false) s
        LEFT JOIN pg_roles r ON r.oid = s.userid
        LEFT JOIN pg_database d ON d.oid = s.dbid
        """
STATEMENT_COUNTERS = _extension_query(
    "statement_counters",
    "pg_stat_statements",
    *_variants(_STATEMENT_COUNTERS, columns=_columns(*_COUNTER_COLUMNS)),
)

# The server clock of a reading (rates divide by the time between two), and how many
# entries were evicted (pg_stat_statements.max too small: their counters are lost) and
# when everything was last reset; pg_stat_statements_info appeared in 1.9.
STATEMENTS_INFO = _extension_query(
    "statements_info",
    "pg_stat_statements",
    (
        (1, 3),
        """
        SELECT clock_timestamp() AS collected_at, NULL::bigint AS dealloc,
               NULL::timestamptz AS stats_reset
        """,
    ),
    (
        (1, 9),
        """
        SELECT clock_timestamp() AS collected_at, i.dealloc, i.stats_reset
        FROM {schema}.pg_stat_statements_info i
        """,
    ),
)

# Texts of some statements only. The server still reads its whole text file for this call,
# so pgtop asks rarely: for the statements on screen it has not seen yet, cached by queryid.
# A queryid is the same statement shape whoever ran it, so one text per queryid is enough.
STATEMENT_TEXTS = _extension_query(
    "statement_texts",
    "pg_stat_statements",
    (
        (1, 3),
        """
        SELECT DISTINCT ON (s.queryid) s.queryid, left(s.query, %(text_limit)s::int) AS query,
               d.datname AS database
        FROM {schema}.pg_stat_statements(true) s
        LEFT JOIN pg_database d ON d.oid = s.dbid
        WHERE s.queryid = ANY(%(queryids)s::bigint[])
        """,
    ),
)

# The entry of one running statement, by the query id pg_stat_activity reports for it and
# the role and database of its session; the top-level entry (1.9+ keeps nested ones apart).
_SESSION_STATEMENT = """
        SELECT {columns}
        FROM {schema}.pg_stat_statements(false) s
        JOIN pg_roles r ON r.oid = s.userid
        JOIN pg_database d ON d.oid = s.dbid
        WHERE s.queryid = %(queryid)s AND r.rolname = %(user)s AND d.datname = %(database)s
          {toplevel}
        """
SESSION_STATEMENT = _extension_query(
    "session_statement",
    "pg_stat_statements",
    *_variants(
        _SESSION_STATEMENT,
        columns=_columns(*_COUNTER_COLUMNS),
        toplevel={(1, 3): "", (1, 9): "AND s.toplevel"},
    ),
)

# The extension's version now: checked again, now and then, after it was found missing.
STATEMENTS_EXTENSION = _query(
    "statements_extension",
    (
        130000,
        """
        SELECT e.extversion, n.nspname AS schema
        FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
        WHERE e.extname = 'pg_stat_statements'
        """,
    ),
)

# -- plans of pg_stat_statements' statements (statements.explain) -------------------------------
# A statement's text was written by whoever ran it. Planning can run code: the planner folds
# IMMUTABLE functions with constant arguments, and the relcache folds index expressions and
# predicates of every table the planner looks at. So pgtop plans a text only after it has
# seen everything the statement reaches, and plans it as the role that ran it, inside a
# SECURITY DEFINER function (where no code can SET or RESET ROLE back to pgtop's role). All
# of it happens in one transaction that is always rolled back. Between the steps that parse
# the statement's text (under the statement's search_path) pgtop's own statements run under
# SAFE_SEARCH_PATH: only pg_catalog's objects are found (pg_temp holds only pgtop's own
# temporary functions and is never searched for functions or operators).

PLANNING_MIN_VERSION = 140000
"""SQL-standard function bodies (BEGIN ATOMIC), which show what a statement reaches, came in 14."""
SAFE_SEARCH_PATH = "pg_catalog, pg_temp"
STATEMENT_SEARCH_PATH = 'pg_catalog, "$user", public, pg_temp'
"""Where a statement's names are looked up: pg_stat_statements does not keep the path it
ran with, so the default one, behind pg_catalog so that no schema can shadow a built-in."""
REACH_LIMIT = 50_000
"""Most objects a statement may reach before pgtop gives up checking them (about 20 µs each:
a table with 1,000 partitions and an index reaches 2,003 objects in 45 ms)."""

# The first statement of the transaction, fully qualified because the session's search_path
# is not pgtop's to rely on. statement_timeout and lock_timeout bound every later step
# (planning takes the statement's table locks; waiting behind an ACCESS EXCLUSIVE lock would
# queue others behind pgtop).
EXPLAIN_SETUP = _query(
    "explain_setup",
    (
        130000,
        f"""
        SELECT pg_catalog.set_config('search_path', '{SAFE_SEARCH_PATH}', true) AS search_path,
               pg_catalog.set_config('statement_timeout', %(statement_timeout)s, true)
                   AS statement_timeout,
               pg_catalog.set_config('lock_timeout', %(lock_timeout)s, true) AS lock_timeout,
               current_user AS acting,
               pg_catalog.pg_is_in_recovery() AS standby
        """,
    ),
)

# Whose code trusted means: a superuser's or pgtop's own role's (session_user: the role it
# logged in as, whatever role it acts as).
_TRUSTED = "(r.rolsuper OR r.rolname = session_user)"

# Checked as pgtop's own role before it acts as the statement's: whether that role may create
# temporary objects (pgtop's checks need a temporary function; NULL: no such role), and any
# enabled event trigger whose function is not trusted. Event triggers fire on the CREATE
# FUNCTION statements pgtop runs; a superuser creates them, but the function one runs can be
# another role's.
EXPLAIN_PRECHECK = _query(
    "explain_precheck",
    (
        130000,
        f"""
        SELECT (SELECT has_database_privilege(r.oid, d.oid, 'TEMP')
                FROM pg_roles r, pg_database d
                WHERE r.rolname = %(role)s AND d.datname = current_database()) AS temp,
               t.event_trigger, t.function, t.owner
        FROM (SELECT 1) AS one
        LEFT JOIN LATERAL (
            SELECT e.evtname AS event_trigger, p.oid::regprocedure::text AS function,
                   r.rolname AS owner
            FROM pg_event_trigger e
            JOIN pg_proc p ON p.oid = e.evtfoid
            LEFT JOIN pg_roles r ON r.oid = p.proowner
            WHERE e.evtenabled <> 'D'
              AND e.evtevent IN ('ddl_command_start', 'ddl_command_end')
              AND NOT coalesce({_TRUSTED}, false)
            ORDER BY e.evtname
            LIMIT 1
        ) AS t ON true
        """,
    ),
)

# Switches the search_path within the transaction; fully qualified, as it runs under both.
# This statement and the ones below run while pgtop acts as the statement's role, so
# pg_stat_statements records them under that role: each starts with a "pgtop_" name, which
# is how pgtop recognises them as its own (statements.is_own).
EXPLAIN_SEARCH_PATH = _query(
    "explain_search_path",
    (
        130000,
        """
        SELECT pgtop_search_path
        FROM pg_catalog.set_config('search_path', %(search_path)s, true) AS pgtop_search_path
        """,
    ),
)

# The parameter types of the statement once prepared, by schema and name: they make the
# signature of the function whose body shows what the statement reaches.
EXPLAIN_PARAMETERS = _query(
    "explain_parameters",
    (
        130000,
        """
        SELECT n.nspname AS pgtop_type_schema, t.typname AS pgtop_type_name
        FROM pg_prepared_statements s
        CROSS JOIN LATERAL unnest(s.parameter_types::oid[]) WITH ORDINALITY AS p(type, position)
        JOIN pg_type t ON t.oid = p.type
        JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE s.name = %(name)s
        ORDER BY p.position
        """,
    ),
)


def _follow(reached: str, table: str, column: str, origin: str, key: str, also: str = "") -> str:
    """An arm of EXPLAIN_REACH's walk: from an object of catalog ``origin``, the ``reached``
    objects named by ``table.column`` in the rows whose ``key`` is that object."""
    return f"""
              UNION ALL
                SELECT '{reached}'::regclass, t.{column} FROM {table} t
                WHERE r.classid = '{origin}'::regclass AND t.{key} = r.objid{also}"""


# What the walk follows besides pg_depend (see the comment on EXPLAIN_REACH).
_FOLLOWED = "".join(
    _follow(*arm)
    for arm in (
        ("pg_class", "pg_inherits", "inhrelid", "pg_class", "inhparent"),
        ("pg_class", "pg_inherits", "inhparent", "pg_class", "inhrelid"),
        ("pg_class", "pg_index", "indexrelid", "pg_class", "indrelid"),
        ("pg_policy", "pg_policy", "oid", "pg_class", "polrelid"),
        ("pg_attrdef", "pg_attrdef", "oid", "pg_class", "adrelid"),
        ("pg_constraint", "pg_constraint", "oid", "pg_class", "conrelid", " AND t.contype = 'c'"),
        ("pg_rewrite", "pg_rewrite", "oid", "pg_class", "ev_class"),
        ("pg_statistic_ext", "pg_statistic_ext", "oid", "pg_class", "stxrelid"),
        ("pg_constraint", "pg_constraint", "oid", "pg_type", "contypid"),
        ("pg_operator", "pg_amop", "amopopr", "pg_opfamily", "amopfamily"),
        ("pg_proc", "pg_amproc", "amproc", "pg_opfamily", "amprocfamily"),
    )
)


# Everything a statement reaches, from the dependencies that PostgreSQL records for a
# function with a SQL-standard body (the statement, parsed as pgtop_reach's body): the
# functions, operators, relations and types it names. pg_depend does not record built-in
# (pinned) objects, which are a superuser's. From each object reached the walk follows:
# * what its definition refers to (pg_depend): a view's rule, a policy, a default, an index
#   expression, a domain's constraint, a range type's subtype_diff and canonical functions,
#   an operator's function and selectivity estimators, a type's I/O functions, a foreign
#   table's server and wrapper; not from one relation to another (a partition to its parent,
#   an index to its table), which the walk reaches as below, or not at all;
# * for a relation, what the planner (or the relcache, or the rewriter when the statement was
#   prepared) loads with it: inheritance children and parents, indexes (their expressions and
#   predicates are folded when loaded), row-level security policies, column defaults and
#   generated columns, check constraints (constraint exclusion folds them), rules, and
#   extended statistics (their expressions are folded when loaded);
# * for a type, its domain constraints; for an operator, its commutator and negator (which
#   the planner may use instead); for an operator family, its operators and support
#   functions (an index's operator class is used when estimating).
# UNION (not UNION ALL) keeps each object once, so the walk ends; REACH_LIMIT bounds it.
# The trusted role of an object's owner is checked for functions and operators only: every
# other object reaches code only through them. Tables are data; their owners do not matter.
EXPLAIN_REACH = _query(
    "explain_reach",
    (
        130000,
        f"""
        WITH RECURSIVE pgtop_start AS (
            SELECT p.oid FROM pg_proc p
            WHERE p.pronamespace = pg_my_temp_schema() AND p.proname = %(function)s
        ),
        reached(classid, objid) AS (
            SELECT 'pg_proc'::regclass::oid, oid FROM pgtop_start
          UNION
            SELECT next.classid, next.objid
            FROM reached r
            CROSS JOIN LATERAL (
                SELECT d.refclassid, d.refobjid
                FROM pg_depend d
                WHERE d.classid = r.classid AND d.objid = r.objid
                  AND d.refclassid IN (
                      'pg_proc'::regclass, 'pg_operator'::regclass, 'pg_class'::regclass,
                      'pg_type'::regclass, 'pg_rewrite'::regclass, 'pg_policy'::regclass,
                      'pg_attrdef'::regclass, 'pg_constraint'::regclass,
                      'pg_statistic_ext'::regclass, 'pg_opclass'::regclass,
                      'pg_opfamily'::regclass, 'pg_foreign_server'::regclass,
                      'pg_foreign_data_wrapper'::regclass)
                  AND NOT (r.classid = 'pg_class'::regclass
                           AND d.refclassid = 'pg_class'::regclass)
{_FOLLOWED}
              UNION ALL
                SELECT 'pg_operator'::regclass, o.other
                FROM pg_operator op
                CROSS JOIN LATERAL (VALUES (op.oprcom), (op.oprnegate)) AS o(other)
                WHERE r.classid = 'pg_operator'::regclass AND op.oid = r.objid
                  AND o.other <> 0
            ) AS next(classid, objid)
        ),
        bounded AS (
            SELECT classid, objid FROM reached LIMIT %(limit)s
        ),
        code AS (
            SELECT b.classid, b.objid, p.proowner AS owner
            FROM bounded b JOIN pg_proc p ON p.oid = b.objid
            WHERE b.classid = 'pg_proc'::regclass AND p.oid NOT IN (SELECT oid FROM pgtop_start)
          UNION ALL
            SELECT b.classid, b.objid, o.oprowner
            FROM bounded b JOIN pg_operator o ON o.oid = b.objid
            WHERE b.classid = 'pg_operator'::regclass
        ),
        untrusted AS (
            SELECT c.classid, c.objid, r.rolname AS owner,
                   EXISTS (
                       SELECT FROM pg_depend d
                       WHERE d.classid = 'pg_proc'::regclass
                         AND d.objid IN (SELECT oid FROM pgtop_start)
                         AND d.refclassid = c.classid AND d.refobjid = c.objid
                   ) AS direct
            FROM code c
            LEFT JOIN pg_roles r ON r.oid = c.owner
            WHERE NOT coalesce({_TRUSTED}, false)
        )
        -- The first untrusted object: one the statement names itself, else any; and what
        -- reached it (a view's rule, a policy or a default before an index or a type).
        SELECT (SELECT count(*) FROM bounded) AS reached,
               pg_describe_object(u.classid, u.objid, 0) AS object,
               u.owner,
               CASE WHEN NOT u.direct THEN (
                   SELECT pg_describe_object(d.classid, d.objid, 0)
                   FROM pg_depend d
                   JOIN bounded b ON b.classid = d.classid AND b.objid = d.objid
                   WHERE d.refclassid = u.classid AND d.refobjid = u.objid
                   ORDER BY CASE d.classid
                                WHEN 'pg_rewrite'::regclass THEN 1
                                WHEN 'pg_policy'::regclass THEN 2
                                WHEN 'pg_attrdef'::regclass THEN 3
                                WHEN 'pg_constraint'::regclass THEN 4
                                WHEN 'pg_operator'::regclass THEN 5
                                ELSE 6
                            END,
                            d.classid, d.objid
                   LIMIT 1
               ) END AS through
        FROM (SELECT 1) AS one
        LEFT JOIN LATERAL (
            SELECT * FROM untrusted ORDER BY direct DESC, classid, objid LIMIT 1
        ) AS u ON true
        """,
    ),
)

# Settings for the planning itself: read only (turned on once pgtop's temporary functions
# exist), a generic plan for statements with parameters (EXECUTE is given NULLs, which a
# generic plan does not use), and the statement's search_path back (a prepared statement
# whose search_path changed would be parsed again).
EXPLAIN_PLAN_SETTINGS = _query(
    "explain_plan_settings",
    (
        130000,
        f"""
        SELECT pgtop_read_only, pgtop_plan_cache_mode, pgtop_search_path
        FROM pg_catalog.set_config('transaction_read_only', 'on', true) AS pgtop_read_only,
             pg_catalog.set_config('plan_cache_mode', 'force_generic_plan', true)
                 AS pgtop_plan_cache_mode,
             pg_catalog.set_config('search_path', '{STATEMENT_SEARCH_PATH}', true)
                 AS pgtop_search_path
        """,
    ),
)

# Statements around the statement's text, not statements of their own: not in REGISTRY.
# pgtop recognises them in pg_stat_statements as its own (statements.own_prefixes).
# The prepared statement's name is unique (PREPARE outlives a rollback, DEALLOCATE follows).
PLAN_PREPARE = Query(
    "plan_prepare", ((PLANNING_MIN_VERSION, 'PREPARE "pgtop_planned_{number}" AS '),)
)
PLAN_EXECUTE = Query(
    "plan_execute",
    ((PLANNING_MIN_VERSION, 'EXPLAIN EXECUTE "pgtop_planned_{number}"{parameters}'),),
)
PLAN_DEALLOCATE = Query(
    "plan_deallocate", ((PLANNING_MIN_VERSION, 'DEALLOCATE "pgtop_planned_{number}"'),)
)
PLAN_REACH_FUNCTION = Query(
    "plan_reach_function",
    (
        (
            PLANNING_MIN_VERSION,
            "CREATE FUNCTION pg_temp.pgtop_reach({parameters}) RETURNS void LANGUAGE sql\n"
            "BEGIN ATOMIC\n{statement}\n;\nEND",
        ),
    ),
)
# The containment: a SECURITY DEFINER function runs as its owner (the statement's role), and
# PostgreSQL refuses SET ROLE, RESET ROLE and SET SESSION AUTHORIZATION inside one. Every
# name in it is qualified: plpgsql compiles it under the statement's search_path.
PLAN_CONTAINER = Query(
    "plan_container",
    (
        (
            PLANNING_MIN_VERSION,
            """
        CREATE FUNCTION pg_temp.pgtop_explain(statement pg_catalog.text)
        RETURNS SETOF pg_catalog.text LANGUAGE plpgsql SECURITY DEFINER AS $$
        DECLARE line pg_catalog.text;
        BEGIN
            FOR line IN EXECUTE statement LOOP
                RETURN NEXT line;
            END LOOP;
        END $$
        """,
        ),
    ),
)
PLAN_EXPLAIN = Query(
    "plan_explain",
    ((PLANNING_MIN_VERSION, "SELECT * FROM pg_temp.pgtop_explain(%(statement)s)"),),
)
AS_STATEMENT_ROLE: tuple[Query, ...] = (
    EXPLAIN_SEARCH_PATH,
    PLAN_PREPARE,
    EXPLAIN_PARAMETERS,
    PLAN_REACH_FUNCTION,
    EXPLAIN_REACH,
    PLAN_CONTAINER,
    EXPLAIN_PLAN_SETTINGS,
    PLAN_EXPLAIN,
    PLAN_EXECUTE,
)
"""What pgtop runs while acting as a statement's role (with pg_stat_statements.track = all,
the prepared statement and its EXPLAIN EXECUTE are recorded too, as nested statements)."""


# -- Tables, Vacuum and Indexes tabs (pgtop/catalog.py) ----------------------------------------
# None of these statements waits on a relation lock: they read pg_class, pg_index and the
# statistics functions by OID, and name relations with ::regclass output, which takes no
# lock. The size functions (pg_relation_size() and friends) open the relation with
# AccessShareLock and so queue behind an ACCESS EXCLUSIVE lock: they are called only in
# TABLE_SIZES and INDEX_SIZES, for the few rows on screen, never on a relation that
# pg_locks shows locked (or queued for) ACCESS EXCLUSIVE, and under a short lock_timeout.

# What every catalog tab shows in its status line, but the database size (DATABASE_PAGES).
CATALOG_HEADER = _query(
    "catalog_header",
    (
        130000,
        """
        SELECT now() AS collected_at, current_database() AS database,
               current_setting('block_size')::int AS block_size,
               (SELECT age(datfrozenxid) FROM pg_database
                WHERE datname = current_database()) AS datfrozenxid_age,
               (SELECT stats_reset FROM pg_stat_database
                WHERE datname = current_database()) AS stats_reset
        """,
    ),
)

# The database size of the status line: the sum of the relpages estimates of every
# relation (pg_database_size() stats every file of the database). A scan of all of
# pg_class: read now and then, not on every refresh (catalog.SCAN_EVERY).
DATABASE_PAGES = _query(
    "database_pages",
    (130000, "SELECT coalesce(sum(relpages), 0)::bigint AS pages FROM pg_class"),
)

# Settings for one catalog read, in its own transaction: no JIT compilation and no parallel
# workers (a monitor must not take background worker slots, and compiling costs more than
# these scans of the catalogs save), and enough work_mem for the hash aggregates and joins
# over every index not to spill to disk at 100,000 relations.
_CATALOG_READ = """
        SELECT set_config('jit', 'off', true) AS jit,
               set_config('max_parallel_workers_per_gather', '0', true)
                   AS max_parallel_workers_per_gather,
               set_config('work_mem', '64MB', true) AS work_mem,
               {stats_fetch_consistency} AS stats_fetch_consistency
        """
CATALOG_READ = _query(
    "catalog_read",
    *_variants(
        _CATALOG_READ,
        stats_fetch_consistency={
            130000: "NULL::text",
            # From 15, statistics are read from shared memory; each relation is read once
            # here, so caching every entry in the backend first only costs time.
            150000: "set_config('stats_fetch_consistency', 'none', true)",
        },
    ),
)

# One row per table and materialized view outside the system schemas, sized from the
# relpages estimates (table, TOAST table and its index, indexes), which need no lock.
# Indexes are aggregated once, by the table that owns them: a TOAST table's index counts
# as TOAST of the table that owns the TOAST table.
TABLES, TABLES_SOME = _listing(
    "tables",
    "c.oid",
    (
        130000,
        """
        WITH tabs AS MATERIALIZED (
            SELECT c.oid, c.reltoastrelid, n.nspname, c.relname, c.relpages, c.reltuples,
                   t.relpages AS toast_relpages
            FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace
            LEFT JOIN pg_class t ON t.oid = c.reltoastrelid
            WHERE c.relkind IN ('r', 'm') AND {user_schemas}
              {only}
        ), idx AS (
            SELECT coalesce(o.oid, x.indrelid) AS owner,
                   sum(ic.relpages) FILTER (WHERE o.oid IS NULL) AS pages,
                   sum(ic.relpages) FILTER (WHERE o.oid IS NOT NULL) AS toast_pages,
                   sum(pg_stat_get_numscans(x.indexrelid)) FILTER (WHERE o.oid IS NULL) AS scans
            FROM pg_index x
            JOIN pg_class ic ON ic.oid = x.indexrelid
            LEFT JOIN tabs o ON o.reltoastrelid = x.indrelid
            {owned}
            GROUP BY 1
        )
        SELECT c.oid::bigint AS oid, c.nspname AS schema, c.relname AS name,
               c.relpages::bigint AS heap_pages,
               (coalesce(c.toast_relpages, 0) + coalesce(i.toast_pages, 0))::bigint
                   AS toast_pages,
               coalesce(i.pages, 0)::bigint AS index_pages,
               c.reltuples::float8 AS reltuples,
               -- Rows counted by the statistics: only wanted before the first ANALYZE.
               CASE WHEN c.reltuples < 0 THEN pg_stat_get_live_tuples(c.oid) END
                   AS n_live_tup,
               pg_stat_get_numscans(c.oid) AS seq_scan,
               i.scans::bigint AS idx_scan,
               pg_stat_get_tuples_inserted(c.oid) AS n_tup_ins,
               pg_stat_get_tuples_updated(c.oid) AS n_tup_upd,
               pg_stat_get_tuples_deleted(c.oid) AS n_tup_del
        FROM tabs c
        LEFT JOIN idx i ON i.owner = c.oid
        """,
    ),
    # Only the indexes of the tables read (and of their TOAST tables).
    owned="WHERE x.indrelid IN (SELECT oid FROM tabs UNION ALL SELECT reltoastrelid FROM tabs)",
)

# Set inside the transaction of an exact-size read: a lock that pg_locks did not show yet
# costs this long at most, then the estimate stands.
SIZE_LOCK_TIMEOUT = _query(
    "size_lock_timeout",
    (130000, "SELECT set_config('lock_timeout', %(lock_timeout)s, true) AS lock_timeout"),
)

# Relations of this database locked, or queued for, ACCESS EXCLUSIVE (``l``: pg_locks):
# what the catalog tabs mark, and what they never size.
_ACCESS_EXCLUSIVE = """l.locktype = 'relation' AND l.mode = 'AccessExclusiveLock'
              AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"""

# Exact sizes of a few tables (those on screen). A table whose heap, TOAST table or any
# index is locked, or queued for, ACCESS EXCLUSIVE is reported locked and not sized: the
# CASE never calls a size function for it. pg_table_size() includes the TOAST table.
TABLE_SIZES = _query(
    "table_sizes",
    (
        130000,
        f"""
        WITH locked AS (
            SELECT DISTINCT l.relation
            FROM pg_locks l
            WHERE {_ACCESS_EXCLUSIVE}
        ), target AS (
            SELECT c.oid, c.reltoastrelid,
                   EXISTS (
                       SELECT FROM locked k
                       WHERE k.relation IN (c.oid, c.reltoastrelid)
                          OR k.relation IN (SELECT x.indexrelid FROM pg_index x
                                            WHERE x.indrelid IN (c.oid, c.reltoastrelid))
                   ) AS locked
            FROM pg_class c
            WHERE c.oid = ANY(%(oids)s::oid[])
        )
        SELECT oid::bigint AS oid, locked,
               CASE WHEN NOT locked THEN pg_table_size(oid) END AS table_and_toast_bytes,
               CASE WHEN NOT locked THEN pg_indexes_size(oid) END AS index_bytes,
               CASE WHEN locked THEN NULL
                    WHEN reltoastrelid = 0 THEN 0
                    ELSE pg_total_relation_size(reltoastrelid) END AS toast_bytes
        FROM target
        """,
    ),
)

# Relations of this database locked, or queued for, ACCESS EXCLUSIVE: marked in every
# catalog tab (nothing can read or vacuum them until the lock goes).
LOCKED_RELATIONS = _query(
    "locked_relations",
    (
        130000,
        f"""
        SELECT DISTINCT l.relation::bigint AS oid
        FROM pg_locks l
        WHERE {_ACCESS_EXCLUSIVE}
        """,
    ),
)

# The autovacuum settings that decide when a table is due (per-table reloptions override
# them; they are parsed by the caller). current_setting(name, true) is NULL where a
# setting does not exist: autovacuum_vacuum_max_threshold appeared in 18.
AUTOVACUUM_SETTINGS = _query(
    "autovacuum_settings",
    (
        130000,
        """
        SELECT current_setting('autovacuum')::bool
                   AND current_setting('track_counts')::bool AS active,
               current_setting('autovacuum_vacuum_threshold')::float8 AS vacuum_threshold,
               current_setting('autovacuum_vacuum_scale_factor')::float8
                   AS vacuum_scale_factor,
               current_setting('autovacuum_vacuum_max_threshold', true)::float8
                   AS vacuum_max_threshold,
               current_setting('autovacuum_vacuum_insert_threshold')::float8
                   AS insert_threshold,
               current_setting('autovacuum_vacuum_insert_scale_factor')::float8
                   AS insert_scale_factor,
               current_setting('autovacuum_analyze_threshold')::float8 AS analyze_threshold,
               current_setting('autovacuum_analyze_scale_factor')::float8
                   AS analyze_scale_factor,
               current_setting('autovacuum_freeze_max_age')::bigint AS freeze_max_age,
               current_setting('autovacuum_multixact_freeze_max_age')::bigint
                   AS multixact_freeze_max_age
        """,
    ),
)

# Vacuum state per table. The transaction-ID age is the older of the table's and its
# TOAST table's (either forces an anti-wraparound vacuum).
_VACUUM_TABLES = """
        SELECT c.oid::bigint AS oid, n.nspname AS schema, c.relname AS name,
               c.reltuples::float8 AS reltuples, c.relpages::bigint AS relpages,
               {relallfrozen} AS relallfrozen,
               pg_stat_get_live_tuples(c.oid) AS n_live_tup,
               pg_stat_get_dead_tuples(c.oid) AS n_dead_tup,
               pg_stat_get_mod_since_analyze(c.oid) AS n_mod_since_analyze,
               pg_stat_get_ins_since_vacuum(c.oid) AS n_ins_since_vacuum,
               pg_stat_get_last_vacuum_time(c.oid) AS last_vacuum,
               pg_stat_get_last_autovacuum_time(c.oid) AS last_autovacuum,
               pg_stat_get_last_analyze_time(c.oid) AS last_analyze,
               pg_stat_get_last_autoanalyze_time(c.oid) AS last_autoanalyze,
               pg_stat_get_vacuum_count(c.oid) AS vacuum_count,
               pg_stat_get_autovacuum_count(c.oid) AS autovacuum_count,
               pg_stat_get_analyze_count(c.oid) AS analyze_count,
               pg_stat_get_autoanalyze_count(c.oid) AS autoanalyze_count,
               greatest(age(c.relfrozenxid), age(t.relfrozenxid)) AS xid_age,
               greatest(mxid_age(c.relminmxid), mxid_age(t.relminmxid)) AS mxid_age,
               c.reloptions
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_class t ON t.oid = c.reltoastrelid
        WHERE c.relkind IN ('r', 'm') AND {user_schemas}
          {only}
        """
VACUUM_TABLES, VACUUM_TABLES_SOME = _listing(
    "vacuum_tables",
    "c.oid",
    *_variants(
        _VACUUM_TABLES,
        relallfrozen={
            130000: "NULL::bigint",
            # pg_class.relallfrozen appeared in 18; the insert threshold scales with the
            # unfrozen share of the table from then on.
            180000: "c.relallfrozen::bigint",
        },
    ),
)

# What holds the xmin horizon back, oldest first: sessions with a snapshot or an
# transaction ID (walsenders carry their standby's hot_standby_feedback xmin), replication
# slots, prepared transactions. pgtop's own sessions are left out.
XMIN_HOLDERS = _query(
    "xmin_holders",
    (
        130000,
        """
        SELECT * FROM (
            SELECT 'session' AS kind, a.pid::text AS ident, a.pid, a.datname AS database,
                   a.usename::text AS "user", coalesce(a.application_name, '') AS application_name,
                   coalesce(a.backend_type, '') AS backend_type, a.state,
                   a.xact_start AS since, a.state_change,
                   a.backend_xid::text AS xid, a.backend_xmin::text AS xmin,
                   NULL::text AS catalog_xmin,
                   greatest(age(a.backend_xid), age(a.backend_xmin)) AS age,
                   left(coalesce(a.query, ''), %(query_limit)s::int) AS detail
            FROM pg_stat_activity a
            WHERE (a.backend_xid IS NOT NULL OR a.backend_xmin IS NOT NULL)
              AND a.pid <> pg_backend_pid() AND a.pid <> ALL(%(own_pids)s::int[])
            UNION ALL
            SELECT 'slot', s.slot_name::text, s.active_pid, s.database::text, NULL, '',
                   s.slot_type, CASE WHEN s.active THEN 'active' ELSE 'inactive' END,
                   NULL, NULL, NULL, s.xmin::text, s.catalog_xmin::text,
                   greatest(age(s.xmin), age(s.catalog_xmin)), coalesce(s.plugin::text, '')
            FROM pg_replication_slots s
            WHERE s.xmin IS NOT NULL OR s.catalog_xmin IS NOT NULL
            UNION ALL
            SELECT 'prepared', p.gid, NULL, p.database::text, p.owner::text, '', '',
                   'prepared', p.prepared, NULL, p.transaction::text, NULL, NULL,
                   age(p.transaction), ''
            FROM pg_prepared_xacts p
        ) h
        ORDER BY h.age DESC NULLS LAST
        LIMIT %(limit)s
        """,
    ),
)

# Vacuums running now, VACUUM FULL included (it reports as CLUSTER does). Relations of
# other databases cannot be named from here and are shown by OID.
_VACUUM_PROGRESS = """
        SELECT p.pid, p.datname::text AS database, p.relid::bigint AS relid,
               CASE WHEN p.datname = current_database() THEN p.relid::regclass::text
                    ELSE 'oid ' || p.relid::text END AS relation,
               CASE WHEN a.backend_type = 'autovacuum worker' THEN 'autovacuum'
                    ELSE 'VACUUM' END AS command,
               p.phase, p.heap_blks_total, p.heap_blks_scanned, p.heap_blks_vacuumed,
               p.index_vacuum_count,
               {dead_items},
               a.xact_start AS started
        FROM pg_stat_progress_vacuum p
        LEFT JOIN pg_stat_activity a ON a.pid = p.pid
        UNION ALL
        SELECT c.pid, c.datname::text, c.relid::bigint,
               CASE WHEN c.datname = current_database() THEN c.relid::regclass::text
                    ELSE 'oid ' || c.relid::text END,
               c.command, c.phase, c.heap_blks_total, c.heap_blks_scanned, NULL, NULL,
               NULL, NULL, NULL, NULL, NULL, NULL, NULL, a.xact_start
        FROM pg_stat_progress_cluster c
        LEFT JOIN pg_stat_activity a ON a.pid = c.pid
        """
VACUUM_PROGRESS = _query(
    "vacuum_progress",
    *_variants(
        _VACUUM_PROGRESS,
        dead_items={
            130000: """-- max_dead_tuples and num_dead_tuples are gone from 17: read through
               -- to_jsonb so that this variant still runs on newer servers.
               (to_jsonb(p) ->> 'max_dead_tuples')::bigint AS max_dead_tuples,
               (to_jsonb(p) ->> 'num_dead_tuples')::bigint AS num_dead_tuples,
               NULL::bigint AS max_dead_tuple_bytes, NULL::bigint AS dead_tuple_bytes,
               NULL::bigint AS num_dead_item_ids,
               NULL::bigint AS indexes_total, NULL::bigint AS indexes_processed""",
            # 17 measures the dead-item store in bytes and counts index passes.
            170000: """NULL::bigint AS max_dead_tuples, NULL::bigint AS num_dead_tuples,
               p.max_dead_tuple_bytes, p.dead_tuple_bytes, p.num_dead_item_ids,
               p.indexes_total, p.indexes_processed""",
        },
    ),
)

# One row per index of the tables listed in TABLES, with what duplicate detection compares:
# key_columns (indnkeyatts, indkey with the INCLUDE columns, operator classes, collations,
# options: one text rather than five, for a cheaper transfer), expressions and predicate
# as stored node trees (never deparsed: deparsing would look the relation up).
# Which indexes back a constraint is read apart (CONSTRAINT_INDEXES), less often.
_INDEXES = """
        SELECT x.indexrelid::bigint AS oid, n.nspname AS schema, t.relname AS table,
               x.indrelid::bigint AS table_oid, ic.relname AS index, am.amname::text AS method,
               ic.relpages::bigint AS pages,
               pg_stat_get_numscans(x.indexrelid) AS idx_scan,
               pg_stat_get_tuples_returned(x.indexrelid) AS idx_tup_read,
               pg_stat_get_tuples_fetched(x.indexrelid) AS idx_tup_fetch,
               {last_idx_scan} AS last_idx_scan,
               x.indisunique AS is_unique, x.indisprimary AS is_primary,
               x.indisexclusion AS is_exclusion,
               x.indisvalid AS is_valid, x.indisready AS is_ready,
               concat_ws(' / ', x.indnkeyatts, x.indkey, x.indclass, x.indcollation,
                         x.indoption) AS key_columns,
               x.indexprs::text AS exprs, x.indpred::text AS pred,
               {nulls_not_distinct} AS nulls_not_distinct
        FROM pg_index x
        JOIN pg_class ic ON ic.oid = x.indexrelid
        JOIN pg_class t ON t.oid = x.indrelid
        JOIN pg_namespace n ON n.oid = t.relnamespace
        JOIN pg_am am ON am.oid = ic.relam
        WHERE t.relkind IN ('r', 'm') AND ic.relkind = 'i'
          AND {user_schemas}
          {only}
        """
INDEXES, INDEXES_SOME = _listing(
    "indexes",
    "x.indexrelid",
    *_variants(
        _INDEXES,
        # The time of the last index scan appeared in 16.
        last_idx_scan={130000: "NULL::timestamptz", 160000: "pg_stat_get_lastscan(x.indexrelid)"},
        # NULLS NOT DISTINCT appeared in 15.
        nulls_not_distinct={130000: "false", 150000: "x.indnullsnotdistinct"},
    ),
)

# The indexes named by a constraint (pg_constraint.conindid): primary key, unique,
# exclusion, or the referenced side of a foreign key. A scan of all of pg_constraint, and
# constraints rarely change: read now and then (catalog.SCAN_EVERY), not on every refresh.
# Duplicates (an index referenced by several foreign keys) are left to the caller.
CONSTRAINT_INDEXES = _query(
    "constraint_indexes",
    (
        130000,
        """
        SELECT conindid::bigint AS oid FROM pg_constraint WHERE conindid <> 0
        """,
    ),
)

# Exact sizes of a few indexes (those on screen); an index locked or queued for ACCESS
# EXCLUSIVE (REINDEX, DROP INDEX) is reported locked and not sized.
INDEX_SIZES = _query(
    "index_sizes",
    (
        130000,
        f"""
        WITH locked AS (
            SELECT DISTINCT l.relation
            FROM pg_locks l
            WHERE {_ACCESS_EXCLUSIVE}
        ), target AS (
            SELECT c.oid, EXISTS (SELECT FROM locked k WHERE k.relation = c.oid) AS locked
            FROM pg_class c
            WHERE c.oid = ANY(%(oids)s::oid[])
        )
        SELECT oid::bigint AS oid, locked,
               CASE WHEN NOT locked THEN pg_relation_size(oid) END AS bytes
        FROM target
        """,
    ),
)

# The databases the catalog tabs can switch to, with their sizes. pg_database_size() takes
# no lock but reads the size of every file: run only when the switcher opens. It needs
# CONNECT on the database or pg_read_all_stats.
DATABASES = _query(
    "databases",
    (
        130000,
        """
        SELECT d.datname::text AS name,
               d.datname = current_database() AS current,
               has_database_privilege(d.oid, 'CONNECT') AS can_connect,
               CASE WHEN has_database_privilege(d.oid, 'CONNECT')
                         OR pg_has_role('pg_read_all_stats', 'USAGE')
                    THEN pg_database_size(d.oid) END AS bytes
        FROM pg_database d
        WHERE d.datallowconn AND NOT d.datistemplate
        ORDER BY d.datname
        """,
    ),
)


# -- Health ------------------------------------------------------------------------------------
# Read at the Health checks' slow cadence, never on every refresh. One row about the whole
# cluster: the oldest transaction ID and multixact of every database (each database's
# datfrozenxid, readable from any database), WAL archiving, checkpoints, the summed
# statistics of every database, and on a standby how far replay is behind.
_CHECKPOINTS = {
    130000: "(SELECT checkpoints_timed FROM pg_stat_bgwriter)::bigint AS checkpoints_timed,"
    " (SELECT checkpoints_req FROM pg_stat_bgwriter)::bigint AS checkpoints_requested",
    # 17 moved the checkpoint counters to pg_stat_checkpointer.
    170000: "(SELECT num_timed FROM pg_stat_checkpointer)::bigint AS checkpoints_timed,"
    " (SELECT num_requested FROM pg_stat_checkpointer)::bigint AS checkpoints_requested",
}
"""Timed and requested checkpoints so far."""

_REPLAY_DELAY = {
    130000: """CASE WHEN pg_is_in_recovery() THEN
                   CASE WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn()
                        THEN 0::float8
                        ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8
                   END
               END AS replay_delay_s"""
}
"""On a standby, how long ago the last transaction replayed was committed (0 when all it
received is replayed); NULL on a primary."""

_HEALTH_CLUSTER = """
        SELECT now() AS collected_at, pg_is_in_recovery() AS in_recovery,
               x.datname::text AS xid_database, age(x.datfrozenxid)::bigint AS xid_age,
               m.datname::text AS mxid_database, mxid_age(m.datminmxid)::bigint AS mxid_age,
               current_setting('autovacuum_freeze_max_age')::bigint AS freeze_max_age,
               current_setting('autovacuum_multixact_freeze_max_age')::bigint
                   AS multixact_freeze_max_age,
               pg_size_bytes(current_setting('max_wal_size')) AS max_wal_size,
               current_setting('archive_mode') AS archive_mode,
               ar.archived_count, ar.failed_count, ar.last_archived_wal,
               ar.last_archived_time, ar.last_failed_wal, ar.last_failed_time,
               {checkpoints},
               st.xact_commit, st.xact_rollback, st.deadlocks, st.temp_bytes,
               st.blks_hit, st.blks_read,
               {replay_delay}
        FROM pg_stat_archiver ar
        CROSS JOIN (
            SELECT coalesce(sum(xact_commit), 0)::bigint AS xact_commit,
                   coalesce(sum(xact_rollback), 0)::bigint AS xact_rollback,
                   coalesce(sum(deadlocks), 0)::bigint AS deadlocks,
                   coalesce(sum(temp_bytes), 0)::bigint AS temp_bytes,
                   coalesce(sum(blks_hit), 0)::bigint AS blks_hit,
                   coalesce(sum(blks_read), 0)::bigint AS blks_read
            FROM pg_stat_database
        ) st
        LEFT JOIN LATERAL (
            SELECT datname, datfrozenxid FROM pg_database ORDER BY age(datfrozenxid) DESC LIMIT 1
        ) x ON true
        LEFT JOIN LATERAL (
            SELECT datname, datminmxid FROM pg_database
            ORDER BY mxid_age(datminmxid) DESC LIMIT 1
        ) m ON true
        """
HEALTH_CLUSTER = _query(
    "health_cluster",
    *_variants(
        _HEALTH_CLUSTER,
        checkpoints=_CHECKPOINTS,
        replay_delay=_REPLAY_DELAY,
    ),
)

# Where this server's WAL is now: written on a primary, replayed on a standby.
_WAL_POSITION = (
    "CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END"
)

# Replication slots and what each keeps (on a standby, from the position replayed); the
# Health check and the Replication tab read the same rows.
HEALTH_SLOTS = _query(
    "health_slots",
    (
        130000,
        f"""
        SELECT s.slot_name::text AS name, s.slot_type AS kind, s.database::text AS database,
               s.plugin::text AS plugin, s.active, s.active_pid, s.wal_status,
               pg_wal_lsn_diff({_WAL_POSITION}, s.restart_lsn)::bigint AS retained_bytes,
               s.safe_wal_size::bigint AS safe_wal_size,
               s.xmin::text AS xmin, s.catalog_xmin::text AS catalog_xmin
        FROM pg_replication_slots s
        ORDER BY retained_bytes DESC NULLS LAST, s.slot_name
        """,
    ),
)

# The standbys this server streams to, and how far behind each one is: positions as bytes
# behind this server's, lags as seconds. The lag columns are NULL for a role without
# pg_read_all_stats (and once a standby caught up with an idle primary).
HEALTH_STANDBYS = _query(
    "health_standbys",
    (
        130000,
        f"""
        SELECT r.pid, coalesce(r.application_name, '') AS application_name,
               host(r.client_addr) AS client_addr, r.state, r.sync_state,
               pg_wal_lsn_diff({_WAL_POSITION}, r.sent_lsn)::bigint AS sent_lag_bytes,
               pg_wal_lsn_diff({_WAL_POSITION}, r.write_lsn)::bigint AS write_lag_bytes,
               pg_wal_lsn_diff({_WAL_POSITION}, r.flush_lsn)::bigint AS flush_lag_bytes,
               pg_wal_lsn_diff({_WAL_POSITION}, r.replay_lsn)::bigint AS replay_lag_bytes,
               extract(epoch FROM r.write_lag)::float8 AS write_lag_s,
               extract(epoch FROM r.flush_lag)::float8 AS flush_lag_s,
               extract(epoch FROM r.replay_lag)::float8 AS replay_lag_s
        FROM pg_stat_replication r
        ORDER BY replay_lag_s DESC NULLS LAST
        """,
    ),
)

# Who uses a slot now (no row: it is gone), after a drop that found it active.
SLOT_USER = _query(
    "slot_user",
    (
        130000,
        """
        SELECT active_pid FROM pg_replication_slots WHERE slot_name = %(slot)s
        """,
    ),
)

# The WAL, the archiver, the checkpoints and, on a standby, its WAL receiver: what the
# Replication tab shows around its rows. Listing the WAL directory needs EXECUTE on
# pg_ls_waldir (pg_monitor has it): said here, read by REPLICATION_WALDIR.
REPLICATION_SERVER = _query(
    "replication_server",
    *_variants(
        f"""
        SELECT now() AS collected_at, pg_is_in_recovery() AS in_recovery,
               ({_WAL_POSITION})::text AS wal_lsn,
               pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()
                                    ELSE pg_current_wal_insert_lsn() END, '0/0')::numeric
                   AS wal_position,
               CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() END
                   AS replay_paused,
               pg_size_bytes(current_setting('max_wal_size')) AS max_wal_size,
               pg_size_bytes(current_setting('wal_keep_size')) AS wal_keep_size,
               pg_size_bytes(current_setting('wal_segment_size')) AS wal_segment_size,
               has_function_privilege('pg_catalog.pg_ls_waldir()', 'EXECUTE')
                   AND has_function_privilege('pg_catalog.pg_ls_archive_statusdir()', 'EXECUTE')
                   AS may_list_waldir,
               current_setting('archive_mode') AS archive_mode,
               ar.archived_count, ar.failed_count, ar.last_archived_wal,
               ar.last_archived_time, ar.last_failed_wal, ar.last_failed_time,
               {{checkpoints}},
               CASE WHEN has_function_privilege('pg_catalog.pg_control_checkpoint()', 'EXECUTE')
                    THEN (SELECT checkpoint_time FROM pg_control_checkpoint())
               END AS last_checkpoint_time,
               {{may_checkpoint}} AS may_checkpoint,
               w.pid AS receiver_pid, w.status AS receiver_status,
               w.sender_host, w.sender_port, w.flushed_lsn::text AS received_lsn,
               pg_last_wal_replay_lsn()::text AS replayed_lsn,
               {{replay_delay}}
        FROM pg_stat_archiver ar
        LEFT JOIN pg_stat_wal_receiver w ON true
        """,
        checkpoints=_CHECKPOINTS,
        replay_delay=_REPLAY_DELAY,
        may_checkpoint={
            130000: "(SELECT rolsuper FROM pg_roles WHERE rolname = current_user)",
            # 15 lets members of pg_checkpoint run CHECKPOINT.
            150000: "((SELECT rolsuper FROM pg_roles WHERE rolname = current_user)"
            " OR pg_has_role('pg_checkpoint', 'USAGE'))",
        },
    ),
)

# The WAL directory's size, its segments and the segments waiting to be archived (one
# directory listing each: at the tab's slow cadence, only where may_list_waldir).
REPLICATION_WALDIR = _query(
    "replication_waldir",
    (
        130000,
        """
        SELECT coalesce(sum(w.size), 0)::bigint AS dir_bytes,
               count(*) FILTER (WHERE w.name ~ '^[0-9A-F]{24}$')::bigint AS segments,
               (SELECT count(*) FROM pg_ls_archive_statusdir() a
                WHERE right(a.name, 6) = '.ready')::bigint AS archive_ready
        FROM pg_ls_waldir() w
        """,
    ),
)

# Every database of the cluster, largest first, with the recovery conflicts it had (a
# standby cancels queries that conflict with replay). A database's size is one directory
# walk: read at the WAL directory's slow cadence, only where the server lets the role
# (CONNECT on it, or pg_read_all_stats), and no lock is taken. Names beginning with pg_ are
# reserved: no user can create a role that shadows pg_read_all_stats.
REPLICATION_DATABASES = _query(
    "replication_databases",
    *_variants(
        """
        SELECT d.datname AS name, r.readable,
               CASE WHEN r.readable THEN pg_database_size(d.oid) END AS size_bytes,
               c.confl_tablespace AS tablespace, c.confl_lock AS lock,
               c.confl_snapshot AS snapshot, c.confl_bufferpin AS bufferpin,
               c.confl_deadlock AS deadlock, {logical_slot} AS logical_slot
        FROM pg_database d
        CROSS JOIN LATERAL (
            SELECT has_database_privilege(d.oid, 'CONNECT')
                   OR pg_has_role('pg_read_all_stats', 'USAGE') AS readable) r
        LEFT JOIN pg_stat_database_conflicts c ON c.datid = d.oid
        ORDER BY size_bytes DESC NULLS LAST, d.datname
        """,
        # 16 cancels logical slots' readers on a standby too.
        logical_slot={130000: "NULL::bigint", 160000: "c.confl_active_logicalslot"},
    ),
)

# Invalid indexes of the connected database, but those being built right now (an index
# built CONCURRENTLY is invalid until it is done).
HEALTH_INVALID_INDEXES = _query(
    "health_invalid_indexes",
    (
        130000,
        """
        SELECT i.indexrelid::bigint AS oid, n.nspname AS schema, c.relname AS name,
               t.relname AS "table"
        FROM pg_index i
        JOIN pg_class c ON c.oid = i.indexrelid
        JOIN pg_class t ON t.oid = i.indrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE NOT i.indisvalid
          AND NOT EXISTS (
              SELECT FROM pg_stat_progress_create_index p
              WHERE p.datname = current_database()
                AND (p.index_relid = i.indexrelid OR p.relid = i.indrelid))
        ORDER BY n.nspname, c.relname
        LIMIT %(limit)s
        """,
    ),
)

# The tables of the connected database with the most dead rows for their size (one
# statistics call per table): the candidates whose autovacuum trigger is checked exactly
# (VACUUM_TABLES_SOME and catalog.rules.autovacuum_due). Tables being vacuumed now are
# being dealt with.
HEALTH_DEAD_CANDIDATES = _query(
    "health_dead_candidates",
    (
        130000,
        f"""
        SELECT c.oid::bigint AS oid
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        CROSS JOIN LATERAL (SELECT pg_stat_get_dead_tuples(c.oid)::float8 AS dead) d
        WHERE c.relkind IN ('r', 'm') AND {_USER_SCHEMAS}
          AND d.dead > 0
          AND NOT EXISTS (
              SELECT FROM pg_stat_progress_vacuum p
              WHERE p.relid = c.oid AND p.datname = current_database())
        ORDER BY d.dead / (current_setting('autovacuum_vacuum_threshold')::float8
                           + current_setting('autovacuum_vacuum_scale_factor')::float8
                             * greatest(c.reltuples, 0)::float8) DESC
        LIMIT %(limit)s
        """,
    ),
)


# -- PgBouncer ---------------------------------------------------------------------------------
# The admin console of a PgBouncer (its database ``pgbouncer``) knows only its own commands,
# sent through the simple query protocol one at a time: no parameters, no pipeline, no
# pg_catalog. Each is answered from PgBouncer's memory. They are not PostgreSQL statements,
# so they have no server-version variants (and no place in ``REGISTRY``); columns are read
# by name, as PgBouncer versions add some.
PGBOUNCER_POOLS = "SHOW POOLS"
PGBOUNCER_DATABASES = "SHOW DATABASES"
PGBOUNCER_STATS = "SHOW STATS"
PGBOUNCER_CLIENTS = "SHOW CLIENTS"
PGBOUNCER_SERVERS = "SHOW SERVERS"

# The servers view's figures of one server: one cheap statement per refresh of a server not
# in view (its server time is in README).
SERVER_FIGURES = _query(
    "server_figures",
    (
        130000,
        """
        SELECT current_setting('server_version') AS version,
               pg_is_in_recovery() AS standby,
               current_setting('max_connections')::int AS max_connections,
               a.connections, a.active, a.waiting,
               (SELECT sum(xact_commit + xact_rollback)::bigint FROM pg_stat_database) AS xacts,
               CASE WHEN NOT pg_is_in_recovery() THEN NULL
                    WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0.0
                    ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8
               END AS lag_s,
               w.sender_host AS upstream_host, w.sender_port AS upstream_port,
               (SELECT count(*) FROM pg_stat_replication)::int AS standbys
        FROM (SELECT count(*) FILTER (WHERE backend_type = 'client backend')::int
                         AS connections,
                     count(*) FILTER (WHERE state = 'active' AND backend_type = 'client backend'
                                      AND pid <> pg_backend_pid())::int AS active,
                     count(*) FILTER (WHERE wait_event_type = 'Lock')::int AS waiting
              FROM pg_stat_activity) a
        LEFT JOIN pg_stat_wal_receiver w ON true
        """,
    ),
)

# The standbys a primary streams to, by the address they connect from (none: a socket).
STANDBY_ADDRESSES = _query(
    "standby_addresses",
    (
        130000,
        """
        SELECT DISTINCT host(client_addr) AS address, coalesce(application_name, '') AS name
        FROM pg_stat_replication
        ORDER BY 1, 2
        """,
    ),
)
