"""Several servers in one pgtop: each server is a source of its own (``LiveSource``), on its
own connection; the servers view reads each one's light figures in a task of its own, so a
slow, frozen or down server never delays the others (every read is bounded by the source's
watchdog, every connection attempt by ``connect_timeout``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import replace

import psycopg
from psycopg import conninfo as pq_conninfo

from pgtop.collectors.base import CollectorFactory
from pgtop.collectors.health import Finding, HealthData
from pgtop.collectors.servers import (
    FiguresReader,
    FiguresRequest,
    ServerFigures,
    ServerRow,
    StandbyAddress,
    light_finding,
)
from pgtop.config import ServerProfile, Settings
from pgtop.source import LiveSource, PollError


def host_port(conninfo: str) -> tuple[str, str]:
    """The host and port a conninfo names ("" where it names none: libpq's defaults)."""
    try:
        params = pq_conninfo.conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError:
        return "", ""
    host = str(
        params.get("host") or (f"service {params['service']}" if "service" in params else "")
    )
    return host, str(params.get("port") or "")


def standby_conninfo(primary: str, address: str | None, port: str) -> str:
    """The primary's connection settings with the standby's address (None: the standby
    streams over a local socket, so it is on the primary's host) and port."""
    params = pq_conninfo.conninfo_to_dict(primary)
    params.pop("hostaddr", None)
    if address is not None:
        params["host"] = address
    params["port"] = port
    return pq_conninfo.make_conninfo("", **params)


class Server:
    """One server: its source, and the state of its last light read."""

    def __init__(
        self, profile: ServerProfile, settings: Settings, collectors: Mapping[str, CollectorFactory]
    ) -> None:
        self.profile = profile
        self.settings = replace(
            settings,
            conninfo=profile.conninfo,
            read_only=settings.read_only or profile.read_only,
        )
        self.source = LiveSource(self.settings, collectors=collectors, name=profile.name)
        self.host, self.port = host_port(profile.conninfo)
        self.figures: ServerFigures | None = None
        self.status = "connecting"
        self.ok = False
        self._reader = FiguresReader()

    @property
    def name(self) -> str:
        return self.profile.name

    async def read(self) -> None:
        """Read the light figures; what went wrong goes in ``status``."""
        try:
            self.figures = await self.source.fetch(FiguresRequest(self._reader))
        except PollError as exc:
            self.ok = False
            since = self.source.lost_since
            if not exc.connection_lost:
                self.status = f"error: {exc}"
            elif self.figures is not None and since is not None:
                self.status = f"reconnecting since {since:%H:%M:%S}: {exc}"
            else:
                self.status = f"refused: {exc}"
            return
        self.ok = True
        self.status = "ok"
        if self.host == "" and self.source.describe():
            self.host, self.port = _described(self.source.describe())

    def row(self, *, in_view: bool, health: HealthData | None) -> ServerRow:
        finding: Finding | None = None
        if in_view and health is not None and health.findings:
            finding = health.findings[0]
        elif self.figures is not None:
            finding = light_finding(self.figures, self.settings.health)
        return ServerRow(
            name=self.name,
            host=self.host,
            port=self.port,
            figures=self.figures,
            status=self.status,
            ok=self.ok,
            finding=finding,
            in_view=in_view,
            read_only=self.settings.read_only,
        )


def _described(description: str) -> tuple[str, str]:
    """Host and port from ``name · user@host:port/db``."""
    where = description.rpartition("@")[2].rpartition("/")[0]
    host, _, port = where.rpartition(":")
    return host.strip("[]"), port


class ServerSet:
    """The servers of a run, in the order given; the first is in view at start."""

    def __init__(
        self,
        profiles: tuple[ServerProfile, ...],
        settings: Settings,
        collectors: Mapping[str, CollectorFactory],
    ) -> None:
        self.settings = settings
        self._collectors = collectors
        self.servers = [Server(profile, settings, collectors) for profile in profiles]

    def __len__(self) -> int:
        return len(self.servers)

    def get(self, name: str) -> Server | None:
        return next((server for server in self.servers if server.name == name), None)

    def add(self, profile: ServerProfile) -> Server | None:
        """A server more (a standby); None when one of that name or address is listed."""
        host, port = host_port(profile.conninfo)
        for server in self.servers:
            if server.name == profile.name or (server.host, server.port) == (host, port):
                return None
        server = Server(profile, self.settings, self._collectors)
        self.servers.append(server)
        return server

    def standby_profile(self, primary: Server, standby: StandbyAddress, port: str) -> ServerProfile:
        """A standby of ``primary``, reached with the primary's settings."""
        label = standby.name or standby.address or "local"
        return ServerProfile(
            f"{primary.name}/{label}",
            standby_conninfo(primary.profile.conninfo, standby.address, port),
            primary.profile.read_only,
        )

    async def read_all(self) -> None:
        """Every server's figures once, all at the same time."""
        await asyncio.gather(*(server.read() for server in self.servers))

    async def close(self) -> None:
        for server in self.servers:
            with contextlib.suppress(Exception):
                await server.source.close()
