"""Collectors and sources on real servers, made as pgtop makes them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from pgtop import pg
from pgtop.collectors.activity import WHOLE_TEXT_LIMIT
from pgtop.collectors.base import CollectorContext, Connection
from pgtop.collectors.statements import TEXT_LIMIT, StatementsSnapshot, fetch_texts
from pgtop.config import Settings
from pgtop.model import Capabilities
from pgtop.source import LiveSource
from pgtop.tabs import collectors


def context(capabilities: Capabilities, conninfo: str = "") -> CollectorContext:
    """What a source gives its collectors: ``conninfo`` is where other databases are."""

    async def connect(database: str) -> Connection:
        return await pg.connect(make_conninfo(conninfo, dbname=database))

    return CollectorContext(capabilities, connect)


async def texts_of(conn: Connection, snapshot: StatementsSnapshot) -> dict[int, str]:
    """The text of every statement of ``snapshot``, by queryid."""
    ids = [s.queryid for s in snapshot.current.statements.values() if s.queryid is not None]
    return await fetch_texts(
        conn, snapshot.extension_version, snapshot.extension_schema, ids, TEXT_LIMIT
    )


@asynccontextmanager
async def once_source(conninfo: str) -> AsyncIterator[LiveSource]:
    """A source as ``--once`` makes it: read-only, whole texts."""
    source = LiveSource(
        Settings(conninfo=conninfo, read_only=True),
        collectors=collectors(),
        query_limit=WHOLE_TEXT_LIMIT + 1,
    )
    try:
        yield source
    finally:
        await source.close()


@asynccontextmanager
async def monitor(conninfo: str) -> AsyncIterator[tuple[Connection, Capabilities]]:
    """pgtop's monitoring connection and what it probed."""
    conn = await pg.connect(conninfo)
    try:
        yield conn, await pg.probe(conn)
    finally:
        await conn.close()


def dbname(conninfo: str) -> str:
    """The database a conninfo names."""
    return str(conninfo_to_dict(conninfo)["dbname"])
