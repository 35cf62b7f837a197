"""Commands (``commands/*.md``) and agents (``agents/*.md``): one Markdown file each, from the
default folder and then from the paths a manifest's ``commands`` / ``agents`` adds."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, TypeVar

from isolator.content import _frontmatter
from isolator.content._context import ComponentReader, py_str, type_name
from isolator.content._hooks import HooksReader
from isolator.content._model import Agent, Command

if TYPE_CHECKING:
    from collections.abc import Callable

    from isolator.content._context import LoadContext

_EXAMPLE = re.compile(r"<example>(.*?)</example>", re.DOTALL | re.IGNORECASE)
_Named = TypeVar("_Named", Command, Agent)


class CommandsReader(ComponentReader):
    """Commands and agents: the same discovery, two Markdown models."""

    def __init__(self, ctx: LoadContext) -> None:
        super().__init__(ctx)
        self.hooks = HooksReader(ctx)

    def commands(self, folder: str, extra_paths: Any) -> list[Command]:
        return self._components(folder, "commands", extra_paths, self._load_command)

    def agents(self, folder: str, extra_paths: Any) -> list[Agent]:
        return self._components(folder, "agents", extra_paths, self._load_agent)

    def _components(self, folder: str, key: str, extra_paths: Any,
                    load: Callable[[str], _Named | None]) -> list[_Named]:
        """The default folder's components, then those the manifest's ``key`` adds; a name
        already taken is reported and skipped, never replaced."""
        items = [item for rel in self.ctx.component_files(folder) if (item := load(rel))]
        if extra_paths:
            names = {item.name for item in items}
            for rel in self._extra_component_files(key, extra_paths):
                item = load(rel)
                if item is None:
                    continue
                if item.name in names:
                    self._report(rel, f"{key[:-1]} name {item.name!r} is taken; skipped")
                    continue
                names.add(item.name)
                items.append(item)
        return items

    def _extra_component_files(self, key: str, value: Any) -> list[str]:
        files = []
        for rel in self.ctx.paths_from_manifest(key, value):
            kind = self.fs.kind(rel)
            if kind == "dir":
                candidates = self.ctx.component_files(rel)
            elif kind == "file" and rel.lower().endswith(".md"):
                candidates = [rel]
            else:
                if kind == "missing":
                    self._report(rel, f"named in the manifest's '{key}' but does not exist")
                elif kind is not None:
                    self._report(rel, f"named in the manifest's '{key}' but is not a Markdown "
                                 "file or a folder")
                continue
            for candidate in candidates:
                real = self.fs.real(candidate)
                if real is not None and real not in self.ctx.loaded_paths:
                    files.append(candidate)
        return files

    def _load_command(self, rel: str) -> Command | None:
        parsed = self.ctx.markdown(rel)
        if parsed is None:
            return None
        fm, _ = parsed
        real = self.fs.real(rel)
        if real is not None:
            self.ctx.loaded_paths.add(real)
        meta = fm.metadata
        hint = meta.get("argument-hint") or meta.get("argumentHint")
        argument_hint = None
        if isinstance(hint, list):
            argument_hint = " ".join(py_str(h) for h in hint)
        elif hint is not None:
            argument_hint = py_str(hint)
        tools = meta.get("allowed-tools") or meta.get("allowedTools") or []
        if isinstance(tools, str):
            allowed: tuple[str, ...] = (tools,)
        elif isinstance(tools, list):
            allowed = tuple(py_str(t) for t in tools)
        else:
            self._report(rel, f"'allowed-tools' is {type_name(tools)}, expected a string or a "
                         "list; ignored")
            allowed = ()
        known = {"description", "argument-hint", "argumentHint", "allowed-tools", "allowedTools"}
        filename = rel.rsplit("/", 1)[-1]
        return Command(
            name=filename[: filename.rfind(".")],
            content=fm.body,
            source=self.fs.abspath(rel),
            description=py_str(meta.get("description", "")),
            argument_hint=argument_hint,
            allowed_tools=allowed,
            metadata=_frontmatter.to_json_value({k: v for k, v in meta.items()
                                                 if k not in known}),
        )

    def _load_agent(self, rel: str) -> Agent | None:
        parsed = self.ctx.markdown(rel)
        if parsed is None:
            return None
        fm, _ = parsed
        real = self.fs.real(rel)
        if real is not None:
            self.ctx.loaded_paths.add(real)
        meta = fm.metadata
        filename = rel.rsplit("/", 1)[-1]
        description = py_str(meta.get("description", ""))
        tools_raw = meta.get("tools", [])
        tools = (tools_raw,) if isinstance(tools_raw, str) else (
            tuple(py_str(t) for t in tools_raw) if isinstance(tools_raw, list) else ())
        skills_raw = meta.get("skills", [])
        if isinstance(skills_raw, str):
            skills = tuple(s.strip() for s in skills_raw.split(",") if s.strip())
        elif isinstance(skills_raw, list):
            skills = tuple(py_str(s) for s in skills_raw)
        else:
            skills = ()
        color = meta.get("color")
        agent_hooks = None
        if isinstance(meta.get("hooks"), (dict, list)):  # the SDK reads a dict only
            agent_hooks = self.hooks.config(rel, meta["hooks"], strict_events=False,
                                            where="hooks")
        elif meta.get("hooks") is not None:
            self._report(rel, f"'hooks' is {type_name(meta['hooks'])}, expected an object of "
                         "events or a list of hook entries; ignored")
        mcp_config = meta.get("mcp_config", meta.get("mcp_servers"))
        if mcp_config is not None and not isinstance(mcp_config, dict):
            self._report(rel, "'mcp_config' is not a mapping of server names; ignored")
            mcp_config = None
        profile_dir = meta.get("profile_store_dir")
        if profile_dir is not None and not isinstance(profile_dir, str):
            self._report(rel, "'profile_store_dir' is not a string; ignored")
            profile_dir = None
        known = {"name", "description", "model", "color", "tools", "skills",
                 "max_iteration_per_run", "max_budget_per_run", "hooks", "profile_store_dir",
                 "mcp_config", "mcp_servers", "permission_mode", "condenser"}
        return Agent(
            name=self.ctx.frontmatter_name(rel, meta, filename[: filename.rfind(".")]),
            system_prompt=fm.body,
            source=self.fs.abspath(rel),
            description=description,
            model=py_str(meta.get("model", "inherit")),
            color=py_str(color) if color is not None else None,
            tools=tools,
            skills=skills,
            when_to_use_examples=tuple(m.strip() for m in _EXAMPLE.findall(description)
                                       if m.strip()),
            permission_mode=self._permission_mode(rel, meta.get("permission_mode")),
            max_iteration_per_run=self._positive(rel, meta, "max_iteration_per_run", int),
            max_budget_per_run=self._positive(rel, meta, "max_budget_per_run", float),
            hooks=agent_hooks,
            mcp_config=_frontmatter.to_json_value(mcp_config),
            profile_store_dir=profile_dir,
            condenser=_frontmatter.to_json_value(meta.get("condenser")),
            metadata=_frontmatter.to_json_value({k: v for k, v in meta.items()
                                                 if k not in known}),
        )

    def _permission_mode(self, rel: str, raw: Any) -> str | None:
        if raw is None:
            return None
        value = py_str(raw).strip().lower()
        if value in ("always_confirm", "never_confirm", "confirm_risky"):
            return value
        self._report(rel, f"'permission_mode' {raw!r} is not one of always_confirm, "
                     "never_confirm, confirm_risky; ignored")
        return None

    def _positive(self, rel: str, meta: dict[str, Any], key: str, kind: type) -> Any:
        raw = meta.get(key)
        if raw is None or isinstance(raw, bool):
            return None
        try:
            value = kind(raw)
        except (TypeError, ValueError):
            self._report(rel, f"'{key}' is not a number: {raw!r}; ignored")
            return None
        if value <= 0:
            self._report(rel, f"'{key}' must be positive, not {raw!r}; ignored")
            return None
        return value
