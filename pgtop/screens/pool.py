"""Detail of one PgBouncer pool: its figures, its database's traffic, its clients (waiting
ones first) and its servers; read again on every refresh while it is open."""

from __future__ import annotations

from typing import ClassVar

from rich.cells import cell_len
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from pgtop.collectors.pgbouncer import PoolDetail, PoolPeers
from pgtop.formats import duration, millis, rate, size
from pgtop.model import Pool, PoolerPeer, PoolsSnapshot
from pgtop.panes.host import Host, ReportsFailures, host_of
from pgtop.source import PollError
from pgtop.text import name_text, one_line

PEERS_SHOWN = 500
"""Clients (or servers) listed at most; the count says how many there are."""


def pool_text(snapshot: PoolsSnapshot | None, current: Pool, gone: bool) -> Text:
    """The pool's figures and its database's traffic, as ``label  value`` lines."""
    rows = [
        ("pool mode", one_line(current.pool_mode or "", 20)),
        ("pool size", "" if current.pool_size is None else str(current.pool_size)),
        ("clients", f"{current.cl_active} active, {current.cl_waiting} waiting"),
        ("longest wait", duration(current.maxwait_s) if current.cl_waiting else ""),
        (
            "servers",
            f"{current.sv_active} active, {current.sv_idle} idle, {current.sv_used} used, "
            f"{current.sv_tested} tested, {current.sv_login} logging in",
        ),
    ]
    traffic = next(
        (t for t in (snapshot.traffic if snapshot else ()) if t.database == current.database),
        None,
    )
    if traffic is not None:
        rows += [
            (
                "database traffic",
                f"{rate(traffic.xact_per_s)} tx/s, {rate(traffic.query_per_s)} queries/s, "
                f"in {size(traffic.received_per_s)}/s, out {size(traffic.sent_per_s)}/s",
            ),
            ("mean query", millis(traffic.query_ms)),
            ("mean wait per tx", millis(traffic.wait_ms)),
        ]
    text = Text()
    if gone:
        text.append(
            "This pool is gone; the values below are the last ones seen.\n\n",
            style="bold reverse",
        )
    for label, value in rows:
        text.append(f"{label:>18}  ", style="bold")
        text.append(value)
        text.append("\n")
    return text


def peer_line(peer: PoolerPeer, server: bool) -> Text:
    """One client or server: state, address, (a server's backend pid,) application, how long
    it has waited, since when."""
    text = Text(no_wrap=True, overflow="ellipsis")
    waiting = peer.state == "waiting"
    text.append(f"{one_line(peer.state, 16):<8}", style="bold reverse" if waiting else "bold")
    where = f"{peer.addr or 'unix'}:{peer.port}" if peer.port else (peer.addr or "unix")
    text.append(f" {one_line(where, 48):<22} ")
    if server and peer.remote_pid is not None:
        text.append(f"pid {peer.remote_pid:<8} ")
    name = name_text(peer.application_name, 64)
    text.append(name + " " * max(0, 20 - cell_len(name)))
    if waiting:
        text.append(f"  waiting {duration(peer.wait_s)}", style="bold")
    text.append(f"  connected {one_line(peer.connect_time, 32)}")
    text.append(f"  last request {one_line(peer.request_time, 32)}")
    return text


def peers_text(peers: tuple[PoolerPeer, ...], server: bool) -> Text:
    """One line per peer, cut at the screen's edge."""
    text = Text(no_wrap=True, overflow="ellipsis")
    if not peers:
        text.append("none", style="italic")
        return text
    for peer in peers[:PEERS_SHOWN]:
        text.append_text(peer_line(peer, server))
        text.append("\n")
    if len(peers) > PEERS_SHOWN:
        text.append(f"… and {len(peers) - PEERS_SHOWN} more", style="italic")
    return text


class PoolScreen(ReportsFailures, Screen[None]):
    """One pool in full; stays live until closed."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "close", "Back", id="close-detail"),
        Binding("ctrl+r", "reload", "Reload", id="reload-detail"),
    ]

    def __init__(self, pool: Pool) -> None:
        super().__init__()
        self.pool = pool
        self._gone = False

    @property
    def host(self) -> Host:
        return host_of(self.app)

    def compose(self) -> ComposeResult:
        title = Text("Pool ", style="bold")
        title.append(name_text(f"{self.pool.database}/{self.pool.user}", 120))
        yield Static(title, id="detail-title")
        with VerticalScroll(id="detail-body"):
            yield Static(id="pool-fields")
            yield Static(id="pool-clients-heading", classes="detail-heading")
            yield Static(Text("loading…", style="italic"), id="pool-clients")
            yield Static(id="pool-servers-heading", classes="detail-heading")
            yield Static(Text("loading…", style="italic"), id="pool-servers")
        yield Footer()

    def on_mount(self) -> None:
        self._heading("clients", None)
        self._heading("servers", None)
        self.watch(self.app, "snapshot", self._follow, init=True)

    def _heading(self, what: str, count: int | None) -> None:
        label = what.capitalize() if count is None else f"{what.capitalize()} ({count})"
        self.query_one(f"#pool-{what}-heading", Static).update(Text(label, style="bold underline"))

    def _follow(self, snapshot: object) -> None:
        if isinstance(snapshot, PoolsSnapshot):
            key = (self.pool.database, self.pool.user)
            current = next((p for p in snapshot.pools if (p.database, p.user) == key), None)
            self._gone = current is None
            if current is not None:
                self.pool = current
            self.query_one("#pool-fields", Static).update(
                pool_text(snapshot, self.pool, self._gone)
            )
        self.action_reload()

    def action_close(self) -> None:
        self.dismiss()

    def action_reload(self) -> None:
        self.load_peers()

    @work(exclusive=True, group="detail", exit_on_error=False, description="load pool detail")
    async def load_peers(self) -> None:
        try:
            peers: PoolPeers = await self.host.fetch(PoolDetail(self.pool.database, self.pool.user))
        except PollError as exc:
            self.query_one("#pool-clients", Static).update(
                Text(f"could not load: {one_line(str(exc), 300)}", style="bold")
            )
            return
        self._heading("clients", len(peers.clients))
        self._heading("servers", len(peers.servers))
        self.query_one("#pool-clients", Static).update(peers_text(peers.clients, server=False))
        self.query_one("#pool-servers", Static).update(peers_text(peers.servers, server=True))
