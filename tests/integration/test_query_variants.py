"""Every variant of every query runs on the real servers, with the same columns."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import psycopg
import pytest

from pgtop import queries

PARAMS: dict[str, dict[str, Any]] = {
    "session_setup": {"statement_timeout": "5000", "lock_timeout": "500"},
    "probe": {},
    "server_counters": {},
    "activity": {"own_pids": [0], "query_limit": 100},
    "backend_query": {"pid": 0, "backend_start": datetime.now(timezone.utc)},
    "backend_locks": {"pid": 0},
}


@pytest.mark.parametrize("name", sorted(queries.REGISTRY))
def test_every_variant_runs_and_keeps_its_columns(dsn: str, name: str) -> None:
    query = queries.REGISTRY[name]
    assert name in PARAMS, f"add sample parameters for {name} to this test"
    with psycopg.connect(dsn, autocommit=True) as conn:
        version = conn.info.server_version
        columns = []
        for minimum, sql in query.variants:
            if minimum > version:
                continue
            cur = conn.execute(sql, PARAMS[name])
            assert cur.description is not None
            columns.append([column.name for column in cur.description])
        assert columns, f"no variant of {name} runs on {version}"
        assert all(c == columns[0] for c in columns), columns
