"""Every query runs on every supported server: a variant exists for 13 to 18."""

from __future__ import annotations

import pytest

from pgtop import sql

SUPPORTED = [130000, 140000, 150000, 160000, 170000, 180000]


@pytest.mark.parametrize("name", sorted(sql.REGISTRY))
@pytest.mark.parametrize("version", SUPPORTED)
def test_every_query_has_a_variant_for_every_supported_major(name: str, version: int) -> None:
    assert sql.REGISTRY[name].sql(version).strip()


def test_the_newest_applicable_variant_is_chosen() -> None:
    activity = sql.ACTIVITY
    assert "NULL::bigint AS query_id" in activity.sql(130012)
    assert "a.query_id" in activity.sql(140000)
    assert "a.query_id" in activity.sql(180001)


def test_older_servers_are_refused_with_a_reason() -> None:
    with pytest.raises(sql.UnsupportedServerError, match="PostgreSQL 13 or newer"):
        sql.ACTIVITY.sql(120000)
