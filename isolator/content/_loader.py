"""The content loader: a plugin directory, read as data, into the model of ``_model``.

It reads the OpenHands-SDK/Claude-Code layout and the Agent Plugins layout as
``openhands-sdk==1.58.0``'s ``Plugin.load`` does (the reference, see docs/content.md) and is a
strict superset of it: whatever the SDK loads we load identically; where the SDK drops a whole
file for one bad field, or ignores a manifest's component paths, we load what we can and say so
in a diagnostic. Nothing in the plugin is imported or run, and nothing outside its root is read.
"""

from __future__ import annotations

import json
import os
import re
from typing import TYPE_CHECKING, Any, TypeVar

from isolator._errors import PluginLoadError
from isolator.content import _frontmatter
from isolator.content._fsread import LoadLimits, PluginFS
from isolator.content._model import (
    Agent,
    Author,
    Command,
    Diagnostic,
    HookConfig,
    HookHandler,
    HookMatcher,
    Manifest,
    McpServer,
    Plugin,
    Skill,
    SkillInput,
    SkillResources,
    Trigger,
)

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["load_plugin"]

# Events the SDK knows. Others (Claude Code has many more) are kept and reported.
SDK_HOOK_EVENTS = frozenset(
    {"pre_tool_use", "post_tool_use", "user_prompt_submit", "session_start", "session_end", "stop"}
)
SDK_HANDLER_TYPES = frozenset({"command", "prompt", "agent"})
_PASCAL_SPLIT = re.compile(r"(?<!^)(?=[A-Z])")
_EXAMPLE = re.compile(r"<example>(.*?)</example>", re.DOTALL | re.IGNORECASE)
_VAR_IN_CONTENT = re.compile(r"\$\{([a-zA-Z_][a-zA-Z0-9_]*)\}")
_THIRD_PARTY_SKILLS = {"agents.md": "agents", "agent.md": "agents", "claude.md": "claude",
                       "gemini.md": "gemini", ".cursorrules": "cursorrules"}
_MAX_DESCRIPTION = 1024
_CLIP_NOTICE = ("<response clipped><NOTE>Due to the max output limit, only part of the full "
                "description is shown. You can view the complete skill content at {source}."
                "</NOTE>")
_TASK_PROMPT = ("\n\nIf the user didn't provide any of these variables, ask the user to provide "
                "them first before the agent can proceed with the task.")
_AGENT_PLUGINS_SCHEMA = "https://agent-plugins.org/schemas/1.0.0/plugin.schema.json"
_AGENT_PLUGINS_NAME = re.compile(r"^(?!.*(?:--|\.\.))[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?\Z")
_AGENT_PLUGINS_FIELDS = frozenset({"$schema", "name", "version", "description", "author",
                                   "homepage", "repository", "license", "keywords",
                                   "extensions"})
_EXTENSION_DIR = "dev.openhands"
_MCP_FIELDS = frozenset({"url", "transport", "command", "args", "env", "cwd", "description",
                         "icon", "timeout", "sse_read_timeout", "keep_alive", "headers", "auth",
                         "enabled"})
_MCP_TRANSPORTS = frozenset({"stdio", "http", "streamable-http", "sse"})
_BOOL_STRINGS = {"true": True, "false": False, "yes": True, "no": False, "on": True,
                 "off": False, "t": True, "f": False, "y": True, "n": False, "1": True,
                 "0": False}


_Named = TypeVar("_Named", Command, Agent)


class _SkipFile(Exception):
    """A component file that cannot be loaded at all; the message is its diagnostic."""


def load_plugin(path: str | os.PathLike[str], *, name: str | None = None,
                limits: LoadLimits | None = None) -> Plugin:
    """Load the plugin directory at ``path`` without importing or running anything in it.

    *name* stands for the directory's own name wherever the loader would use it: a plugin
    without a manifest is named after its directory, as the SDK names it. The store passes the
    installed plugin's name (a package's entry point name), so the same content loads the
    same from a git checkout, a copy in the store and a venv's site-packages.

    Raises :class:`PluginLoadError` when the directory is missing or its manifest is unusable;
    every other problem skips the file or field concerned and is listed in
    ``Plugin.diagnostics``.
    """
    return _Loader(path, limits or LoadLimits(), name).load()


def _snake(event: str) -> str:
    return _PASCAL_SPLIT.sub("_", event).lower()


def _type_name(value: object) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            int: "a number", float: "a number", type(None): "null"}.get(type(value),
                                                                       type(value).__name__)


class _Loader:
    def __init__(self, path: str | os.PathLike[str], limits: LoadLimits,
                 name: str | None = None) -> None:
        given = os.fspath(path)
        try:
            real = os.path.realpath(given, strict=False)
        except (OSError, ValueError) as exc:
            raise PluginLoadError(given, f"cannot be resolved: {exc}") from None
        if not os.path.exists(real):
            raise PluginLoadError(given, "no such plugin directory")
        if not os.path.isdir(real):
            raise PluginLoadError(given, "is not a directory (expected a plugin directory)")
        self.diagnostics: list[Diagnostic] = []
        self.fs = PluginFS(real, limits, self.diagnostics)
        self.root_name = name if name else os.path.basename(real)
        """The directory's name, as far as content goes (see :func:`load_plugin`)."""
        self.limits = limits
        self.manifest_rel = "."
        self.loaded_paths: set[str] = set()
        """Resolved paths of component files already loaded, so manifest paths only add."""

    # ----------------------------------------------------------------------------- assembly
    def load(self) -> Plugin:
        agent_plugins = self._is_agent_plugins()
        component_paths: dict[str, Any] = {}
        if agent_plugins:
            manifest = self._agent_plugins_manifest()
            ext = _EXTENSION_DIR
        else:
            manifest, component_paths = self._claude_manifest()
            ext = ""
        skills = self._skills(component_paths.get("skills"))
        hooks = self._hooks(f"{ext}/hooks/hooks.json" if ext else "hooks/hooks.json",
                            component_paths.get("hooks"))
        if agent_plugins:
            mcp = self._agent_plugins_mcp()
        else:
            mcp = self._mcp(component_paths.get("mcpServers"))
        agents = self._agents(f"{ext}/agents" if ext else "agents", component_paths.get("agents"))
        commands = self._commands(f"{ext}/commands" if ext else "commands",
                                  component_paths.get("commands"))
        return Plugin(
            root=self.fs.root,
            manifest=manifest,
            skills=tuple(skills),
            commands=tuple(commands),
            agents=tuple(agents),
            hooks=hooks,
            mcp_servers=mcp,
            diagnostics=tuple(self.diagnostics),
        )

    def _report(self, rel: str, reason: str, level: str = "warning") -> None:
        self.fs.report(rel, reason, level)

    # ----------------------------------------------------------------------------- manifest
    def _is_agent_plugins(self) -> bool:
        if self.fs.kind("plugin.json", report=False) != "file":
            return False
        data = self.fs.read_bytes("plugin.json")
        if data is None:
            return True  # unreadable: let the manifest loader report it, as the SDK does
        try:
            parsed = json.loads(data.decode("utf-8-sig"))
        except (ValueError, RecursionError):
            return True
        return not isinstance(parsed, dict) or "$schema" in parsed

    def _read_manifest_json(self, rel: str) -> dict[str, Any]:
        if self.fs.real(rel, report=False) is None:
            raise PluginLoadError(self.fs.abspath(rel), "manifest resolves outside the plugin "
                                  "root; refused")
        before = len(self.diagnostics)
        data = self.fs.read_bytes(rel)
        if data is None:
            reason = self.diagnostics[-1].reason if len(self.diagnostics) > before else "unreadable"
            raise PluginLoadError(self.fs.abspath(rel), f"manifest {reason}")
        try:
            parsed = json.loads(data.decode("utf-8-sig"))
        except UnicodeDecodeError as exc:
            raise PluginLoadError(self.fs.abspath(rel),
                                  f"manifest is not valid UTF-8 (byte {exc.start})") from None
        except RecursionError:
            raise PluginLoadError(self.fs.abspath(rel), "manifest is nested too deeply") from None
        except ValueError as exc:
            raise PluginLoadError(self.fs.abspath(rel),
                                  f"manifest is not valid JSON: {exc}") from None
        if not isinstance(parsed, dict):
            raise PluginLoadError(self.fs.abspath(rel), "manifest must be a JSON object, "
                                  f"not {_type_name(parsed)}")
        return parsed

    def _claude_manifest(self) -> tuple[Manifest, dict[str, Any]]:
        rel = next((c for c in (".plugin/plugin.json", ".claude-plugin/plugin.json")
                    if self.fs.lexists(c)), None)
        if rel is None:
            name = self.root_name
            return Manifest(name=name, description=f"Plugin loaded from {name}"), {}
        self.manifest_rel = rel
        data = self._read_manifest_json(rel)
        if "name" not in data:
            raise PluginLoadError(self.fs.abspath(rel), "manifest lacks the required field "
                                  "'name' (a string, the plugin's kebab-case name)")
        name = data["name"]
        if not isinstance(name, str):
            raise PluginLoadError(self.fs.abspath(rel), "manifest field 'name' must be a "
                                  f"string, not {_type_name(name)}")
        if not name:
            self._report(rel, "field 'name' is empty")
        version = self._manifest_str(rel, data, "version", "1.0.0")
        description = self._manifest_str(rel, data, "description", "")
        entry_command = self._manifest_str(rel, data, "entry_command", None)
        author = self._author(rel, data.get("author"))
        known = {"name", "version", "description", "author", "entry_command"}
        extra = {k: v for k, v in data.items() if k not in known}
        components: dict[str, Any] = {k: extra[k] for k in ("skills", "commands", "agents", "hooks",
                                            "mcpServers") if k in extra}
        manifest = Manifest(name=name, version=version, description=description,
                            author=author, entry_command=entry_command, extra=extra, path=rel)
        return manifest, components

    def _manifest_str(self, rel: str, data: dict[str, Any], key: str,
                      default: str | None) -> Any:
        if key not in data:
            return default
        value = data[key]
        if isinstance(value, str) or (value is None and default is None):
            return value
        self._report(rel, f"field '{key}' must be a string, not {_type_name(value)}; "
                     f"using {default!r}")
        return default

    def _author(self, rel: str, value: Any) -> Author | None:
        if value is None:
            return None
        if isinstance(value, str):
            if "<" in value and ">" in value:
                return Author(name=value.split("<")[0].strip(),
                              email=value.split("<")[1].split(">")[0].strip())
            return Author(name=value.strip())
        if isinstance(value, dict):
            fields: dict[str, Any] = {}
            for key in ("name", "email", "url"):
                item = value.get(key)
                if key in value and not isinstance(item, str) and not (
                        item is None and key != "name"):
                    self._report(rel, f"field 'author.{key}' must be a string, not "
                                 f"{_type_name(item)}; ignored")
                    continue
                if key in value:
                    fields[key] = item
            return Author(**fields)
        self._report(rel, f"field 'author' must be an object or a string, not "
                     f"{_type_name(value)}; ignored")
        return None

    def _agent_plugins_manifest(self) -> Manifest:
        rel = "plugin.json"
        path = self.fs.abspath(rel)
        data = self._read_manifest_json(rel)
        if data.get("$schema") != _AGENT_PLUGINS_SCHEMA:
            raise PluginLoadError(path, f"unsupported or missing $schema {data.get('$schema')!r}"
                                  f" (expected {_AGENT_PLUGINS_SCHEMA})")
        unknown = sorted(set(data) - _AGENT_PLUGINS_FIELDS)
        if unknown:
            self._report(rel, f"unknown top-level field(s) ignored: {', '.join(unknown)}")
            data = {k: v for k, v in data.items() if k not in unknown}
        if "extensions" in data and not isinstance(data["extensions"], dict):
            self._report(rel, "field 'extensions' is not an object; ignored")
            del data["extensions"]
        name = data.get("name")
        if not isinstance(name, str) or not 1 <= len(name) <= 64 or not \
                _AGENT_PLUGINS_NAME.match(name):
            raise PluginLoadError(path, f"field 'name' {name!r} is not a valid Agent Plugins "
                                  "name (lowercase letters, digits, '.' and '-', at most 64)")
        for key in ("version", "description", "homepage", "repository", "license"):
            if key in data and not isinstance(data[key], str):
                raise PluginLoadError(path, f"field '{key}' must be a string, not "
                                      f"{_type_name(data[key])}")
        keywords = data.get("keywords", [])
        if not isinstance(keywords, list) or not all(isinstance(k, str) for k in keywords):
            raise PluginLoadError(path, "field 'keywords' must be a list of strings")
        author = data.get("author")
        if author is not None and (not isinstance(author, dict) or set(author) - {
                "name", "email", "url"} or not all(isinstance(v, str) for v in author.values())):
            raise PluginLoadError(path, "field 'author' must be an object with string "
                                      "'name', 'email' and 'url' only")
        extensions = data.get("extensions", {})
        if not all(isinstance(v, dict) for v in extensions.values()):
            raise PluginLoadError(path, "every value of 'extensions' must be an object")
        entry_command = None
        ours = extensions.get(_EXTENSION_DIR) or {}
        if ours.get("entry_command") is not None:
            if isinstance(ours["entry_command"], str):
                entry_command = ours["entry_command"] or None
            else:
                self._report(rel, "extensions['dev.openhands'].entry_command is not a "
                             "string; ignored")
        known = {"name", "version", "description", "author"}
        return Manifest(
            name=name,
            version=data.get("version", "1.0.0"),
            description=data.get("description", ""),
            author=Author(**author) if isinstance(author, dict) else None,
            entry_command=entry_command,
            extra={k: v for k, v in data.items() if k not in known},
            path=rel,
            format="agent-plugins",
        )

    # ----------------------------------------------------------------------------- documents
    def _markdown(self, rel: str) -> tuple[_frontmatter.Frontmatter, str] | None:
        text = self.fs.read_text(rel)
        if text is None:
            return None
        fm = _frontmatter.parse(text, self.limits.max_yaml_depth)
        if fm.problem:
            self._report(rel, fm.problem, "info" if fm.lenient else "warning")
        return fm, text

    def _json(self, rel: str) -> Any:
        data = self.fs.read_bytes(rel)
        if data is None:
            return _MISSING
        try:
            return json.loads(data.decode("utf-8"))
        except UnicodeDecodeError as exc:
            self._report(rel, f"is not valid UTF-8 (byte {exc.start}); ignored")
        except RecursionError:
            self._report(rel, "is nested too deeply; ignored")
        except ValueError as exc:
            self._report(rel, f"is not valid JSON ({exc}); ignored")
        return _MISSING

    def _component_files(self, folder: str) -> list[str]:
        """Top-level ``*.md`` files of a component folder (commands/, agents/), README aside."""
        kind = self.fs.kind(folder)
        if kind != "dir":
            return []
        found = []
        for entry in self.fs.listdir(folder):
            if entry.kind == "dir" or not entry.name.lower().endswith(".md") or \
                    entry.name in ("README.md", "readme.md"):
                continue
            if entry.name.lower() == ".md":
                continue  # no stem: not a component file (the SDK's suffix test agrees)
            if entry.kind == "other":
                self.fs.read_bytes(entry.rel)  # reports what it is
                continue
            found.append(entry.rel)
        return found

    def _paths_from_manifest(self, key: str, value: Any) -> list[str]:
        """Relative paths named by a manifest component field (``"./x"`` or a list of them)."""
        rel = self.manifest_rel
        items = value if isinstance(value, list) else [value]
        paths = []
        for item in items:
            if not isinstance(item, str):
                self._report(rel, f"manifest field '{key}' holds {_type_name(item)}; "
                             "expected './path' strings; ignored", "info")
                continue
            clean = os.path.normpath(item.strip())
            if os.path.isabs(clean) or clean == ".." or clean.startswith("../"):
                self._report(rel, f"manifest path {item!r} in '{key}' leaves the plugin root; "
                             "refused")
                continue
            paths.append("" if clean == "." else clean)
        return paths

    # ----------------------------------------------------------------------------- skills
    def _skills(self, extra_paths: Any) -> list[Skill]:
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
        for rel in self._paths_from_manifest("skills", extra_paths) if extra_paths else []:
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
            if real is None or real in self.loaded_paths:
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
        parsed = self._markdown(rel)
        if parsed is None:
            return None
        fm, text = parsed
        real = self.fs.real(rel)
        if real is not None:
            self.loaded_paths.add(real)
        source = self.fs.abspath(rel)
        filename = rel.rsplit("/", 1)[-1]
        try:
            if filename.lower() == "skill.md":
                folder = rel.rsplit("/", 1)[0] if "/" in rel else ""
                dirname = os.path.basename(self.fs.abspath(folder)) if folder else \
                    self.root_name
                return self._skill_from(rel, fm, source, dirname, agentskills=True,
                                        folder=folder, skip_mcp=skip_mcp)
            third_party = _THIRD_PARTY_SKILLS.get(filename.lower())
            if third_party is not None:
                return Skill(name=third_party, content=text, source=source)
            stem = rel[len(base) + 1:] if base else rel
            return self._skill_from(rel, fm, source, stem[: -len(".md")], agentskills=False)
        except _SkipFile as exc:
            self._report(rel, f"skill not loaded: {exc}")
            return None

    def _skill_from(self, rel: str, fm: _frontmatter.Frontmatter, source: str, default_name: str,
                    *, agentskills: bool, folder: str = "", skip_mcp: bool = False) -> Skill:
        meta = fm.metadata
        name = self._name(rel, meta, default_name)
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
            self._report(rel, f"'allowed-tools' is {_type_name(allowed)}, expected a string "
                         "or a list; ignored")

        disable = meta.get("disable-model-invocation", meta.get("disable_model_invocation"))
        disable_model_invocation = False
        if disable is not None:
            flag = self._bool(disable)
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
            self._report(rel, f"'metadata' is {_type_name(metadata)}, expected a mapping; "
                         "ignored")
            metadata = None
        str_metadata = {str(k): _py_str(v) for k, v in metadata.items()} if metadata else (
            {} if metadata == {} else None)

        keywords = meta.get("triggers", [])
        if keywords is None:
            keywords = []
        if not isinstance(keywords, list):
            if isinstance(keywords, str):
                self._report(rel, "'triggers' is a string; read as a one-item list", "info")
                keywords = [keywords]
            else:
                raise _SkipFile(f"'triggers' must be a list of strings, not "
                                f"{_type_name(keywords)}")
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

    def _name(self, rel: str, meta: dict[str, Any], default: str) -> str:
        if "name" not in meta:
            return default
        value = meta["name"]
        if value is None:
            self._report(rel, "frontmatter 'name' is empty; named 'None' as the SDK names it",
                         "info")
        return _py_str(value)

    def _opt_str(self, rel: str, meta: dict[str, Any], key: str) -> str | None:
        value = meta.get(key)
        if value is None or isinstance(value, str):
            return value
        self._report(rel, f"'{key}' is {_type_name(value)}, expected a string; converted",
                     "info")
        return _py_str(value)

    @staticmethod
    def _bool(value: Any) -> bool | None:
        if isinstance(value, bool):
            return value
        if isinstance(value, (int, float)) and value in (0, 1):
            return bool(value)
        if isinstance(value, str):
            return _BOOL_STRINGS.get(value.strip().lower())
        return None

    def _paths(self, rel: str, value: Any) -> list[str]:
        if value is None:
            return []
        if isinstance(value, str):
            value = value.split(",")
        elif not isinstance(value, list):
            self._report(rel, f"'paths' is {_type_name(value)}, expected a string or a list; "
                         "ignored")
            return []
        return [s for p in value if (s := _py_str(p).strip())]

    def _inputs(self, rel: str, value: Any) -> tuple[SkillInput, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            raise _SkipFile("'inputs' must be a list")
        result = []
        for item in value:
            if not (isinstance(item, dict) and isinstance(item.get("name"), str)
                    and isinstance(item.get("description"), str)):
                raise _SkipFile("each of 'inputs' must have a string 'name' and 'description'")
            result.append(SkillInput(item["name"], item["description"]))
        return tuple(result)

    def _skill_mcp(self, folder: str) -> dict[str, Any] | None:
        rel = f"{folder}/.mcp.json" if folder else ".mcp.json"
        if self.fs.kind(rel, report=False) != "file":
            if self.fs.lexists(rel):
                self.fs.real(rel)  # reports an escape
            return None
        data = self._json(rel)
        if data is _MISSING:
            return None
        servers = self._mcp_servers(rel, data, wrapped_only=True)
        return {name: dict(s.config) for name, s in servers.items()}

    def _resources(self, folder: str) -> SkillResources | None:
        found: dict[str, tuple[str, ...]] = {}
        for kind in ("scripts", "references", "assets"):
            rel = f"{folder}/{kind}" if folder else kind
            if self.fs.kind(rel, report=False) == "dir":
                found[kind] = tuple(sorted(self.fs.walk_files(
                    rel, self.limits.max_resource_files)))
        if not any(found.values()):
            return None
        real = self.fs.real(folder, report=False) or self.fs.abspath(folder)
        return SkillResources(skill_root=real, **found)

    # ----------------------------------------------------------------------------- commands
    def _commands(self, folder: str, extra_paths: Any) -> list[Command]:
        return self._components(folder, "commands", extra_paths, self._load_command)

    def _components(self, folder: str, key: str, extra_paths: Any,
                    load: Callable[[str], _Named | None]) -> list[_Named]:
        """The default folder's components, then those the manifest's ``key`` adds; a name
        already taken is reported and skipped, never replaced."""
        items = [item for rel in self._component_files(folder) if (item := load(rel))]
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
        for rel in self._paths_from_manifest(key, value):
            kind = self.fs.kind(rel)
            if kind == "dir":
                candidates = self._component_files(rel)
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
                if real is not None and real not in self.loaded_paths:
                    files.append(candidate)
        return files

    def _load_command(self, rel: str) -> Command | None:
        parsed = self._markdown(rel)
        if parsed is None:
            return None
        fm, _ = parsed
        real = self.fs.real(rel)
        if real is not None:
            self.loaded_paths.add(real)
        meta = fm.metadata
        hint = meta.get("argument-hint") or meta.get("argumentHint")
        argument_hint = None
        if isinstance(hint, list):
            argument_hint = " ".join(_py_str(h) for h in hint)
        elif hint is not None:
            argument_hint = _py_str(hint)
        tools = meta.get("allowed-tools") or meta.get("allowedTools") or []
        if isinstance(tools, str):
            allowed: tuple[str, ...] = (tools,)
        elif isinstance(tools, list):
            allowed = tuple(_py_str(t) for t in tools)
        else:
            self._report(rel, f"'allowed-tools' is {_type_name(tools)}, expected a string or a "
                         "list; ignored")
            allowed = ()
        known = {"description", "argument-hint", "argumentHint", "allowed-tools", "allowedTools"}
        filename = rel.rsplit("/", 1)[-1]
        return Command(
            name=filename[: filename.rfind(".")],
            content=fm.body,
            source=self.fs.abspath(rel),
            description=_py_str(meta.get("description", "")),
            argument_hint=argument_hint,
            allowed_tools=allowed,
            metadata=_frontmatter.to_json_value({k: v for k, v in meta.items()
                                                 if k not in known}),
        )

    # ----------------------------------------------------------------------------- agents
    def _agents(self, folder: str, extra_paths: Any) -> list[Agent]:
        return self._components(folder, "agents", extra_paths, self._load_agent)

    def _load_agent(self, rel: str) -> Agent | None:
        parsed = self._markdown(rel)
        if parsed is None:
            return None
        fm, _ = parsed
        real = self.fs.real(rel)
        if real is not None:
            self.loaded_paths.add(real)
        meta = fm.metadata
        filename = rel.rsplit("/", 1)[-1]
        description = _py_str(meta.get("description", ""))
        tools_raw = meta.get("tools", [])
        tools = (tools_raw,) if isinstance(tools_raw, str) else (
            tuple(_py_str(t) for t in tools_raw) if isinstance(tools_raw, list) else ())
        skills_raw = meta.get("skills", [])
        if isinstance(skills_raw, str):
            skills = tuple(s.strip() for s in skills_raw.split(",") if s.strip())
        elif isinstance(skills_raw, list):
            skills = tuple(_py_str(s) for s in skills_raw)
        else:
            skills = ()
        color = meta.get("color")
        agent_hooks = None
        if isinstance(meta.get("hooks"), dict):
            agent_hooks = self._hook_config(rel, meta["hooks"], strict_events=False)
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
            name=self._name(rel, meta, filename[: filename.rfind(".")]),
            system_prompt=fm.body,
            source=self.fs.abspath(rel),
            description=description,
            model=_py_str(meta.get("model", "inherit")),
            color=_py_str(color) if color is not None else None,
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
        value = _py_str(raw).strip().lower()
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

    # ----------------------------------------------------------------------------- hooks
    def _hooks(self, rel: str, extra: Any) -> HookConfig | None:
        config: HookConfig | None = None
        if self.fs.kind(rel, report=False) not in ("missing", None):
            if self.fs.kind(rel) == "file":
                data = self._json(rel)
                self.loaded_paths.add(self.fs.real(rel) or "")
                config = self._hook_config(rel, data) if data is not _MISSING else None
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
            sources.append((self.manifest_rel, value))
        else:
            for rel in self._paths_from_manifest("hooks", value):
                real = self.fs.real(rel)
                if real is None or real in self.loaded_paths:
                    continue
                if self.fs.kind(rel) != "file":
                    self._report(rel, "named in the manifest's 'hooks' but is not a file")
                    continue
                self.loaded_paths.add(real)
                data = self._json(rel)
                if data is not _MISSING:
                    sources.append((rel, data))
        for rel, data in sources:
            more = self._hook_config(rel, data)
            merged = dict(config or {})
            for event, matchers in more.items():
                merged[event] = merged.get(event, ()) + matchers
            config = merged
        return config

    def _hook_config(self, rel: str, data: Any, *, strict_events: bool = True) -> HookConfig:
        if not isinstance(data, dict):
            self._report(rel, f"hooks must be a JSON object, not {_type_name(data)}; ignored")
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
                                 f"{_type_name(value)}); ignored")
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
                         f"{_type_name(value)}; ignored")
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
            name=_opt(raw.get("name")),
            prompt=_opt(raw.get("prompt")),
            system_prompt=_opt(raw.get("system_prompt")),
            tools=tuple(_py_str(t) for t in tools) if isinstance(tools, list) else (),
            max_iterations=max_iterations,
            is_async=bool(self._bool(is_async)),
            extra={k: v for k, v in raw.items() if k not in known},
        )

    # ----------------------------------------------------------------------------- MCP
    def _mcp(self, extra: Any) -> dict[str, McpServer]:
        servers: dict[str, McpServer] = {}
        rel = ".mcp.json"
        if self.fs.kind(rel, report=False) == "file":
            data = self._json(rel)
            self.loaded_paths.add(self.fs.real(rel) or "")
            if data is not _MISSING:
                servers = self._mcp_servers(rel, data, wrapped_only=False)
        elif self.fs.lexists(rel):
            self.fs.read_bytes(rel)  # reports an escape or what it is
        if extra:
            sources: list[tuple[str, Any]] = []
            if isinstance(extra, dict):
                sources.append((self.manifest_rel, extra))
            else:
                for path in self._paths_from_manifest("mcpServers", extra):
                    real = self.fs.real(path)
                    if real is None or real in self.loaded_paths:
                        continue
                    self.loaded_paths.add(real)
                    data = self._json(path)
                    if data is not _MISSING:
                        sources.append((path, data))
            for path, data in sources:
                for name, server in self._mcp_servers(path, data, wrapped_only=False).items():
                    if name in servers:
                        self._report(path, f"MCP server {name!r} is already defined; skipped")
                    else:
                        servers[name] = server
        return servers

    def _mcp_servers(self, rel: str, data: Any, *, wrapped_only: bool) -> dict[str, McpServer]:
        if not isinstance(data, dict):
            self._report(rel, f"must be a JSON object, not {_type_name(data)}; ignored")
            return {}
        if "mcpServers" in data:
            entries = data["mcpServers"]
            if entries is None:
                return {}
            if not isinstance(entries, dict):
                self._report(rel, "'mcpServers' must be an object; ignored")
                return {}
        elif wrapped_only:
            return {}
        else:
            entries = data
            if entries:
                self._report(rel, "servers are not wrapped in 'mcpServers'; read as a flat "
                             "map (the SDK loads none of them)", "info")
        servers = {}
        for name, entry in entries.items():
            server = self._mcp_server(rel, name, entry)
            if server is not None:
                servers[name] = server
        return servers

    def _mcp_server(self, rel: str, name: str, entry: Any) -> McpServer | None:
        if not isinstance(entry, dict):
            self._report(rel, f"MCP server {name!r} must be an object; ignored")
            return None
        transport = entry.get("transport", entry.get("type"))
        if transport == "shttp":
            transport = "http"
        if transport is not None and transport not in _MCP_TRANSPORTS:
            self._report(rel, f"MCP server {name!r} has unknown transport {transport!r}; ignored")
            return None
        command, url = entry.get("command"), entry.get("url")
        if transport is None and command is None and url is None:
            self._report(rel, f"MCP server {name!r} has neither 'command' nor 'url'; ignored")
            return None
        if transport == "stdio" and not command:
            self._report(rel, f"MCP server {name!r} is stdio but has no 'command'; ignored")
            return None
        if transport in ("http", "streamable-http", "sse") and not url:
            self._report(rel, f"MCP server {name!r} is remote but has no 'url'; ignored")
            return None
        problems = []
        for key, ok in (("command", command is None or isinstance(command, str)),
                        ("url", url is None or isinstance(url, str)),
                        ("args", _is_str_list(entry.get("args"))),
                        ("env", _is_str_map(entry.get("env"))),
                        ("headers", _is_str_map(entry.get("headers"))),
                        ("cwd", entry.get("cwd") is None or isinstance(entry.get("cwd"), str))):
            if not ok:
                problems.append(key)
        if problems:
            self._report(rel, f"MCP server {name!r} has wrongly typed {', '.join(problems)}; "
                         "ignored")
            return None
        args = entry.get("args")
        return McpServer(
            name=name,
            transport=transport,
            command=command,
            args=tuple(args) if args is not None else None,
            env=entry.get("env"),
            url=url,
            headers=entry.get("headers"),
            cwd=entry.get("cwd"),
            config=entry,
        )

    def _agent_plugins_mcp(self) -> dict[str, McpServer]:
        rel = "mcp.json"
        if self.fs.kind(rel, report=False) != "file":
            if self.fs.lexists(rel):
                self.fs.read_bytes(rel)
            return {}
        data = self._json(rel)
        if data is _MISSING:
            return {}
        expected = "https://agent-plugins.org/schemas/1.0.0/mcp.schema.json"
        if not isinstance(data, dict) or data.get("$schema") != expected or not isinstance(
                data.get("mcpServers"), dict) or set(data) - {"$schema", "mcpServers"}:
            self._report(rel, f"is not an Agent Plugins mcp.json (an object with $schema "
                         f"{expected} and 'mcpServers' only); MCP disabled")
            return {}
        servers = {}
        for name, entry in data["mcpServers"].items():
            problem = _agent_plugins_server_problem(entry)
            if problem:
                self._report(rel, f"MCP server {name!r} skipped: {problem}")
                continue
            server = self._mcp_server(rel, name, entry)
            if server is not None:
                servers[name] = server
        return servers


_MISSING: Any = object()


def _agent_plugins_server_problem(entry: Any) -> str | None:
    if not isinstance(entry, dict):
        return "not an object"
    kind = entry.get("type")
    allowed = {"stdio": {"type", "command", "args", "env", "cwd"},
               "streamable-http": {"type", "url", "headers"},
               "sse": {"type", "url", "headers"}}
    if kind not in allowed:
        return f"unknown type {kind!r}"
    if kind == "sse":
        return "unsupported transport 'sse'"
    extra = set(entry) - allowed[kind]
    if extra:
        return f"unexpected field(s) {', '.join(sorted(extra))}"
    if kind == "stdio":
        command = entry.get("command")
        if not isinstance(command, str) or not command:
            return "'command' must be a non-empty string"
        if not command.startswith("./") and ("/" in command or "\\" in command):
            return "'command' must be a bare name or a './' path inside the plugin"
        if command.startswith("./") and ".." in command.split("/"):
            return "'command' leaves the plugin root"
        env = entry.get("env", {})
        if not _is_str_map(env) or {"PLUGIN_ROOT", "PLUGIN_DATA"} & set(env):
            return "'env' must map names to strings and cannot set PLUGIN_ROOT or PLUGIN_DATA"
        cwd = entry.get("cwd")
        if cwd is not None and not (isinstance(cwd, str) and re.match(
                r"^(?:\./|\$\{PLUGIN_ROOT\}(?:/|\Z)|\$\{PLUGIN_DATA\}(?:/|\Z))", cwd)):
            return "'cwd' must start with './', '${PLUGIN_ROOT}' or '${PLUGIN_DATA}'"
    else:
        url = entry.get("url")
        if not isinstance(url, str) or not re.match(r"^https?://[^/@#]+", url) or "#" in url:
            return "'url' must be an absolute http(s) URL without credentials or fragment"
        if url.startswith("http://") and not re.match(
                r"^http://(localhost|127\.[0-9.]+|\[::1\])(?:[:/]|\Z)", url):
            return "'url' must use https for a remote host"
        if not _is_str_map(entry.get("headers", {})):
            return "'headers' must map names to strings"
    return None


def _is_str_list(value: Any) -> bool:
    return value is None or (isinstance(value, list) and all(isinstance(v, str) for v in value))


def _is_str_map(value: Any) -> bool:
    return value is None or (isinstance(value, dict) and all(
        isinstance(v, str) for v in value.values()))


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


def _opt(value: Any) -> str | None:
    return None if value is None else _py_str(value)


def _py_str(value: Any) -> str:
    """``str()`` as the SDK applies it, but dates as ISO strings (as pydantic dumps them)."""
    if isinstance(value, str):
        return value
    return str(_frontmatter.to_json_value(value)) if isinstance(value, (dict, list)) else str(
        value)


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

