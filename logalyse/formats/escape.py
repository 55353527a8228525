"""Undo nginx's `\\xNN` escaping in logged values, keeping the result safe to display.

nginx (escape=default) writes `"`, `\\`, control characters and every byte above
0x7e as `\\xNN`. Valid UTF-8 runs are decoded back to text; control characters and
bytes that are not UTF-8 stay visible as `\\xNN`, so a value can never carry a
terminal escape sequence into a report.
"""

from __future__ import annotations

import re

_RUN = re.compile(r"(?:\\x[0-9A-Fa-f]{2})+")
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _escape_char(m: re.Match[str]) -> str:
    return f"\\x{ord(m.group(0)):02X}"


def _decode_run(m: re.Match[str]) -> str:
    run = m.group(0)
    raw = bytes(int(run[i + 2 : i + 4], 16) for i in range(0, len(run), 4))
    text = raw.decode("utf-8", "backslashreplace")
    # backslashreplace writes \xnn in lower case; nginx writes upper case: keep one spelling.
    text = re.sub(r"\\x([0-9a-f]{2})", lambda h: "\\x" + h.group(1).upper(), text)
    return _UNSAFE.sub(_escape_char, text)


def unescape(value: str) -> str:
    r"""Decode nginx `\xNN` escapes; leave control and invalid bytes escaped.

    Example:
        >>> unescape(r"Mozilla \x22quoted\x22 caf\xC3\xA9 \x1B[31m")
        'Mozilla "quoted" café \\x1B[31m'
    """
    if "\\x" not in value:
        return value
    return _RUN.sub(_decode_run, value)


def printable(text: str) -> str:
    r"""Make text from a log safe for a terminal: control characters become `\xNN`.

    Example:
        >>> printable("a\x1b[2Jb")
        'a\\x1B[2Jb'
    """
    return _UNSAFE.sub(_escape_char, text)
