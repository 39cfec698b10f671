"""The key footer, fitted to the terminal's width."""

from __future__ import annotations

from typing import Any

from textual import events
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer

NARROW = 110
"""Below this width the footer is compact and leaves out the command palette's key
(``ctrl+p`` still opens it, and ``?`` lists every key), so that more keys fit."""


def shown_keys(screen: Screen[Any]) -> tuple[tuple[str, Binding, bool, str], ...]:
    """What a footer shows of ``screen``'s bindings: each key, whether it is enabled."""
    return tuple(
        (key, binding, enabled, tooltip)
        for key, (_, binding, enabled, tooltip) in screen.active_bindings.items()
        if binding.show
    )


class KeysFooter(Footer):
    """A footer that keeps room for keys at narrow widths; the panes list their keys most
    important first, so what a narrow terminal cuts is the least needed."""

    _shown: tuple[tuple[str, Binding, bool, str], ...] | None = None
    """The keys it last made itself for."""

    def bindings_changed(self, screen: Screen[Any]) -> None:
        # Asked on every cursor move (a key may depend on the row under it), which is on
        # every refresh where sessions come and go: making the keys again each time was
        # the largest cost of a refresh. Only when what it shows changed.
        shown = shown_keys(screen)
        if self._bindings_ready and shown == self._shown:
            return
        if screen.app.app_focus and self.is_attached and screen is self.screen:
            self._shown = shown
        super().bindings_changed(screen)

    def on_resize(self, event: events.Resize) -> None:
        narrow = event.size.width < NARROW
        if narrow != self.compact or narrow == self.show_command_palette:
            self.compact = narrow
            self.show_command_palette = not narrow
            if self.is_attached and self._bindings_ready:
                self.call_after_refresh(self.recompose)
