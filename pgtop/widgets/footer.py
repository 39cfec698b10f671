"""The key footer, fitted to the terminal's width."""

from __future__ import annotations

from typing import Any

from textual import events
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

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
            if self._bindings_ready and self._update_in_place(shown):
                self._shown = shown
                return
            self._shown = shown
        super().bindings_changed(screen)

    def _update_in_place(self, shown: tuple[tuple[str, Binding, bool, str], ...]) -> bool:
        """The same keys, some enabled or disabled now (a key that depends on the row under
        the cursor): those keys change, where making them all again would mount, style and
        lay out a dozen widgets. False when the keys themselves changed."""
        if self._shown is None or [entry[:2] for entry in shown] != [
            entry[:2] for entry in self._shown
        ]:
            return False
        first: dict[str, tuple[bool, str, Binding]] = {}
        for _key, binding, enabled, tooltip in shown:
            first.setdefault(binding.action, (enabled, tooltip, binding))
        for widget in self.query(FooterKey):
            if widget.has_class("-command-palette"):
                continue
            state = first.get(widget.action)
            if state is None:
                return False
            enabled, tooltip, binding = state
            if widget._disabled == enabled:
                widget._disabled = not enabled
                widget.set_class(not enabled, "-disabled")
                widget.refresh()
            # As Footer.compose gives them.
            grouped = widget.has_class("-grouped")
            widget.tooltip = (tooltip or binding.description) if grouped else (tooltip or None)
        return True

    def on_resize(self, event: events.Resize) -> None:
        narrow = event.size.width < NARROW
        if narrow != self.compact or narrow == self.show_command_palette:
            self.compact = narrow
            self.show_command_palette = not narrow
            if self.is_attached and self._bindings_ready:
                self.call_after_refresh(self.recompose)
