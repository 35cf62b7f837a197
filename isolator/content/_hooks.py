"""Hooks: ``hooks/hooks.json`` and what a manifest's ``hooks`` adds (inline or files), and an
agent's frontmatter ``hooks``. Events are keyed snake_case, as the SDK keys them.

Two shapes are read. The map the SDK reads: ``{"hooks": {"PreToolUse": [{matcher, hooks}]}}`` or
bare. And a list some plugins write (the SDK drops such a file): ``{"hooks": [entry, ...]}`` or a
bare list, each entry an object naming its ``event``, either a handler itself
(``{"event", "matcher"?, "type"?, "command", "timeout"?, ...}``) or a matcher
(``{"event", "matcher"?, "hooks": [handler, ...]}``). An entry that cannot be read is dropped
with a warning; no event is ever made up from a key that is not one.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from isolator.content._context import MISSING, ComponentReader, as_bool, opt_str, py_str, type_name
from isolator.content._model import HookConfig, HookHandler, HookMatcher

if TYPE_CHECKING:
    from collections.abc import Iterable

    from isolator.content._context import LoadContext

# Events the SDK knows. Others (Claude Code has many more) are kept and reported.
SDK_HOOK_EVENTS = frozenset(
    {"pre_tool_use", "post_tool_use", "user_prompt_submit", "session_start", "session_end", "stop"}
)
SDK_HANDLER_TYPES = frozenset({"command", "prompt", "agent"})
_PASCAL_SPLIT = re.compile(r"(?<!^)(?=[A-Z])")
# An event name as written: PascalCase or snake_case (not "PreToolUse|Stop", not a path).
_EVENT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
# Keys of a list entry that narrow when its hook runs in a way we do not read: such an entry is
# dropped rather than run more widely than its author meant.
_NARROWING_KEYS = ("matchers", "match")
_HANDLER_KEYS = ("type", "command", "prompt", "system_prompt")
# Per hooks file (or agent), the problems listed one by one; the rest are counted in one line,
# so a file of a million bad entries (the size cap allows ~2 million) gives a few diagnostics.
MAX_REPORTS_PER_FILE = 20


class HooksReader(ComponentReader):
    """A plugin's hook files, and the hook configuration of an agent's frontmatter."""

    def __init__(self, ctx: LoadContext) -> None:
        super().__init__(ctx)
        self._left: int | None = None  # reports left in this file; None outside config()
        self._seen: set[tuple[str, str]] = set()
        self._suppressed = 0

    def _report(self, rel: str, reason: str, level: str = "warning") -> None:
        if self._left is not None and (rel, reason) not in self._seen:
            if self._left <= 0:
                self._suppressed += 1
                return
            self._left -= 1
            self._seen.add((rel, reason))
        self.ctx.report(rel, reason, level)

    def load(self, rel: str, extra: Any) -> HookConfig | None:
        config: HookConfig | None = None
        if self.fs.kind(rel, report=False) not in ("missing", None):
            if self.fs.kind(rel) == "file":
                data = self.ctx.json_file(rel)
                self.ctx.loaded_paths.add(self.fs.real(rel) or "")
                config = self.config(rel, data) if data is not MISSING else None
            else:
                self.fs.read_bytes(rel)  # reports what it is
        elif self.fs.lexists(rel):
            self.fs.real(rel)  # reports the escape
        if extra:
            config = self._extra_hooks(extra, config)
        return config

    def _extra_hooks(self, value: Any, config: HookConfig | None) -> HookConfig | None:
        sources: list[tuple[str, Any]] = []
        if isinstance(value, dict):
            sources.append((self.ctx.manifest_rel, value))
        else:
            if isinstance(value, list) and any(isinstance(item, dict) for item in value):
                # inline list-style entries ({"event": ..., "command": ...}) among the paths
                sources.append((self.ctx.manifest_rel,
                                [item for item in value if isinstance(item, dict)]))
                value = [item for item in value if not isinstance(item, dict)]
            for rel in self.ctx.paths_from_manifest("hooks", value):
                real = self.fs.real(rel)
                if real is None or real in self.ctx.loaded_paths:
                    continue
                if self.fs.kind(rel) != "file":
                    self._report(rel, "named in the manifest's 'hooks' but is not a file")
                    continue
                self.ctx.loaded_paths.add(real)
                data = self.ctx.json_file(rel)
                if data is not MISSING:
                    sources.append((rel, data))
        for rel, data in sources:
            more = self.config(rel, data,
                               where="hooks" if rel == self.ctx.manifest_rel else "")
            merged = dict(config or {})
            for event, matchers in more.items():
                merged[event] = merged.get(event, ()) + matchers
            config = merged
        return config

    def config(self, rel: str, data: Any, *, strict_events: bool = True,
               where: str = "") -> HookConfig:
        """The hooks of one file (or agent) *rel*: the map form or the list form; what cannot be
        read is reported and left out. *strict_events* reports events the SDK does not run;
        *where* names where *data* sits in *rel* (``hooks`` in a manifest or frontmatter)."""
        self._left, self._seen, self._suppressed = MAX_REPORTS_PER_FILE, set(), 0
        try:
            return self._config(rel, data, strict_events, where)
        finally:
            self._left = None
            if self._suppressed:
                self._report(rel, f"{self._suppressed} more problems in this file are not "
                             f"listed (only the first {MAX_REPORTS_PER_FILE} are)")

    def _config(self, rel: str, data: Any, strict_events: bool, where: str) -> HookConfig:
        if isinstance(data, list):
            return self._list_config(rel, where, data, strict_events)
        if not isinstance(data, dict):
            self._report(rel, f"hooks must be a JSON object or a list of hook entries, not "
                         f"{type_name(data)}; ignored")
            return {}
        if "hooks" in data and isinstance(data["hooks"], (dict, list)):
            self._beside_wrapper(rel, data)
            if isinstance(data["hooks"], list):
                return self._list_config(rel, "hooks", data["hooks"], strict_events)
            data = data["hooks"]
        elif "hooks" in data:
            self._report(rel, f"'hooks' must be an object of events or a list of hook entries, "
                         f"not {type_name(data['hooks'])}; ignored")
            data = {k: v for k, v in data.items() if k != "hooks"}
        config: HookConfig = {}
        for key, value in data.items():
            event = _snake(key)
            if event in config:
                self._report(rel, f"event {key!r} is given twice (PascalCase and snake_case); "
                             "the second is ignored")
                continue
            if event not in SDK_HOOK_EVENTS:
                if not isinstance(value, list):
                    self._report(rel, f"key {key!r} is not a hook event (its value is "
                                 f"{type_name(value)}); ignored")
                    continue
                if strict_events:
                    self._report(rel, f"event {key!r} is not one the OpenHands SDK runs; kept "
                                 "(the SDK drops this whole file)", "info")
            matchers = self._matchers(rel, key, value)
            if matchers is not None:
                config[event] = matchers
        return config

    def _beside_wrapper(self, rel: str, data: dict[str, Any]) -> None:
        """Keys beside a ``hooks`` wrapper are not read (nor by the SDK): a note for the usual
        ``description``/``$schema``, a warning for one that holds hooks (a list)."""
        others = sorted(k for k in data if k != "hooks")
        lost = [k for k in others if isinstance(data[k], list)]
        if lost:
            self.ctx.report(rel, f"top-level keys beside 'hooks' are not read, so their hooks "
                            f"do not run: {_some(map(repr, lost))} (move them into "
                            "'hooks')")
        notes = [k for k in others if k not in lost]
        if notes:
            self.ctx.report(rel, f"top-level keys beside 'hooks' ignored: "
                            f"{_some(notes)}", "info")

    def _list_config(self, rel: str, prefix: str, entries: list[Any],
                     strict_events: bool) -> HookConfig:
        """The list form: each entry names its ``event``; a handler entry becomes a matcher of
        its own, a matcher entry (one with ``hooks``) is read as the map form reads one."""
        if strict_events:  # once per file, outside the per-entry budget
            self.ctx.report(rel, "hooks written as a list of entries with an 'event' each: read "
                            "(the OpenHands SDK drops this file)", "info")
        config: dict[str, list[HookMatcher]] = {}
        for i, entry in enumerate(entries):
            where = f"{prefix}[{i}]"
            found = self._list_entry(rel, where, entry, strict_events)
            if found is not None:
                config.setdefault(found[0], []).append(found[1])
        return {event: tuple(matchers) for event, matchers in config.items()}

    def _list_entry(self, rel: str, where: str, entry: Any,
                    strict_events: bool) -> tuple[str, HookMatcher] | None:
        if not isinstance(entry, dict):
            self._report(rel, f"{where} must be an object with an 'event', not "
                         f"{type_name(entry)}; ignored")
            return None
        raw_event = entry.get("event", MISSING)
        if raw_event is MISSING:
            if any(isinstance(v, list) for v in entry.values()):
                self._report(rel, f"{where} has no 'event': a map of events inside the list is "
                             "not read (write the map form or one entry per event); ignored")
            else:
                self._report(rel, f"{where} has no 'event' (the event it runs on); ignored")
            return None
        if not isinstance(raw_event, str):
            self._report(rel, f"{where}.event must be a string, not {type_name(raw_event)}; "
                         "ignored")
            return None
        if not _EVENT_NAME.fullmatch(raw_event):
            self._report(rel, f"{where}.event {raw_event[:80]!r} is not an event name "
                         "(PascalCase or snake_case, e.g. 'PreToolUse'); ignored")
            return None
        event = _snake(raw_event)
        narrowing = [k for k in _NARROWING_KEYS if k in entry]
        if narrowing:
            self._report(rel, f"{where} limits when it runs with {narrowing[0]!r}, which is not "
                         "read (use 'matcher'); ignored rather than run for every tool")
            return None
        if "enabled" in entry and as_bool(entry["enabled"]) is not True:
            self._report(rel, f"{where} is not enabled ('enabled': {entry['enabled']!r}); "
                         "ignored", "info")
            return None
        matcher = entry.get("matcher", "*")
        if not isinstance(matcher, str):
            self._report(rel, f"{where}.matcher must be a string, not {type_name(matcher)}; "
                         "ignored")
            return None
        if "hooks" in entry:
            both = [k for k in _HANDLER_KEYS if k in entry]
            if both:
                self._report(rel, f"{where} has both 'hooks' and {both[0]!r}: a matcher or a "
                             "handler, not both; ignored")
                return None
            matchers = self._matchers(rel, where, [{"matcher": matcher,
                                                    "hooks": entry["hooks"]}], nested=False)
            if not matchers:
                return None
            found = matchers[0]
        else:
            raw = {k: v for k, v in entry.items() if k not in ("event", "matcher", "enabled")}
            handler = self._handler(rel, where, raw)
            if handler is None:
                return None
            found = HookMatcher(matcher=matcher, hooks=(handler,))
        if strict_events and event not in SDK_HOOK_EVENTS:
            self._report(rel, f"event {raw_event!r} is not one the OpenHands SDK runs; kept",
                         "info")
        return event, found

    def _matchers(self, rel: str, key: str, value: Any, *,
                  nested: bool = True) -> tuple[HookMatcher, ...] | None:
        if not isinstance(value, list):
            self._report(rel, f"event {key!r} must be a list of matchers, not "
                         f"{type_name(value)}; ignored")
            return None
        result = []
        for i, item in enumerate(value):
            where = f"{key}[{i}]" if nested else key
            if not isinstance(item, dict):
                self._report(rel, f"{where} must be an object; ignored")
                continue
            matcher = item.get("matcher", "*")
            if not isinstance(matcher, str):
                self._report(rel, f"{where}.matcher must be a string; ignored")
                continue
            handlers_raw = item.get("hooks", [])
            if "hooks" not in item and any(k in item for k in _HANDLER_KEYS):
                # A handler where a matcher belongs: kept as the SDK keeps it (a matcher with
                # no handlers), but said, since its command does not run.
                self._report(rel, f"{where} is a handler where a matcher belongs (no 'hooks' "
                             "list): it runs nothing; write {\"matcher\": ..., \"hooks\": "
                             "[{\"type\": ..., \"command\": ...}]}")
            if not isinstance(handlers_raw, list):
                self._report(rel, f"{where}.hooks must be a list; ignored")
                continue
            handlers = []
            for j, raw in enumerate(handlers_raw):
                handler = self._handler(rel, f"{where}.hooks[{j}]", raw)
                if handler is not None:
                    handlers.append(handler)
            result.append(HookMatcher(matcher=matcher, hooks=tuple(handlers)))
        return tuple(result)

    def _handler(self, rel: str, where: str, raw: Any) -> HookHandler | None:
        if not isinstance(raw, dict):
            self._report(rel, f"{where} must be an object; ignored")
            return None
        kind = raw.get("type", "command")
        if not isinstance(kind, str):
            self._report(rel, f"{where}.type must be a string; ignored")
            return None
        if kind not in SDK_HANDLER_TYPES:
            self._report(rel, f"{where} has handler type {kind!r}, which the OpenHands SDK does "
                         "not run; kept", "info")
        command = raw.get("command", "")
        if not isinstance(command, str):
            self._report(rel, f"{where}.command must be a string; ignored")
            return None
        if kind == "command" and not command:
            self._report(rel, f"{where} is a command handler without a 'command'; ignored")
            return None
        timeout = _as_int(raw.get("timeout", 60))
        if timeout is None:
            self._report(rel, f"{where}.timeout is not a whole number: {raw.get('timeout')!r}; "
                         "using 60")
            timeout = 60
        max_iterations = _as_int(raw.get("max_iterations", 3))
        if max_iterations is None:
            self._report(rel, f"{where}.max_iterations is not a whole number; using 3")
            max_iterations = 3
        tools = raw.get("tools", [])
        is_async = raw.get("async", raw.get("async_", False))
        known = {"type", "command", "timeout", "name", "prompt", "system_prompt", "tools",
                 "max_iterations", "async", "async_"}
        return HookHandler(
            type=kind,
            command=command,
            timeout=timeout,
            name=opt_str(raw.get("name")),
            prompt=opt_str(raw.get("prompt")),
            system_prompt=opt_str(raw.get("system_prompt")),
            tools=tuple(py_str(t) for t in tools) if isinstance(tools, list) else (),
            max_iterations=max_iterations,
            is_async=bool(as_bool(is_async)),
            extra={k: v for k, v in raw.items() if k not in known},
        )


def _some(names: Iterable[str], shown: int = 10) -> str:
    """The first *shown* of *names*, comma-separated, and how many more there are."""
    items = list(names)
    more = f" and {len(items) - shown} more" if len(items) > shown else ""
    return ", ".join(items[:shown]) + more


def _snake(event: str) -> str:
    return _PASCAL_SPLIT.sub("_", event).lower()


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        return int(value)
    return None
