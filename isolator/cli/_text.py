"""Text for people: control characters made visible.

Plugin text (names, descriptions, skill and command text, tool names, results and errors,
worker output, diagnostics...) reaches the terminal of whoever runs ``ohp``. A terminal obeys
what it is sent: ESC ] 0 ; ... BEL retitles it, ESC [ 2 J clears it, CR overwrites the line,
0x9b is the one-byte CSI some terminals honour, U+202E reverses the text after it. So every
character below is shown as an escape (``\\x1b``, ``\\r``, ``\\u202e``) instead of being sent:

* C0 controls but newline and tab (which the layout uses), DEL, C1 controls (U+0080-U+009F);
* the bidi controls: U+061C, U+200E, U+200F, U+202A-U+202E, U+2066-U+2069, and the line and
  paragraph separators U+2028, U+2029;
* lone surrogates (a JSON ``"\\ud800"``), which are not text and could not be encoded anyway.

``ohp``'s ``main`` puts :class:`VisibleStream` over ``sys.stdout`` and ``sys.stderr``, so every
line it writes (results, tables, errors, tracebacks, log warnings) goes through :func:`visible`
whoever wrote it; what ``ohp`` writes on purpose (bold, the progress line's CR) goes through
:func:`write_raw`. JSON output is escaped with :func:`json_visible` first, which keeps it valid
JSON that decodes to the same strings.
"""

from __future__ import annotations

import re

TYPE_CHECKING = False  # typing is not imported: see isolator.cli._cli
if TYPE_CHECKING:
    from typing import Any, TextIO

_SPECIAL = ("\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e"
            "\u2066-\u2069\ud800-\udfff")
_UNSAFE = re.compile(f"[{_SPECIAL}]")
_UNSAFE_ONE_LINE = re.compile(f"[\t\n{_SPECIAL}]")
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: str, *, one_line: bool = False) -> str:
    """*text* with every control character shown as an escape (``\\x1b``); newline and tab
    are kept unless *one_line*."""
    pattern = _UNSAFE_ONE_LINE if one_line else _UNSAFE
    return pattern.sub(_escape, text) if pattern.search(text) else text


def json_visible(text: str) -> str:
    """JSON text (``json.dumps(..., ensure_ascii=False)``) with the characters json leaves
    raw (DEL, C1, bidi controls, lone surrogates) as ``\\uXXXX`` escapes: the same JSON value,
    inert on a terminal. (json already escapes C0 controls; outside strings JSON text is
    ASCII, so every character replaced is inside a string.)"""
    return _UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


class VisibleStream:
    """A text stream that writes everything through :func:`visible`; :meth:`write_raw` is
    for what the program writes on purpose. Everything else is the wrapped stream's."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        self.stream.write(visible(text))
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def write_raw(self, text: str) -> int:
        """Write *text* as it is: only for sequences the program itself chose."""
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


def write_raw(stream: TextIO, text: str) -> None:
    """Write *text* to *stream* unescaped (through a :class:`VisibleStream`'s raw path)."""
    raw = getattr(stream, "write_raw", None)
    if raw is not None:
        raw(text)
    else:
        stream.write(text)
