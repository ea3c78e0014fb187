"""Names from storage, shown on a terminal.

A key or an archive member may hold any character; printed raw, a control character
(ESC, CR, a newline, a C1 CSI) moves the cursor, recolours or clears the screen, or splits
one line of output in two. Text output therefore shows every character Python does not
call printable as an escape, `\\x1b` for ESC, as GNU ls and the aws CLI show them
escaped; JSON output keeps names exact (JSON escapes them itself).
"""

from __future__ import annotations


def printable(text: str) -> str:
    """`text` with each unprintable character as `\\xNN`, `\\uNNNN` or `\\UNNNNNNNN`."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _escaped(c) for c in text)


def _escaped(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
