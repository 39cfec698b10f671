"""Every variant of every query runs on the real servers, with the same columns."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import psycopg
import pytest

from pgtop import pg, sql

PARAMS: dict[str, dict[str, Any]] = {
    "session_setup": {},
    "server_figures": {},
    "standby_addresses": {},
    "probe": {},
    "server_counters": {"own_pids": [0]},
    "activity": {"own_pids": [0], "query_limit": 100},
    "activity_watched": {"query_limit": 100, "watched": [0, 1]},
    "activity_changes": {
        "own_pids": [0],
        "query_limit": 100,
        "known": [0, 1],
        "watched": [1],
        "since": datetime.now(timezone.utc),
        "limit": 1,
    },
    "backend_query": {"pid": 0, "backend_start": datetime.now(timezone.utc), "limit": 10},
    "database_encodings": {},
    "backend_locks": {"pid": 0},
    "session_gone": {"pid": 0, "backend_start": datetime.now(timezone.utc), "query_start": None},
    "relation_identity": {"oid": 0},
    "lock_holders": {"oid": 0, "conflicts": ["ShareLock"], "own_pids": [0]},
    "reindex_before": {"table_oid": 1259},
    "reindex_leftovers": {"tables": [1259], "before": [0], "xid_before": 0},
    "leftover_still_invalid": {"oid": 0, "schema": "public", "name": "x"},
    "action_progress": {"pid": 0},
    "session_progress": {"pid": 0},
    "target_role": {"role": "postgres"},
    "lock_waits": {"pids": [0]},
    "statements_extension": {},
    "explain_setup": {"statement_timeout": "3000", "lock_timeout": "200"},
    "explain_precheck": {"role": "postgres"},
    "explain_search_path": {"search_path": "pg_catalog, pg_temp"},
    "explain_parameters": {"name": "pgtop_planned_0"},
    "explain_reach": {"function": "pgtop_reach", "limit": 10},
    "explain_plan_settings": {},
    "catalog_read": {},
    "catalog_header": {},
    "database_pages": {},
    "tables": {},
    "tables_some": {"oids": [0, 1259], "after": 2**31},
    "size_lock_timeout": {"lock_timeout": "50ms"},
    "table_sizes": {"oids": [0, 1259]},
    "locked_relations": {},
    "autovacuum_settings": {},
    "vacuum_tables": {},
    "vacuum_tables_some": {"oids": [0, 1259], "after": 2**31},
    "xmin_holders": {"own_pids": [0], "query_limit": 100, "limit": 20},
    "health_cluster": {},
    "health_slots": {},
    "health_standbys": {},
    "replication_server": {},
    "replication_waldir": {},
    "replication_databases": {},
    "slot_user": {"slot": "x"},
    "health_invalid_indexes": {"limit": 50},
    "health_dead_candidates": {"limit": 50},
    "vacuum_progress": {},
    "indexes": {},
    "indexes_some": {"oids": [0, 2662], "after": 2**31},
    "constraint_indexes": {},
    "index_sizes": {"oids": [0, 2662]},
    "databases": {},
}


RETIRED = {
    ("health_cluster", 130000): 170000,
    ("replication_server", 130000): 170000,
    ("replication_server", 150000): 170000,
}
"""Variants that read what a later server removed (pg_stat_bgwriter's checkpoint counters
moved to pg_stat_checkpointer in 17): not run from that version on."""


@pytest.mark.parametrize("name", sorted(sql.REGISTRY))
def test_every_variant_runs_and_keeps_its_columns(dsn: str, name: str) -> None:
    query = sql.REGISTRY[name]
    assert name in PARAMS, f"add sample parameters for {name} to this test"
    # In pgtop's own session settings: names resolve through pg_catalog alone.
    options = pg.startup_options(dsn, pg.FIXED_SETTINGS)
    with psycopg.connect(dsn, autocommit=True, options=options) as conn:
        version = conn.info.server_version
        columns = []
        for minimum, text in query.variants:
            if minimum > version or version >= RETIRED.get((name, minimum), version + 1):
                continue
            cur = conn.execute(text, PARAMS[name])
            assert cur.description is not None
            columns.append([column.name for column in cur.description])
        assert columns, f"no variant of {name} runs on {version}"
        assert all(c == columns[0] for c in columns), columns
