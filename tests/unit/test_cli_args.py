"""The command line as a user meets it: help, version, and one-line usage errors.

pgtop runs as a real subprocess. Nothing here needs a server: every usage error is
reported before pgtop tries to connect.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from psycopg.conninfo import conninfo_to_dict

import pgtop
from pgtop.pg import EXIT_USAGE, ConnectError, build_conninfo, redact
from pgtop.text import redact_text

#: Seconds a usage error may take at most (it never touches the network).
TIMEOUT = 30


def run_pgtop(
    tmp_path: Path, *args: str, config: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m pgtop ARGS`` with no terminal and no PG* variables.

    The config file is ``config``, or one that does not exist.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["PGTOP_CONFIG"] = str(config or tmp_path / "no-such-config.toml")
    env["PGTOP_LOG_DIR"] = str(tmp_path / "logs")
    return subprocess.run(
        [sys.executable, "-m", "pgtop", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
        timeout=TIMEOUT,
        check=False,
    )


def assert_one_line_error(proc: subprocess.CompletedProcess[str], code: int) -> str:
    """The run failed with ``code`` and exactly one ``pgtop:`` line on stderr; return it."""
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("pgtop: "), proc.stderr
    assert proc.returncode == code, proc.stderr
    assert proc.stdout == ""
    return lines[0]


# -- help and version --------------------------------------------------------------------------

#: How --help introduces each option (the same whatever the terminal width).
HELP_OPTIONS = [
    "-h HOST, --host HOST",
    "-p PORT, --port PORT",
    "-U USERNAME, --username USERNAME",
    "-d DBNAME, --dbname DBNAME",
    "-w, --no-password",
    "-W, --password",
    "--refresh SECONDS",
    "--read-only",
    "--demo",
    "--once TAB",
    "--format {text,json}",
    "--record FILE",
    "--duration DURATION",
    "--replay FILE",
    "--at TIME",
    "--info",
    "--version",
    "-?, --help",
    "CONNINFO",
]


@pytest.mark.parametrize("flag", ["--help", "-?"])
def test_help_lists_every_option(tmp_path: Path, flag: str) -> None:
    proc = run_pgtop(tmp_path, flag)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert proc.stdout.startswith("usage: pgtop")
    for option in HELP_OPTIONS:
        assert option in proc.stdout, f"{option} missing from --help"
    # Every --once tab that can be asked for is named, and the libpq fallbacks are explained.
    assert "activity" in proc.stdout
    assert "PGHOST" in proc.stdout


def test_version(tmp_path: Path) -> None:
    proc = run_pgtop(tmp_path, "--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"pgtop {pgtop.__version__}\n"
    assert proc.stderr == ""


def test_help_and_version_never_write_files(tmp_path: Path) -> None:
    run_pgtop(tmp_path, "--help")
    run_pgtop(tmp_path, "--version")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


# -- usage errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "mentions"),
    [
        (["--refresh", "0.1"], "--refresh"),
        (["--refresh", "abc"], "abc"),
        (["--refresh", "-1"], "--refresh"),
        (["--refresh", "nan"], "--refresh"),
        (["--refresh", "inf"], "--refresh"),
        (["--refresh"], "--refresh"),
        (["--format", "xml"], "xml"),
        (["--once", "nosuch"], "nosuch"),
        (["--demo", "-h", "x"], "--demo"),
        (["--demo", "host=x"], "--demo"),
        (["--demo", "-U", "me"], "--demo"),
        (["-w", "-W"], "-W"),
        (["--no-such-option"], "--no-such-option"),
        (["host=a", "port"], "port"),
        (["host=a port"], "invalid connection string"),
        (["postgresql://%zz"], "invalid connection string"),
        (["host='unterminated"], "invalid connection string"),
        # libpq names the keyword it does not know, which can be a piece of a password:
        # it is masked like every other piece of the string.
        (["nosuchkeyword=1"], 'invalid connection option "***"'),
        (["--record", "a.pgtop", "--replay", "b.pgtop"], "not both"),
        (["--replay", "a.pgtop", "-h", "db"], "contacts no server"),
        (["--replay", "a.pgtop", "host=db"], "contacts no server"),
        (["--replay", "a.pgtop", "--demo"], "contacts no server"),
        (["--record", "a.pgtop", "--once", "activity"], "choose one"),
        (["--duration", "10m"], "--duration goes with --record"),
        (["--record", "a.pgtop", "--duration", "soon"], "not a duration"),
        (["--record", "a.pgtop", "--duration", "0"], "not a duration"),
        (["--at", "10:00"], "--at goes with --replay"),
        (["--info"], "--info goes with --replay"),
        (["--replay", "a.pgtop", "--info", "--once", "locks"], "no --once or --at"),
        (["--replay", "a.pgtop", "--once", "nosuch"], "nosuch"),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else None,
)
def test_usage_error_is_one_line_and_exit_2(tmp_path: Path, args: list[str], mentions: str) -> None:
    line = assert_one_line_error(run_pgtop(tmp_path, *args), EXIT_USAGE)
    assert mentions in line
    # A usage error is not a crash: no crash log is written.
    assert not (tmp_path / "logs").exists()


@pytest.mark.parametrize(
    "conninfo",
    [
        "postgresql://me:s3cr3t-pw@[::1/postgres",
        "postgresql://me:s3cr3t-pw@[]/postgres",
        "postgres://me:s3cr3t-pw@db/postgres?nosuchparam=1",
        "password=s3cr3t-pw host='unterminated",
        "password='s3cr3t-pw' host=db port",
        # Each leaked all or part of the password before.
        "postgresql://u:s3cr3t-pw%zz@db/postgres",
        "postgresql://u:s3cr3t@-pw@db/postgres",
        "host=db password=s3cr3t -pw",
        "host=db password=s3cr3t-pw -x",
        "postgresql://u:s3cr3t -pw@db/postgres",
    ],
)
def test_malformed_conninfo_never_shows_the_password(tmp_path: Path, conninfo: str) -> None:
    line = assert_one_line_error(run_pgtop(tmp_path, "--once", "activity", conninfo), EXIT_USAGE)
    assert "invalid connection string" in line
    for piece in ("s3cr3t", "-pw", "-x"):
        assert piece not in line


def test_usage_error_wins_over_a_broken_config_file(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("refresh = = 1\n")
    assert_one_line_error(run_pgtop(tmp_path, "--format", "xml", config=config), EXIT_USAGE)


# -- build_conninfo ----------------------------------------------------------------------------


def test_build_conninfo_options_override_the_string() -> None:
    merged = build_conninfo(
        "host=a port=1 user=u dbname=x application_name=mine sslmode=disable",
        host="b",
        port="2",
        user="v",
        dbname="y",
    )
    assert conninfo_to_dict(merged) == {
        "host": "b",
        "port": "2",
        "user": "v",
        "dbname": "y",
        "application_name": "mine",
        "sslmode": "disable",
    }


def test_build_conninfo_keeps_what_no_option_overrides() -> None:
    merged = build_conninfo("host=a port=1 password='p w'", dbname="y")
    assert conninfo_to_dict(merged) == {"host": "a", "port": "1", "password": "p w", "dbname": "y"}


def test_build_conninfo_accepts_a_uri() -> None:
    merged = build_conninfo(
        "postgresql://me:pw@db.example:5433/app?sslmode=require&connect_timeout=7", dbname="other"
    )
    assert conninfo_to_dict(merged) == {
        "user": "me",
        "password": "pw",
        "host": "db.example",
        "port": "5433",
        "dbname": "other",
        "sslmode": "require",
        "connect_timeout": "7",
    }


def test_build_conninfo_options_alone() -> None:
    assert build_conninfo() == ""
    assert build_conninfo(None) == ""
    merged = build_conninfo(None, host="/run/postgresql", user="it's me", dbname="my db")
    assert conninfo_to_dict(merged) == {
        "host": "/run/postgresql",
        "user": "it's me",
        "dbname": "my db",
    }


@pytest.mark.parametrize(
    "conninfo",
    ["host=a port", "postgresql://%zz", "postgresql://me:s3cr3t-pw@[::1", "nosuch=1"],
)
def test_build_conninfo_rejects_malformed_strings(conninfo: str) -> None:
    with pytest.raises(ConnectError) as info:
        build_conninfo(conninfo)
    assert info.value.exit_code == EXIT_USAGE
    message = str(info.value)
    assert message.startswith("invalid connection string: ")
    assert "\n" not in message
    assert "s3cr3t-pw" not in message


# -- redaction ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "conninfo",
    [
        "host=db user=me password=s3cr3t-pw",
        "host=db password = s3cr3t-pw user=me",
        "host=db password='s3cr3t-pw and more' user=me",
        r"host=db password='s3cr3t-pw\'q' user=me",
        "postgresql://me:s3cr3t-pw@db/postgres",
        "postgresql://me@db/postgres?password=s3cr3t-pw",
    ],
)
def test_redact_drops_the_password(conninfo: str) -> None:
    shown = redact(conninfo)
    assert "s3cr3t-pw" not in shown
    params = conninfo_to_dict(shown)
    assert "password" not in params
    assert params["host"] == "db"
    assert params["user"] == "me"


def test_redact_of_an_invalid_string_shows_nothing_of_it() -> None:
    assert redact("password=s3cr3t-pw host") == "<invalid connection string>"


@pytest.mark.parametrize(
    "text",
    [
        "connecting with host=db password=s3cr3t-pw user=me",
        "connecting with host=db password = s3cr3t-pw",
        "dsn: host=db password='s3cr3t-pw with spaces' dbname=x",
        r"dsn: password='it\'s s3cr3t-pw' host=db",
        "url postgresql://me:s3cr3t-pw@db:5432/app failed",
        "url postgres://:s3cr3t-pw@db/app failed",
        'IPv6 host address in URI: "postgresql://u:s3cr3t-pw@[::1"',
        "first line password=s3cr3t-pw\nsecond postgresql://u:s3cr3t-pw@h/db\n",
    ],
)
def test_redact_text_masks_passwords(text: str) -> None:
    shown = redact_text(text)
    assert "s3cr3t-pw" not in shown
    assert "***" in shown
    assert shown.count("\n") == text.count("\n")


def test_redact_text_masks_given_secrets_anywhere() -> None:
    shown = redact_text("the prompt gave typed-in-pw; again typed-in-pw", ["typed-in-pw", None])
    assert shown == "the prompt gave ***; again ***"


def test_redact_text_leaves_other_text_alone() -> None:
    text = "host=db user=me dbname=app postgresql://me@db/app (no secret)"
    assert redact_text(text, [None, ""]) == text
