"""Hooks: ``hooks/hooks.json`` and what a manifest's ``hooks`` adds (inline or files), and an
agent's frontmatter ``hooks``. Events are keyed snake_case, as the SDK keys them."""

from __future__ import annotations

import re
from typing import Any

from isolator.content._context import MISSING, ComponentReader, as_bool, opt_str, py_str, type_name
from isolator.content._model import HookConfig, HookHandler, HookMatcher

# Events the SDK knows. Others (Claude Code has many more) are kept and reported.
SDK_HOOK_EVENTS = frozenset(
    {"pre_tool_use", "post_tool_use", "user_prompt_submit", "session_start", "session_end", "stop"}
)
SDK_HANDLER_TYPES = frozenset({"command", "prompt", "agent"})
_PASCAL_SPLIT = re.compile(r"(?<!^)(?=[A-Z])")


class HooksReader(ComponentReader):
    """A plugin's hook files, and the hook configuration of an agent's frontmatter."""

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
            more = self.config(rel, data)
            merged = dict(config or {})
            for event, matchers in more.items():
                merged[event] = merged.get(event, ()) + matchers
            config = merged
        return config

    def config(self, rel: str, data: Any, *, strict_events: bool = True) -> HookConfig:
        if not isinstance(data, dict):
            self._report(rel, f"hooks must be a JSON object, not {type_name(data)}; ignored")
            return {}
        if "hooks" in data and isinstance(data["hooks"], dict):
            others = sorted(k for k in data if k != "hooks")
            if others:
                self._report(rel, f"top-level keys beside 'hooks' ignored: {', '.join(others)}",
                             "info")
            data = data["hooks"]
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

    def _matchers(self, rel: str, key: str, value: Any) -> tuple[HookMatcher, ...] | None:
        if not isinstance(value, list):
            self._report(rel, f"event {key!r} must be a list of matchers, not "
                         f"{type_name(value)}; ignored")
            return None
        result = []
        for i, item in enumerate(value):
            where = f"{key}[{i}]"
            if not isinstance(item, dict):
                self._report(rel, f"{where} must be an object; ignored")
                continue
            matcher = item.get("matcher", "*")
            if not isinstance(matcher, str):
                self._report(rel, f"{where}.matcher must be a string; ignored")
                continue
            handlers_raw = item.get("hooks", [])
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
