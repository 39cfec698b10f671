"""Screens and tab panes of the pgtop UI."""
