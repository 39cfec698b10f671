"""Opening connections the way psql does, safely for a struggling server.

Whatever the user did not give is left to libpq: PG* variables, service files and
``.pgpass`` all work. pgtop adds only defaults the user did not set itself:
``application_name=pgtop``, a connect timeout, TCP keepalives and a TCP user timeout.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import conninfo as pq_conninfo
from psycopg._encodings import pg2pyenc
from psycopg.adapt import Loader

from pgtop import sql
from pgtop.model import Capabilities
from pgtop.text import redact_text

APPLICATION_NAME = "pgtop"
DEFAULT_CONNECT_TIMEOUT = 5
STATEMENT_TIMEOUT_MS = 5000
LOCK_TIMEOUT_MS = 500
IDLE_IN_TRANSACTION_MS = 60_000


class ConnectError(Exception):
    """A connection could not be opened. ``str()`` is one line for the user."""

    def __init__(
        self, message: str, exit_code: int, *, transient: bool = False, pooler: bool = False
    ) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.transient = transient
        """The server may accept a retry soon (starting up, shutting down, restarting)."""
        self.password_needed = "no password supplied" in message
        """libpq gave up because it had no password to send: a prompt may help."""
        self.pooler = pooler
        """A PgBouncer answered, not PostgreSQL: its admin console may be read instead
        (``connect_console``)."""


EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_AUTH = 4
EXIT_BUSY = 5
EXIT_OUTPUT = 6

# Keywords that switch a default off when the user gave them, in conninfo or environment.
_ENV_FOR = {
    "connect_timeout": "PGCONNECT_TIMEOUT",
    "keepalives": None,
    "keepalives_idle": None,
    "keepalives_interval": None,
    "keepalives_count": None,
    "tcp_user_timeout": None,
}


def build_conninfo(
    dsn: str | None = None,
    *,
    host: str | None = None,
    port: str | None = None,
    user: str | None = None,
    dbname: str | None = None,
) -> str:
    """Merge a conninfo string or URI with psql-style options (the options win).

    Raises:
        ConnectError: the string is not a valid conninfo or URI.
    """
    authority = _URI_AUTHORITY.match(dsn or "")
    if authority is not None and authority.group(1).count("@") > 1:
        # libpq takes the last "@" as the end of the user and password: the rest of a
        # password would become the host name and be echoed by every error.
        raise ConnectError(
            'invalid connection string: more than one "@" before the host; write an "@" '
            "in a user name or password as %40",
            EXIT_USAGE,
        )
    try:
        params: dict[str, Any] = pq_conninfo.conninfo_to_dict(dsn or "")
    except psycopg.ProgrammingError as exc:
        message = mask_fragments(first_line(exc))
        raise ConnectError(f"invalid connection string: {message}", EXIT_USAGE) from None
    for key, value in (("host", host), ("port", port), ("user", user), ("dbname", dbname)):
        if value is not None:
            params[key] = value
    return pq_conninfo.make_conninfo(**params)


_URI_AUTHORITY = re.compile(r"postgres(?:ql)?://([^/?#]*)", re.IGNORECASE)
_QUOTED = re.compile(r'"([^"]*)"')


def mask_fragments(message: str) -> str:
    """A libpq message about a connection string, with every quoted piece of the string
    masked but keyword names: libpq quotes the part it could not read, which can be (part
    of) a password, e.g. ``invalid percent-encoded token: "Secret%zz"`` or, for an unquoted
    ``password=a b``, ``missing "=" after "b"``.

    >>> mask_fragments('missing "=" after "b" in connection info string')
    'missing "=" after "***" in connection info string'
    >>> mask_fragments('invalid integer value "x" for connection option "port"')
    'invalid integer value "***" for connection option "port"'
    """

    def mask(match: re.Match[str]) -> str:
        fragment = match.group(1)
        return match.group(0) if fragment == "=" or fragment in _keywords() else '"***"'

    return _QUOTED.sub(mask, message)


_KEYWORDS: frozenset[str] | None = None


def _keywords() -> frozenset[str]:
    global _KEYWORDS
    if _KEYWORDS is None:
        from psycopg import pq

        _KEYWORDS = frozenset(option.keyword.decode() for option in pq.Conninfo.get_defaults()) - {
            "password"
        }
    return _KEYWORDS


def connection_kwargs(conninfo: str) -> dict[str, Any]:
    """The defaults pgtop adds to ``conninfo`` for its own connections."""
    given = pq_conninfo.conninfo_to_dict(conninfo)
    service_or_env = {k for k, env in _ENV_FOR.items() if env and os.environ.get(env)}
    # A fallback: an application_name the user gave (connection string, service file,
    # PGAPPNAME) wins; pgtop knows its own sessions by their pid.
    kwargs: dict[str, Any] = {"fallback_application_name": APPLICATION_NAME}
    if "connect_timeout" not in given and "connect_timeout" not in service_or_env:
        kwargs["connect_timeout"] = DEFAULT_CONNECT_TIMEOUT
    keepalive_keys = {"keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count"}
    if not keepalive_keys & given.keys():
        kwargs.update(keepalives=1, keepalives_idle=10, keepalives_interval=5, keepalives_count=3)
    if "tcp_user_timeout" not in given:
        kwargs["tcp_user_timeout"] = 20000
    return kwargs


def redact(conninfo: str) -> str:
    """A conninfo without its password, for display.

    >>> redact("host=db user=me password=secret")
    'user=me host=db'
    """
    try:
        params = pq_conninfo.conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError:
        return "<invalid connection string>"
    params.pop("password", None)
    return pq_conninfo.make_conninfo("", **params)


def describe(conn: psycopg.AsyncConnection[Any] | psycopg.Connection[Any]) -> str:
    """``user@host:port/dbname`` of a live connection (never a password)."""
    info = conn.info
    host = info.host
    if host.startswith("/"):
        host = f"[{host}]"
    return f"{info.user}@{host}:{info.port}/{info.dbname}"


# psycopg wraps libpq's text ("connection failed: connection to server at ... failed:
# FATAL:  ..."): every layer is stripped, the target is named by the caller.
_LIBPQ_PREFIXES = re.compile(
    r"^(?:connection (?:failed|is bad): |connection to server (?:at|on) .*?failed: "
    r"|(?:FATAL|ERROR):\s+)+"
)


def first_line(exc: BaseException) -> str:
    """The first meaningful line of an error, without libpq's prefixes."""
    text = str(exc).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    line = lines[0] if lines else type(exc).__name__
    return _LIBPQ_PREFIXES.sub("", line) or line


# libpq's words for a connection string or service it cannot use: bad usage, not a server
# that is down.
_USAGE_HINTS = (
    "invalid integer value",
    "invalid port number",
    "invalid connection option",
    "definition of service",
    "service file",
    "invalid sslmode value",
    "invalid gssencmode value",
    "invalid target_session_attrs value",
    "invalid load_balance_hosts value",
    "could not match",
)

_POOLER_REFUSAL = "unsupported startup parameter"

_SERVER_GONE_STATES = {"57P01", "57P02", "57P03", "08006", "08003", "08000", "08001"}


def classify(exc: BaseException, where: str, secrets: Sequence[str | None] = ()) -> ConnectError:
    """Turn a connection failure into one line and an exit code.

    Args:
        exc: what psycopg raised.
        where: a password-free description of the target, e.g. ``host:port``.
        secrets: passwords that must not appear in the message.
    """
    message = redact_text(first_line(exc), secrets)
    full = str(exc)
    sqlstate = getattr(exc, "sqlstate", None)
    lower = full.lower()
    if _POOLER_REFUSAL in lower:
        # PgBouncer's words for the startup options pgtop sends (PostgreSQL takes them):
        # a pooler, whose admin console pgtop reads without them.
        return ConnectError(f"{where}: {message}", EXIT_UNREACHABLE, pooler=True)
    if sqlstate is None and any(hint in lower for hint in _USAGE_HINTS):
        return ConnectError(f"{where}: {message}", EXIT_USAGE)
    if sqlstate == "53300" or "too many clients" in lower or "remaining connection slots" in lower:
        return ConnectError(
            f"{where}: the server has no free connection slots ({message}); superusers (and "
            "on PostgreSQL 16+ members of pg_use_reserved_connections) can still use the "
            "reserved ones",
            EXIT_BUSY,
            transient=True,
        )
    if (
        sqlstate in {"57P03", "57P01"}
        or "starting up" in lower
        or "shutting down" in lower
        or "in recovery mode" in lower
        or "not yet accepting connections" in lower
    ):
        return ConnectError(f"{where}: {message}", EXIT_BUSY, transient=True)
    if "password" in lower and ("no password supplied" in lower or "authentication" in lower):
        return ConnectError(f"{where}: {message}", EXIT_AUTH)
    if sqlstate in {"28000", "28P01", "3D000", "42501"} or any(
        hint in lower
        for hint in (
            "authentication failed",
            "does not exist",
            "no pg_hba.conf entry",
            "permission denied",
        )
    ):
        return ConnectError(f"{where}: {message}", EXIT_AUTH)
    if "ssl" in lower or "gssapi" in lower:
        return ConnectError(f"{where}: {message}", EXIT_UNREACHABLE)
    return ConnectError(f"{where}: {message}", EXIT_UNREACHABLE, transient=True)


def target(conninfo: str) -> str:
    """Where a conninfo points, for error messages: ``host:port/dbname``, no secrets."""
    try:
        params = pq_conninfo.conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError:
        return "server"
    if "service" in params and "host" not in params:
        return f"service {params['service']}"
    host = params.get("host") or os.environ.get("PGHOST") or "local socket"
    port = params.get("port") or os.environ.get("PGPORT") or "5432"
    dbname = params.get("dbname") or os.environ.get("PGDATABASE")
    where = f"{host}:{port}"
    return f"{where}/{dbname}" if dbname else where


def codec_of(encoding: str | None) -> str:
    """The Python codec of a PostgreSQL encoding name; UTF-8 where there is none (SQL_ASCII:
    bytes of unknown encoding, most often UTF-8).

    >>> codec_of("LATIN1"), codec_of("SQL_ASCII"), codec_of("MULE_INTERNAL"), codec_of(None)
    ('iso8859-1', 'utf-8', 'utf-8', 'utf-8')
    """
    if not encoding or encoding == "SQL_ASCII":
        return "utf-8"
    try:
        return pg2pyenc(encoding.encode())
    except psycopg.NotSupportedError:
        return "utf-8"


class _LenientText(Loader):
    """Decode text with the connection's codec, keeping every byte.

    The server sends texts without converting them (the client encoding is the database's):
    pg_stat_activity and pg_stat_statements hold texts from every database, each in its own
    encoding, and a SQL_ASCII database holds any bytes. A byte that does not decode becomes
    a lone surrogate (``surrogateescape``): shown as ``\\xNN``, and turned back into the same
    bytes by ``recode`` to read them as their own database's encoding.
    """

    def __init__(self, oid: int, context: Any = None) -> None:
        super().__init__(oid, context)
        connection = self.connection
        encoding = connection.info.parameter_status("client_encoding") if connection else None
        self._codec = codec_of(encoding)

    def load(self, data: Any) -> str:
        return bytes(data).decode(self._codec, errors="surrogateescape")


def recode(text: str, codec: str, source: str) -> str:
    """``text`` as loaded by ``codec`` (lossless), read again as the ``source`` codec,
    the encoding of the database it comes from; undecodable bytes stay lone surrogates.

    >>> recode("caf\\udce9", "utf-8", "iso8859-1"), recode("caf\\xe9", "iso8859-1", "utf-8")
    ('café', 'caf\\udce9')
    """
    if codec == source or text.isascii():
        return text
    raw = text.encode(codec, errors="surrogateescape")
    return raw.decode(source, errors="surrogateescape")


# Settings every pgtop connection relies on, sent in the startup packet. A value sent there
# by the client outranks what a database owner sets with ALTER DATABASE ... SET or a role
# with ALTER ROLE ... SET, and it is in force before pgtop's first statement:
# - search_path: names resolve to pg_catalog (then pgtop's own temporary objects), never to
#   an object another user created under a catalog name in a schema of theirs;
# - role: pgtop acts as the role it logged in as (a database setting ``role = 'app'`` would
#   make it act as ``app``);
# - DateStyle and IntervalStyle: the only ones psycopg can read;
# - no read-only default, no idle-session timeout, read committed.
FIXED_SETTINGS: dict[str, str] = {
    "search_path": "pg_catalog,pg_temp",
    "role": "none",
    "DateStyle": "ISO,MDY",
    "IntervalStyle": "postgres",
    "standard_conforming_strings": "on",
    "default_transaction_read_only": "off",
    "default_transaction_isolation": "read committed",
    "idle_session_timeout": "0",
}


def _option(name: str, value: str) -> str:
    """One ``-c name=value`` for libpq's ``options``, spaces and backslashes escaped."""
    escaped = value.replace("\\", "\\\\").replace(" ", "\\ ")
    return f"-c {name}={escaped}"


def startup_options(conninfo: str, settings: dict[str, str]) -> str:
    """libpq ``options`` for a connection: the user's own, then pgtop's (which win).

    libpq takes ``options`` from the connection string, else from a service file, else
    from PGOPTIONS; pgtop's value replaces all three, so the user's is carried over.
    """
    given = pq_conninfo.conninfo_to_dict(conninfo)
    own = " ".join(_option(name, value) for name, value in settings.items())
    user = str(given["options"]) if "options" in given else None
    if user is None:
        service = given.get("service") or os.environ.get("PGSERVICE")
        user = service_options(str(service)) if service else None
    if user is None:
        user = os.environ.get("PGOPTIONS")
    return f"{user} {own}" if user else own


def service_options(service: str) -> str | None:
    """The ``options`` a service of pg_service.conf gives, as libpq would find it."""
    import configparser

    candidates = []
    if os.environ.get("PGSERVICEFILE"):
        candidates.append(os.environ["PGSERVICEFILE"])
    else:
        candidates.append(os.path.expanduser("~/.pg_service.conf"))
    if os.environ.get("PGSYSCONFDIR"):
        candidates.append(os.path.join(os.environ["PGSYSCONFDIR"], "pg_service.conf"))
    for path in candidates:
        parser = configparser.RawConfigParser(strict=False, delimiters=("=",))
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                parser.read_file(handle)
        except (OSError, configparser.Error):
            continue
        if parser.has_section(service):
            return parser.get(service, "options", fallback=None)
    return None


def _secrets(conninfo: str, password: str | None) -> tuple[str | None, ...]:
    """The passwords a connection attempt may have used: never to be echoed."""
    given = pq_conninfo.conninfo_to_dict(conninfo).get("password")
    return (password, None if given is None else str(given), os.environ.get("PGPASSWORD"))


async def connect(
    conninfo: str,
    password: str | None = None,
    *,
    statement_timeout_ms: int | None = STATEMENT_TIMEOUT_MS,
    lock_timeout_ms: int = LOCK_TIMEOUT_MS,
    idle_in_transaction_ms: int = IDLE_IN_TRANSACTION_MS,
) -> psycopg.AsyncConnection[dict[str, Any]]:
    """Open an autocommit connection with pgtop's defaults and bounded statements.

    Raises:
        ConnectError: with a one-line message and exit code.
    """
    kwargs = connection_kwargs(conninfo)
    if password is not None:
        kwargs["password"] = password
    settings = {
        **FIXED_SETTINGS,
        "statement_timeout": str(statement_timeout_ms or 0),
        "lock_timeout": str(lock_timeout_ms),
        "idle_in_transaction_session_timeout": str(idle_in_transaction_ms),
    }
    kwargs["options"] = startup_options(conninfo, settings)
    try:
        conn = await psycopg.AsyncConnection.connect(
            conninfo, autocommit=True, row_factory=psycopg.rows.dict_row, **kwargs
        )
    except psycopg.Error as exc:
        raise classify(exc, target(conninfo), _secrets(conninfo, password)) from None
    if bouncer_version(conn) is not None:
        # A PgBouncer told to ignore the startup options: its console runs no SELECT.
        await conn.close()
        raise ConnectError(
            f"{target(conninfo)}: PgBouncer, not PostgreSQL", EXIT_USAGE, pooler=True
        )
    try:
        # Texts arrive as the server keeps them: a conversion to another client encoding
        # fails on the first byte that does not convert (any byte in a SQL_ASCII database).
        server_encoding = conn.info.parameter_status("server_encoding")
        if conn.info.parameter_status("client_encoding") != server_encoding:
            await conn.execute(
                "SELECT pg_catalog.set_config('client_encoding', %s, false)",
                [server_encoding or "UTF8"],
            )
        _load_texts_leniently(conn)
        cur = await conn.execute(sql.SESSION_SETUP.sql(conn.info.server_version))
        row = await cur.fetchone()
    except psycopg.Error as exc:
        await conn.close()
        raise classify(exc, target(conninfo), _secrets(conninfo, password)) from None
    if row is None or row["acting"] != row["login"]:
        await conn.close()
        acting = row["acting"] if row else "?"
        raise ConnectError(
            f"{target(conninfo)}: pgtop logged in as {row['login'] if row else '?'} but the "
            f"server makes it act as {acting}; refusing to act as another role",
            EXIT_AUTH,
        )
    return conn


async def probe(conn: psycopg.AsyncConnection[dict[str, Any]]) -> Capabilities:
    """Ask the server what this role may see and use."""
    if conn.info.server_version < sql.MIN_SERVER_VERSION:
        raise sql.UnsupportedServerError(
            f"PostgreSQL {conn.info.server_version // 10000} is not supported (13 or newer)"
        )
    cur = await conn.execute(sql.PROBE.sql(conn.info.server_version))
    row = await cur.fetchone()
    assert row is not None, "pg_roles has no row for current_user"
    return Capabilities(**row)


def _load_texts_leniently(conn: psycopg.AsyncConnection[Any]) -> None:
    """Texts keep every byte, whatever their encoding (see ``_LenientText``)."""
    for name in ("text", "varchar", "name", "bpchar"):
        conn.adapters.register_loader(name, _LenientText)


BOUNCER_SUFFIX = "/bouncer"
"""How PgBouncer's admin console ends the ``server_version`` it reports (``1.18.0/bouncer``);
a pooled database reports its PostgreSQL's."""


def bouncer_version(conn: psycopg.AsyncConnection[Any]) -> str | None:
    """PgBouncer's version when ``conn`` is to its admin console, else None.

    Read from the parameter status the console sends at login: nothing is asked.
    """
    reported = conn.info.parameter_status("server_version") or ""
    if not reported.endswith(BOUNCER_SUFFIX):
        return None
    return reported[: -len(BOUNCER_SUFFIX)] or "?"


async def connect_console(
    conninfo: str, password: str | None = None
) -> psycopg.AsyncConnection[dict[str, Any]]:
    """Open an autocommit connection to a PgBouncer admin console (database ``pgbouncer``).

    The console takes no startup options and knows no SQL, so none of ``connect``'s session
    settings is sent or checked: it runs only PgBouncer's own ``SHOW`` commands (which
    resolve no name through a search_path). The defaults of ``connection_kwargs`` apply.

    Raises:
        ConnectError: it cannot be opened, or what answered is not a PgBouncer console.
    """
    kwargs = connection_kwargs(conninfo)
    if password is not None:
        kwargs["password"] = password
    # An empty value is not sent: it replaces any from the connection string, a service
    # file or PGOPTIONS, which the console would refuse.
    kwargs["options"] = ""
    try:
        conn = await psycopg.AsyncConnection.connect(
            conninfo, autocommit=True, row_factory=psycopg.rows.dict_row, **kwargs
        )
    except psycopg.Error as exc:
        raise classify(exc, target(conninfo), _secrets(conninfo, password)) from None
    if bouncer_version(conn) is None:
        database = conn.info.dbname
        await conn.close()
        raise ConnectError(
            f"{target(conninfo)}: a pooler (PgBouncer?) answered for database "
            f"{database}: pgtop reads PostgreSQL itself, or PgBouncer's admin console "
            "(dbname=pgbouncer)",
            EXIT_USAGE,
        )
    # The console takes the simple query protocol only: a statement run often is never
    # prepared (psycopg would, from its fifth run).
    conn.prepare_threshold = None
    _load_texts_leniently(conn)
    return conn
