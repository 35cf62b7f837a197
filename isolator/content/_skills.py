"""Skills: ``skills/<x>/SKILL.md`` (AgentSkills form, with resources and a ``.mcp.json``), flat
``skills/*.md``, a root ``SKILL.md``, third-party files (``AGENTS.md``, ...) and the folders a
manifest's ``skills`` adds."""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Any

from isolator.content import _frontmatter
from isolator.content._context import (
    MISSING,
    ComponentReader,
    SkipFile,
    as_bool,
    py_str,
    type_name,
)
from isolator.content._mcp import McpReader
from isolator.content._model import Skill, SkillInput, SkillResources, Trigger

if TYPE_CHECKING:
    from isolator.content._context import LoadContext

_VAR_IN_CONTENT = re.compile(r"\$\{([a-zA-Z_][a-zA-Z0-9_]*)\}")
_THIRD_PARTY_SKILLS = {"agents.md": "agents", "agent.md": "agents", "claude.md": "claude",
                       "gemini.md": "gemini", ".cursorrules": "cursorrules"}
_MAX_DESCRIPTION = 1024
_CLIP_NOTICE = ("<response clipped><NOTE>Due to the max output limit, only part of the full "
                "description is shown. You can view the complete skill content at {source}."
                "</NOTE>")
_TASK_PROMPT = ("\n\nIf the user didn't provide any of these variables, ask the user to provide "
                "them first before the agent can proceed with the task.")


class SkillsReader(ComponentReader):
    """Every skill of the plugin, with the SDK's rules for names, triggers and duplicates."""

    def __init__(self, ctx: LoadContext) -> None:
        super().__init__(ctx)
        self.mcp = McpReader(ctx)

    def load(self, extra_paths: Any) -> list[Skill]:
        skills: list[Skill] = []
        if self.fs.lexists("skills"):
            kind = self.fs.kind("skills")
            if kind == "dir":
                skills = self._skills_dir("skills")
            elif kind is not None:
                self._report("skills", "is not a directory; no skills loaded")
        else:
            root_md = self._find_skill_md("")
            if root_md is not None:
                skill = self._load_skill(root_md, "", skip_mcp=True)
                skills = [skill] if skill else []
        for rel in self.ctx.paths_from_manifest("skills", extra_paths) if extra_paths else []:
            skills.extend(self._extra_skills(rel))
        return skills

    def _extra_skills(self, rel: str) -> list[Skill]:
        kind = self.fs.kind(rel)
        if kind != "dir":
            if kind == "missing":
                self._report(rel, "named in the manifest's 'skills' but does not exist")
            return []
        found = []
        md = self._find_skill_md(rel)
        candidates = [md] if md else [
            m for e in self.fs.listdir(rel) if e.kind == "dir"
            and (m := self._find_skill_md(e.rel)) is not None]
        for path in candidates:
            real = self.fs.real(path)
            if real is None or real in self.ctx.loaded_paths:
                continue
            skill = self._load_skill(path, rel)
            if skill:
                found.append(skill)
        return found

    def _find_skill_md(self, folder: str) -> str | None:
        for entry in self.fs.listdir(folder):
            if entry.kind == "file" and entry.name.lower() == "skill.md":
                return entry.rel
        return None

    def _skills_dir(self, folder: str) -> list[Skill]:
        skill_mds = []
        regular = []
        for entry in self.fs.listdir(folder):
            if entry.kind == "dir":
                md = self._find_skill_md(entry.rel)
                if md is not None:
                    skill_mds.append(md)
            elif entry.name.endswith(".md") and entry.name.lower() != "readme.md":
                if entry.kind == "file":
                    regular.append(entry.rel)
                elif entry.kind == "other":
                    self.fs.read_bytes(entry.rel)  # reports what it is
        # The SDK files skills into three dicts keyed by name (SKILL.md skills; skills without
        # trigger; skills with one): a later skill of the same name and kind replaces an
        # earlier one. We keep the same winner and report the loser.
        kinds: tuple[dict[str, Skill], dict[str, Skill], dict[str, Skill]] = ({}, {}, {})
        for rel in skill_mds + regular:
            skill = self._load_skill(rel, folder)
            if skill is None:
                continue
            bucket = kinds[0] if rel.lower().endswith("skill.md") else (
                kinds[1] if skill.trigger is None else kinds[2])
            old = bucket.get(skill.name)
            if old is not None:
                self._report(os.path.relpath(old.source, self.fs.root),
                             f"skill name {skill.name!r} is used again by "
                             f"{os.path.relpath(skill.source, self.fs.root)}, which wins")
            bucket[skill.name] = skill
        every = [s for bucket in kinds for s in bucket.values()]
        return sorted(every, key=lambda s: s.source.split("/"))

    def _load_skill(self, rel: str, base: str, *, skip_mcp: bool = False) -> Skill | None:
        parsed = self.ctx.markdown(rel)
        if parsed is None:
            return None
        fm, text = parsed
        real = self.fs.real(rel)
        if real is not None:
            self.ctx.loaded_paths.add(real)
        source = self.fs.abspath(rel)
        filename = rel.rsplit("/", 1)[-1]
        try:
            if filename.lower() == "skill.md":
                folder = rel.rsplit("/", 1)[0] if "/" in rel else ""
                dirname = os.path.basename(self.fs.abspath(folder)) if folder else \
                    self.ctx.root_name
                return self._skill_from(rel, fm, source, dirname, agentskills=True,
                                        folder=folder, skip_mcp=skip_mcp)
            third_party = _THIRD_PARTY_SKILLS.get(filename.lower())
            if third_party is not None:
                return Skill(name=third_party, content=text, source=source)
            stem = rel[len(base) + 1:] if base else rel
            return self._skill_from(rel, fm, source, stem[: -len(".md")], agentskills=False)
        except SkipFile as exc:
            self._report(rel, f"skill not loaded: {exc}")
            return None

    def _skill_from(self, rel: str, fm: _frontmatter.Frontmatter, source: str, default_name: str,
                    *, agentskills: bool, folder: str = "", skip_mcp: bool = False) -> Skill:
        meta = fm.metadata
        name = self.ctx.frontmatter_name(rel, meta, default_name)
        mcp_tools: dict[str, Any] | None = None
        resources = None
        if agentskills:
            if not skip_mcp:
                mcp_tools = self._skill_mcp(folder)
            resources = self._resources(folder)
        elif meta.get("mcp_tools") is not None:
            if isinstance(meta["mcp_tools"], dict):
                mcp_tools = _frontmatter.to_json_value(meta["mcp_tools"])
            else:
                self._report(rel, "frontmatter 'mcp_tools' is not a mapping; ignored")

        allowed = meta.get("allowed-tools", meta.get("allowed_tools"))
        allowed_tools: tuple[str, ...] | None = None
        if isinstance(allowed, str):
            allowed_tools = tuple(allowed.split())
        elif isinstance(allowed, list):
            allowed_tools = tuple(str(t) for t in allowed)
        elif allowed is not None:
            self._report(rel, f"'allowed-tools' is {type_name(allowed)}, expected a string "
                         "or a list; ignored")

        disable = meta.get("disable-model-invocation", meta.get("disable_model_invocation"))
        disable_model_invocation = False
        if disable is not None:
            flag = as_bool(disable)
            if flag is None:
                self._report(rel, f"'disable-model-invocation' is not a boolean: {disable!r}; "
                             "ignored")
            else:
                disable_model_invocation = flag

        description = self._opt_str(rel, meta, "description")
        if description is not None and len(description) > _MAX_DESCRIPTION:
            self._report(rel, f"description is {len(description)} characters; clipped to "
                         f"{_MAX_DESCRIPTION} as the SDK clips it", "info")
            description = _clip(description, _CLIP_NOTICE.format(source=source))

        metadata = meta.get("metadata")
        if metadata is not None and not isinstance(metadata, dict):
            self._report(rel, f"'metadata' is {type_name(metadata)}, expected a mapping; "
                         "ignored")
            metadata = None
        str_metadata = {str(k): py_str(v) for k, v in metadata.items()} if metadata else (
            {} if metadata == {} else None)

        keywords = meta.get("triggers", [])
        if keywords is None:
            keywords = []
        if not isinstance(keywords, list):
            if isinstance(keywords, str):
                self._report(rel, "'triggers' is a string; read as a one-item list", "info")
                keywords = [keywords]
            else:
                raise SkipFile(f"'triggers' must be a list of strings, not "
                                f"{type_name(keywords)}")
        keywords = [str(k) for k in keywords]
        paths = self._paths(rel, meta.get("paths"))
        content = fm.body
        inputs: tuple[SkillInput, ...] = ()
        trigger = None
        if paths:
            trigger = Trigger("path", tuple(paths))
            disable_model_invocation = True
        elif "inputs" in meta:
            if f"/{name}" not in keywords:
                keywords.append(f"/{name}")
            inputs = self._inputs(rel, meta.get("inputs"))
            trigger = Trigger("task", tuple(keywords))
            if (_VAR_IN_CONTENT.search(content) or inputs) and _TASK_PROMPT not in content \
                    and content:
                content += _TASK_PROMPT
        elif meta.get("triggers"):
            trigger = Trigger("keyword", tuple(keywords))

        return Skill(
            name=name,
            content=content,
            source=source,
            description=description,
            trigger=trigger,
            allowed_tools=allowed_tools,
            license=self._opt_str(rel, meta, "license"),
            compatibility=self._opt_str(rel, meta, "compatibility"),
            metadata=str_metadata,
            disable_model_invocation=disable_model_invocation,
            is_agentskills_format=agentskills,
            inputs=inputs,
            resources=resources,
            mcp_tools=mcp_tools,
        )

    def _opt_str(self, rel: str, meta: dict[str, Any], key: str) -> str | None:
        value = meta.get(key)
        if value is None or isinstance(value, str):
            return value
        self._report(rel, f"'{key}' is {type_name(value)}, expected a string; converted",
                     "info")
        return py_str(value)

    def _paths(self, rel: str, value: Any) -> list[str]:
        if value is None:
            return []
        if isinstance(value, str):
            value = value.split(",")
        elif not isinstance(value, list):
            self._report(rel, f"'paths' is {type_name(value)}, expected a string or a list; "
                         "ignored")
            return []
        return [s for p in value if (s := py_str(p).strip())]

    def _inputs(self, rel: str, value: Any) -> tuple[SkillInput, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            raise SkipFile("'inputs' must be a list")
        result = []
        for item in value:
            if not (isinstance(item, dict) and isinstance(item.get("name"), str)
                    and isinstance(item.get("description"), str)):
                raise SkipFile("each of 'inputs' must have a string 'name' and 'description'")
            result.append(SkillInput(item["name"], item["description"]))
        return tuple(result)

    def _skill_mcp(self, folder: str) -> dict[str, Any] | None:
        rel = f"{folder}/.mcp.json" if folder else ".mcp.json"
        if self.fs.kind(rel, report=False) != "file":
            if self.fs.lexists(rel):
                self.fs.real(rel)  # reports an escape
            return None
        data = self.ctx.json_file(rel)
        if data is MISSING:
            return None
        servers = self.mcp.servers(rel, data, wrapped_only=True)
        return {name: dict(s.config) for name, s in servers.items()}

    def _resources(self, folder: str) -> SkillResources | None:
        found: dict[str, tuple[str, ...]] = {}
        for kind in ("scripts", "references", "assets"):
            rel = f"{folder}/{kind}" if folder else kind
            if self.fs.kind(rel, report=False) == "dir":
                found[kind] = tuple(sorted(self.fs.walk_files(
                    rel, self.ctx.limits.max_resource_files)))
        if not any(found.values()):
            return None
        real = self.fs.real(folder, report=False) or self.fs.abspath(folder)
        return SkillResources(skill_root=real, **found)


def _clip(text: str, notice: str) -> str:
    """Keep head and tail of ``text`` around ``notice`` in at most 1024 characters (the SDK's
    ``maybe_truncate``)."""
    limit = _MAX_DESCRIPTION
    if len(notice) >= limit:
        return notice[:limit]
    available = limit - len(notice)
    head = available // 2 + available % 2
    tail = available - head
    return text[:head] + notice + (text[-tail:] if tail > 0 else "")
