"""Moved to :mod:`tui.core.text` (Textual-free: ``generate`` uses it too); kept for existing imports."""

from tui.core.text import clean, has_control, one_cell, one_line, token_display

__all__ = ["clean", "has_control", "one_cell", "one_line", "token_display"]
