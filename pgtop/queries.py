"""Every SQL statement pgtop sends, named once, with variants by server version.

A query is a list of ``(minimum server_version_num, sql)`` pairs; ``Query.sql(version)``
returns the newest variant the server supports. Callers never test versions themselves.
Columns keep the same names in every variant (``NULL AS col`` where a server lacks one).
Values are always bound parameters; identifiers in utility statements are built with
``psycopg.sql.Identifier`` in the module that runs them, never here.
"""

from __future__ import annotations

from dataclasses import dataclass

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


# Session settings for the monitoring connection: every statement it runs is bounded.
SESSION_SETUP = _query(
    "session_setup",
    (
        130000,
        """
        SELECT set_config('statement_timeout', %(statement_timeout)s, false),
               set_config('lock_timeout', %(lock_timeout)s, false),
               set_config('idle_in_transaction_session_timeout', '60s', false)
        """,
    ),
)

# What this role may see and use. pg_has_role() is true for superusers, so membership
# flags mean "has the power", not "was granted the role". shared_preload_libraries is
# readable only with pg_read_all_settings: without it, whether pg_stat_statements is
# preloaded is unknown (NULL), not an error.
PROBE = _query(
    "probe",
    (
        130000,
        """
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
               current_setting('max_connections')::int AS max_connections,
               current_setting('superuser_reserved_connections')::int AS reserved_connections,
               pg_postmaster_start_time() AS started_at
        FROM pg_roles r
        WHERE r.rolname = current_user
        """,
    ),
    (
        # reserved_connections (for pg_use_reserved_connections) appeared in 16.
        160000,
        """
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
               current_setting('max_connections')::int AS max_connections,
               current_setting('superuser_reserved_connections')::int
                   + current_setting('reserved_connections')::int AS reserved_connections,
               pg_postmaster_start_time() AS started_at
        FROM pg_roles r
        WHERE r.rolname = current_user
        """,
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
               coalesce(sum(blks_read), 0)::bigint AS blks_read
        FROM pg_stat_database
        """,
    ),
)

# One row per backend but pgtop's own. pg_blocking_pids() is costly (it inspects the
# whole lock table), so it is called only for backends waiting on a heavyweight lock;
# the CASE evaluates it for those rows alone. The query text is clipped server-side to
# %(query_limit)s characters so that huge texts never cross the wire on every poll.
ACTIVITY = _query(
    "activity",
    (
        130000,
        """
        SELECT a.pid, a.datname AS database, a.usename AS "user",
               coalesce(a.application_name, '') AS application_name,
               host(a.client_addr) AS client_addr, a.client_hostname, a.client_port,
               coalesce(a.backend_type, '') AS backend_type, a.state,
               a.wait_event_type, a.wait_event,
               a.backend_start, a.xact_start, a.query_start, a.state_change,
               a.backend_xid::text AS backend_xid, a.backend_xmin::text AS backend_xmin,
               a.leader_pid, NULL::bigint AS query_id,
               CASE WHEN a.wait_event_type = 'Lock' THEN pg_blocking_pids(a.pid) END
                   AS blocked_by,
               CASE WHEN %(query_limit)s::int IS NULL THEN coalesce(a.query, '')
                    ELSE left(coalesce(a.query, ''), %(query_limit)s::int) END AS query
        FROM pg_stat_activity a
        WHERE a.pid <> ALL(%(own_pids)s::int[])
        """,
    ),
    (
        # query_id appeared in 14.
        140000,
        """
        SELECT a.pid, a.datname AS database, a.usename AS "user",
               coalesce(a.application_name, '') AS application_name,
               host(a.client_addr) AS client_addr, a.client_hostname, a.client_port,
               coalesce(a.backend_type, '') AS backend_type, a.state,
               a.wait_event_type, a.wait_event,
               a.backend_start, a.xact_start, a.query_start, a.state_change,
               a.backend_xid::text AS backend_xid, a.backend_xmin::text AS backend_xmin,
               a.leader_pid, a.query_id,
               CASE WHEN a.wait_event_type = 'Lock' THEN pg_blocking_pids(a.pid) END
                   AS blocked_by,
               CASE WHEN %(query_limit)s::int IS NULL THEN coalesce(a.query, '')
                    ELSE left(coalesce(a.query, ''), %(query_limit)s::int) END AS query
        FROM pg_stat_activity a
        WHERE a.pid <> ALL(%(own_pids)s::int[])
        """,
    ),
)

# One backend's full query text, for the detail view.
BACKEND_QUERY = _query(
    "backend_query",
    (
        130000,
        """
        SELECT coalesce(query, '') AS query
        FROM pg_stat_activity
        WHERE pid = %(pid)s AND backend_start = %(backend_start)s
        """,
    ),
)

# The locks one backend holds or waits for. regclass output needs no lock; relations of
# other databases cannot be named from here and are shown by OID.
BACKEND_LOCKS = _query(
    "backend_locks",
    (
        130000,
        """
        SELECT l.locktype, l.mode, l.granted,
               CASE WHEN l.relation IS NULL THEN NULL
                    WHEN l.database = (SELECT oid FROM pg_database
                                       WHERE datname = current_database())
                    THEN l.relation::regclass::text
                    ELSE 'oid ' || l.relation::text END AS relation,
               l.transactionid::text AS transactionid, l.virtualxid,
               l.classid::int AS classid, l.objid::bigint AS objid,
               NULL::timestamptz AS waitstart
        FROM pg_locks l
        WHERE l.pid = %(pid)s
        ORDER BY l.granted, l.locktype, relation NULLS LAST
        """,
    ),
    (
        # pg_locks.waitstart appeared in 14.
        140000,
        """
        SELECT l.locktype, l.mode, l.granted,
               CASE WHEN l.relation IS NULL THEN NULL
                    WHEN l.database = (SELECT oid FROM pg_database
                                       WHERE datname = current_database())
                    THEN l.relation::regclass::text
                    ELSE 'oid ' || l.relation::text END AS relation,
               l.transactionid::text AS transactionid, l.virtualxid,
               l.classid::int AS classid, l.objid::bigint AS objid,
               l.waitstart
        FROM pg_locks l
        WHERE l.pid = %(pid)s
        ORDER BY l.granted, l.locktype, relation NULLS LAST
        """,
    ),
)
