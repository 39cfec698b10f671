"""Several servers: the config file's ``[servers.NAME]`` profiles, and which servers a
command line chooses (``CONNINFO...``, ``-S NAME``, ``--all-servers``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pgtop.cli import UsageError, parse_settings
from pgtop.config import ServerProfile, load_file_config
from pgtop.servers import standby_conninfo

CONFIG = """
read_only = false

[servers.primary]
conninfo = "host=db1 port=5433 dbname=app user=ops"

[servers.reporting]
service = "reporting"
read_only = true

[servers.broken]
conninfo = "host=x"
service = "y"

[servers.typo]
conninfo = "host=z"
readonly = true
"""


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG)
    monkeypatch.setenv("PGTOP_CONFIG", str(path))
    return path


def test_profiles_are_read_and_bad_ones_said(config: Path) -> None:
    found = load_file_config(config)
    assert found.values["profiles"] == (
        ServerProfile("primary", "host=db1 port=5433 dbname=app user=ops"),
        ServerProfile("reporting", "service=reporting", read_only=True),
        ServerProfile("typo", "host=z"),
    )
    assert any("servers.broken needs conninfo or service (one)" in w for w in found.warnings)
    assert any("servers.typo: unknown keys readonly ignored" in w for w in found.warnings)


def test_one_server_chosen_is_the_one_server(config: Path) -> None:
    settings, _, _ = parse_settings(["-S", "reporting"])
    assert settings.conninfo == "service=reporting"
    assert settings.read_only, "the profile's read_only"
    assert settings.servers == (), "one server: no Servers tab"


def test_several_servers_in_order(config: Path) -> None:
    settings, _, _ = parse_settings(["-S", "reporting", "host=db9 port=6000", "-S", "primary"])
    names = [server.name for server in settings.servers]
    assert names == ["reporting", "primary", "db9:6000"]
    assert settings.servers[0].read_only
    assert not settings.servers[1].read_only
    settings, _, _ = parse_settings(["--all-servers", "--once", "servers"])
    assert [server.name for server in settings.servers] == ["primary", "reporting", "typo"]
    settings, _, _ = parse_settings(["host=a", "host=a"])
    assert [server.name for server in settings.servers] == ["a:5432", "a:5432#2"]


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["-S", "nosuch"], "-S nosuch: no [servers.nosuch] in the config file"),
        (["-S", "primary", "-h", "other"], "-h, -p, -U and -d apply to a CONNINFO"),
        (["--all-servers", "--once", "locks"], "--once locks reads one server"),
        (["host=a", "host=b", "--once", "activity"], "--once activity reads one server"),
        (["--demo", "-S", "primary"], "--demo starts its own server"),
    ],
)
def test_what_cannot_be_asked(config: Path, argv: list[str], says: str) -> None:
    with pytest.raises(UsageError) as raised:
        parse_settings(argv)
    assert says in str(raised.value)


def test_all_servers_needs_profiles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGTOP_CONFIG", str(tmp_path / "none.toml"))
    with pytest.raises(UsageError, match="names no server"):
        parse_settings(["--all-servers"])


def test_a_standby_is_reached_with_the_primarys_settings() -> None:
    primary = "host=db1 hostaddr=10.0.0.1 port=5433 dbname=app user=ops sslmode=require"
    built = standby_conninfo(primary, "10.0.0.7", "5434")
    assert "host=10.0.0.7" in built
    assert "port=5434" in built
    assert "hostaddr" not in built
    assert "user=ops" in built
    assert "sslmode=require" in built
    assert "dbname=app" in built
    # Over a local socket: the primary's host.
    assert "host=db1" in standby_conninfo(primary, None, "5434")
