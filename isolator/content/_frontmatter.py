"""Frontmatter: split a Markdown file into its metadata and body, safely.

The split follows python-frontmatter (which the OpenHands SDK uses) to the letter, so a body
compares equal: the text is stripped, a first line of three or more dashes opens YAML frontmatter
that the next such line closes, a first line ``{`` opens JSON frontmatter, and the body is
stripped. YAML is parsed with the safe loader, with two refusals the SDK lacks: aliases (an
alias bomb parses in microseconds and expands to gigabytes when constructed) and nesting deeper
than a limit. Frontmatter that is not valid YAML gets a lenient line-by-line reading instead of
failing, because real plugins ship one-line descriptions with unquoted ``key: value`` inside.

Nesting deeper than the limit is refused with the same diagnostic whichever layer notices it: our
own walk of the parsed tree, Python's recursion limit (the pure-Python loader composes
recursively), or libyaml, which (as bundled with PyYAML 6.0.4) refuses nesting past 1,000
levels itself, as invalid YAML.
"""

from __future__ import annotations

import datetime
import json
import re
from dataclasses import dataclass
from typing import Any

import yaml

_YAML_BOUNDARY = re.compile(r"^-{3,}\s*$", re.MULTILINE)
_JSON_BOUNDARY = re.compile(r"^(?:{|})$", re.MULTILINE)
_LENIENT_KEY = re.compile(r"^([A-Za-z0-9_$][\w.$-]*)[ \t]*:(?:[ \t]+(.*)|)$")

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_DEPTH_PROBE_CHARS = 256 * 1024


@dataclass(frozen=True)
class Frontmatter:
    """The parsed file: metadata (a dict, possibly empty), the body, and what went wrong."""

    metadata: dict[str, Any]
    body: str
    problem: str | None = None
    """Why the metadata was read leniently or dropped; None when it parsed cleanly."""
    lenient: bool = False


class YamlRefused(ValueError):
    """YAML that parses but that we will not construct (aliases, too deep)."""


def load_yaml(text: str, max_depth: int) -> Any:
    """Parse one YAML document with the safe loader, refusing aliases and deep nesting.

    Raises ``yaml.YAMLError`` for invalid YAML and :class:`YamlRefused` for refused YAML.
    """
    loader = _Loader(text)
    try:
        try:
            node = loader.get_single_node()
        except RecursionError:
            raise YamlRefused(f"nested deeper than {max_depth} levels") from None
        except yaml.YAMLError:
            # libyaml may have refused deep nesting itself: tell that from invalid YAML by what
            # the text is, not by libyaml's message.
            if _Loader is not yaml.SafeLoader and _nests_deeper(text, max_depth):
                raise YamlRefused(f"nested deeper than {max_depth} levels") from None
            raise
        if node is None:
            return None
        _check_node(node, max_depth)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _nests_deeper(text: str, max_depth: int) -> bool:
    """Whether the pure-Python parser meets nesting deeper than *max_depth* in *text* (its first
    256 KiB, which keeps this cheap on a large invalid file; deeper than 64 levels fits in far
    less). Events only, so no recursion, and no node is built."""
    depth = 0
    try:
        for event in yaml.parse(text[:_DEPTH_PROBE_CHARS], Loader=yaml.SafeLoader):
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > max_depth:
                    return True
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.YAMLError:
        pass
    return False


def _check_node(root: yaml.Node, max_depth: int) -> None:
    # An alias is the same node object reached twice: a tree walk that meets a node it has seen
    # has found one. Iterative, so depth costs no Python stack.
    seen: set[int] = set()
    stack: list[tuple[yaml.Node, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if id(node) in seen:
            raise YamlRefused("uses YAML aliases (&anchor/*alias), which are refused")
        seen.add(id(node))
        if depth > max_depth:
            raise YamlRefused(f"nested deeper than {max_depth} levels")
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                stack.append((key, depth + 1))
                stack.append((value, depth + 1))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((item, depth + 1) for item in node.value)


def to_json_value(value: Any) -> Any:
    """YAML values as JSON data: dates become ISO strings, keys strings, sets lists."""
    if isinstance(value, dict):
        return {str(k) if not isinstance(k, str) else k: to_json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [to_json_value(v) for v in value]
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value


def parse(text: str, max_depth: int = 64) -> Frontmatter:
    """Split ``text`` into frontmatter metadata and body (see the module docstring)."""
    text = text.strip()
    if _YAML_BOUNDARY.match(text):
        parts = _YAML_BOUNDARY.split(text, 2)
        if len(parts) < 3:
            return Frontmatter({}, text, "frontmatter is opened with '---' but never closed; "
                               "the whole file is the body")
        raw, body = parts[1], parts[2].strip()
        try:
            data = load_yaml(raw, max_depth)
        except YamlRefused as exc:
            return Frontmatter({}, body, f"frontmatter {exc}; metadata ignored")
        except yaml.YAMLError as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            metadata = lenient_metadata(raw)
            keys = ", ".join(metadata) or "nothing"
            return Frontmatter(
                metadata, body,
                f"frontmatter is not valid YAML ({first}); read leniently: {keys}",
                lenient=True,
            )
        if isinstance(data, dict):
            return Frontmatter(data, body)
        problem = None if data is None else "frontmatter is not a mapping; metadata ignored"
        return Frontmatter({}, body, problem)
    if _JSON_BOUNDARY.match(text):
        parts = _JSON_BOUNDARY.split(text, 2)
        if len(parts) < 3:
            return Frontmatter({}, text)
        body = parts[2].strip()
        try:
            data = json.loads("{" + parts[1] + "}")
        except (ValueError, RecursionError) as exc:
            return Frontmatter({}, body, f"JSON frontmatter is invalid ({exc}); ignored")
        return Frontmatter(data if isinstance(data, dict) else {}, body)
    return Frontmatter({}, text)


def lenient_metadata(raw: str) -> dict[str, Any]:
    """Read ``key: value`` lines of broken YAML one by one.

    A top-level line ``key: value`` gives the rest of the line as the value (a single value that
    parses as YAML on its own, such as a quoted string, a number or a flow list, is taken
    parsed); an empty value followed by indented ``- item`` lines gives a list, by other
    indented lines their text joined with spaces.
    """
    result: dict[str, Any] = {}
    key: str | None = None
    block: list[str] = []

    def finish() -> None:
        if key is None or key in result:
            return
        items = [b.strip() for b in block if b.strip()]
        if items and all(i.startswith("- ") or i == "-" for i in items):
            result[key] = [_scalar(i[1:].strip()) for i in items]
        elif items:
            result[key] = " ".join(items)
        else:
            result[key] = None

    for line in raw.split("\n"):
        match = _LENIENT_KEY.match(line)
        if match:
            finish()
            key, value = match.group(1), match.group(2)
            block = []
            if value is not None and value.strip():
                if key not in result:
                    result[key] = _scalar(value.strip())
                key = None
        elif key is not None:
            block.append(line)
    finish()
    return result


def _scalar(value: str) -> Any:
    if value[:1] in "\"'[{" or value in ("true", "false", "null", "~") or value[:1].isdigit():
        try:
            parsed = load_yaml(value, 8)
        except (yaml.YAMLError, YamlRefused):
            return value
        if isinstance(parsed, (str, int, float, bool, list)) or parsed is None:
            return parsed
    return value
