"""The plugin project that ``ohp new NAME`` writes, and the ``pyproject.toml`` of a plugin package.

A project follows the plugin package contract (DESIGN.md): the Python module *is* the plugin
directory (``.plugin/plugin.json``, ``skills/``, ``commands/``, optional ``tools.py`` and
``agent.py``), every file in it ships as package data, and the ``openhands.plugins`` entry point
names the module. Nothing here imports or runs plugin code.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

from isolator._errors import PackagingError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

# Every file of the module directory is package data. setuptools expands these with
# glob.glob(recursive=True), which skips names that start with a dot: "**/*" alone would leave
# out .plugin/plugin.json and .mcp.json. "**" does not descend into a hidden directory inside
# another hidden directory either: such files must be listed one by one (extra_package_data).
PACKAGE_DATA_GLOBS: tuple[str, ...] = ("**/*", "**/.*", "**/.*/**/*", "**/.*/**/.*")
# Bytecode (a __pycache__ left by running the tests) is never package data.
EXCLUDE_PACKAGE_DATA: tuple[str, ...] = ("*.pyc", "*.pyo")

DIST_PREFIX = "openhands-plugin-"
MODULE_PREFIX = "openhands_plugin_"
MAX_NAME_LENGTH = 64
NEW_VERSION = "0.1.0"

_NAME = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")
_NAME_RULE = ("expected a plugin name in kebab-case: lowercase ASCII letters, digits and single "
              f"hyphens, starting with a letter, at most {MAX_NAME_LENGTH} characters")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n",
                  "\f": "\\f", "\r": "\\r"}


# ---- names -------------------------------------------------------------------------------------


def module_name_for(plugin_name: str) -> str:
    """The module (the plugin directory) of a plugin: ``security-scanner`` ->
    ``openhands_plugin_security_scanner``. A name that already has the prefix keeps it."""
    base = plugin_name.lower().replace("-", "_").replace(".", "_")
    return base if base.startswith(MODULE_PREFIX) else MODULE_PREFIX + base


def dist_name_for(plugin_name: str) -> str:
    """The distribution (and project directory) of a plugin: ``security-scanner`` ->
    ``openhands-plugin-security-scanner``. A name that already has the prefix keeps it."""
    base = plugin_name.lower().replace("_", "-").replace(".", "-")
    return base if base.startswith(DIST_PREFIX) else DIST_PREFIX + base


def _check_name(name: str) -> None:
    """Raise :class:`PackagingError` naming *name* unless it is a plugin name in kebab-case."""
    if len(name) <= MAX_NAME_LENGTH and _NAME.fullmatch(name):
        return
    if not name:
        why = "it is empty"
    elif len(name) > MAX_NAME_LENGTH:
        why = f"it has {len(name)} characters"
    elif not name.isascii():
        why = "it has non-ASCII characters"
    elif any(sep in name for sep in ("/", "\\", os.sep)):
        why = "it has a path separator"
    elif name != name.lower():
        why = "it has uppercase letters"
    elif not name[0].isalpha():
        why = "it does not start with a letter"
    elif "--" in name or name.endswith("-"):
        why = "a hyphen must be single and between letters or digits"
    else:
        bad = sorted({c for c in name if not (c.isalnum() or c == "-")})
        why = f"it has {', '.join(repr(c) for c in bad)}"
    raise PackagingError(f"plugin name {name!r}", f"{_NAME_RULE} ({why})")


def _check_description(description: str) -> str:
    text = description.strip()
    if not text.isprintable():
        raise PackagingError(f"description {description!r}",
                             "expected a description of one line of printable text")
    return text


# ---- quoting -----------------------------------------------------------------------------------


def _quoted(value: str, *, ascii_only: bool = True) -> str:
    """*value* as a double-quoted string that is valid both in TOML (a basic string) and in
    YAML. Only ASCII is written when *ascii_only*; otherwise printable characters stay as they
    are. (``json.dumps`` is close but writes a character outside the BMP as a surrogate pair,
    which neither TOML nor PyYAML reads back as that character.)"""
    out = ['"']
    for char in value:
        code = ord(char)
        if char in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[char])
        elif 0xD800 <= code <= 0xDFFF:
            raise ValueError(f"{value!r} has a lone surrogate, which no file can hold")
        elif 0x20 <= code < 0x7F or (not ascii_only and code > 0x7F and char.isprintable()):
            out.append(char)
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else _quoted(key)


def _toml_array(items: Sequence[str], *, multiline: bool = False) -> str:
    if not items:
        return "[]"
    if not multiline:
        return "[" + ", ".join(_quoted(item) for item in items) + "]"
    return "[\n" + "".join(f"  {_quoted(item)},\n" for item in items) + "]"


# ---- pyproject.toml ----------------------------------------------------------------------------


def render_pyproject(
    *,
    dist_name: str,
    version: str,
    description: str,
    module: str,
    plugin_name: str,
    agent: str | None = None,
    tools: Mapping[str, str] | None = None,
    extra_package_data: Sequence[str] = (),
    dependencies: Sequence[str] = (),
    requires_python: str = ">=3.10",
    readme: str | None = "README.md",
) -> str:
    """The ``pyproject.toml`` of a plugin package (setuptools) whose module is the plugin
    directory.

    *agent* is the ``openhands.agents`` object reference (``module.agent:create_agent``);
    *tools* maps tool names to ``openhands.tools`` references. *extra_package_data* adds
    patterns to :data:`PACKAGE_DATA_GLOBS` (files in a hidden directory inside another one).
    """
    lines = [
        "[build-system]",
        'requires = ["setuptools>=69"]',
        'build-backend = "setuptools.build_meta"',
        "",
        "[project]",
        f"name = {_quoted(dist_name)}",
        f"version = {_quoted(version)}",
        f"description = {_quoted(description)}",
    ]
    if readme is not None:
        lines.append(f"readme = {_quoted(readme)}")
    lines += [
        f"requires-python = {_quoted(requires_python)}",
        f"dependencies = {_toml_array(dependencies, multiline=bool(dependencies))}",
        f"keywords = {_toml_array(['openhands', 'openhands-plugin', 'agent-plugin'])}",
        "",
        "# The entry point's name is the installed plugin's name; it matches \"name\" in",
        "# .plugin/plugin.json. Its value is the module, which is the plugin directory.",
        '[project.entry-points."openhands.plugins"]',
        f"{_toml_key(plugin_name)} = {_quoted(module)}",
    ]
    if agent is not None:
        lines += [
            "",
            "# The agent factory create_agent(llm, tools, config); it runs only in the plugin's",
            "# worker, and its model calls are served by the host.",
            '[project.entry-points."openhands.agents"]',
            f"{_toml_key(plugin_name)} = {_quoted(agent)}",
        ]
    if tools:
        lines += [
            "",
            "# Tools: functions with type hints and a docstring (the tool's schema is derived",
            "# from them); they run only in the plugin's worker.",
            '[project.entry-points."openhands.tools"]',
            *(f"{_toml_key(name)} = {_quoted(ref)}" for name, ref in tools.items()),
        ]
    package_data = [*PACKAGE_DATA_GLOBS, *extra_package_data]
    lines += [
        "",
        "[tool.setuptools]",
        f"packages = {_toml_array([module])}",
        "include-package-data = true",
        "",
        "# Every file of the module directory is package data. setuptools' globs skip names",
        "# that start with a dot, so .plugin/, .mcp.json and a skill's .mcp.json need the \".*\"",
        "# patterns; \"**\" does not descend into a hidden directory inside another hidden",
        "# directory, so files there are listed one by one.",
        "[tool.setuptools.package-data]",
        f"{_toml_key(module)} = {_toml_array(package_data, multiline=True)}",
        "",
        "# Bytecode is never package data (a __pycache__ left by running the tests).",
        "[tool.setuptools.exclude-package-data]",
        f"{_toml_key(module)} = {_toml_array(EXCLUDE_PACKAGE_DATA)}",
    ]
    return "\n".join(lines) + "\n"


# ---- the files of a new project ----------------------------------------------------------------

_PYTEST_SECTION = """
[tool.pytest.ini_options]
testpaths = ["tests"]
# The tests import the plugin's module from this directory, without installing it.
pythonpath = ["."]
"""

_GITIGNORE = """\
__pycache__/
*.py[co]
build/
dist/
*.egg-info/
.venv/
.pytest_cache/
"""

_TOOLS_PY = '''\
"""Tools of the {name} plugin: the ``openhands.tools`` entry points in pyproject.toml.

A tool is a plain function with type hints and a docstring; the host derives the tool's JSON
schema from them (the ``Args:`` section describes the parameters). Tools run only in the
plugin's worker, in the plugin's own virtualenv, never in the host.
"""

from __future__ import annotations


def word_count(text: str, min_length: int = 1) -> int:
    """Count the words in *text* that have at least *min_length* characters.

    Args:
        text: The text whose words are counted.
        min_length: Shorter words are not counted.
    """
    return sum(1 for word in text.split() if len(word) >= min_length)
'''

_AGENT_PY = '''\
"""The {name} agent: the ``openhands.agents`` entry point in pyproject.toml.

The host calls ``create_agent(llm, tools, config)`` in the plugin's worker. ``config`` is the
``parameters`` object of .plugin/plugin.json unless the host passes another one; ``tools`` are
the tools the host lends the agent (each has ``name``, ``description``, ``input_schema`` and is
called with keyword arguments).

``step(state)`` takes JSON-like state (``{{"messages": [{{"role": ..., "content": ...}}]}}``) and
yields JSON-like events; the host receives each event as it is yielded. ``llm.complete(messages)``
is served by the host, which holds the model and its credentials: they never reach the plugin.
It needs the ``llm.complete`` capability, which plugin.json asks for and the operator grants.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
{tools_import}
if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence


class Agent:
    """Asks the model once per step and reports its answer."""

    def __init__(self, llm: Any, tools: Sequence[Any], config: dict[str, Any]) -> None:
        self.llm = llm
        self.tools = {{tool.name: tool for tool in tools}}
        self.system_prompt = str(config.get("system_prompt", ""))

    def step(self, state: dict[str, Any]) -> Iterator[dict[str, Any]]:
        messages = list(state.get("messages", []))
        if self.system_prompt:
            messages.insert(0, {{"role": "system", "content": self.system_prompt}})
        yield {{"type": "status", "text": "asking the model"}}
        answer = self.llm.complete(messages)
        yield {{"type": "message", "role": "assistant", "content": answer["content"]}}
{tools_step}

def create_agent(llm: Any, tools: Sequence[Any], config: dict[str, Any]) -> Agent:
    """The plugin's agent factory (``openhands.agents``)."""
    return Agent(llm, tools, config)
'''

_AGENT_TOOLS_STEP = '''\
        yield {{"type": "observation", "tool": "word_count",
               "result": word_count(answer["content"])}}
'''

_TEST_HEAD = '''\
"""Tests of the {name} plugin.

Run them with ``python -m pytest`` in the project directory.
"""

from __future__ import annotations

from pathlib import Path
{imports}
import pytest
{module_imports}
NAME = "{name}"
PLUGIN_DIR = Path(__file__).resolve().parent.parent / "{module}"


def test_the_plugin_directory_loads() -> None:
    isolator = pytest.importorskip("isolator")
    plugin = isolator.load_plugin(PLUGIN_DIR)
    assert not plugin.diagnostics, [str(d) for d in plugin.diagnostics]
    assert plugin.name == NAME
    assert [skill.name for skill in plugin.skills] == [NAME]
    assert [command.name for command in plugin.commands] == [NAME]
'''

_TEST_TOOLS = '''

def test_word_count() -> None:
    assert word_count("one two three") == 3
    assert word_count("a bb ccc", min_length=2) == 2
    assert word_count("") == 0
'''

_TEST_AGENT = '''

class FakeLLM:
    """Stands in for the host's model: records each request and answers with a fixed text."""

    def __init__(self, answer: str) -> None:
        self.answer = answer
        self.requests: list[list[dict[str, Any]]] = []

    def complete(self, messages: list[dict[str, Any]], **options: Any) -> dict[str, Any]:
        self.requests.append(messages)
        return {{"content": self.answer}}


def test_the_agent_asks_the_model_and_reports_the_answer() -> None:
    llm = FakeLLM("two words")
    agent = create_agent(llm, [], {{}})
    events = list(agent.step({{"messages": [{{"role": "user", "content": "hi"}}]}}))
    assert events == [
        {{"type": "status", "text": "asking the model"}},
        {{"type": "message", "role": "assistant", "content": "two words"}},{tools_event}
    ]
    assert llm.requests == [[{{"role": "user", "content": "hi"}}]]


def test_the_system_prompt_comes_from_the_config() -> None:
    llm = FakeLLM("ok")
    agent = create_agent(llm, [], {{"system_prompt": "Be brief."}})
    list(agent.step({{"messages": []}}))
    assert llm.requests == [[{{"role": "system", "content": "Be brief."}}]]
'''

_README = """\
# {dist}

{description}

{intro}

## Layout

```
{layout}```

Every file under the module directory ships in the wheel, dotfiles included (see the comment
above `[tool.setuptools.package-data]` in `pyproject.toml`). Add skills as
`skills/<name>/SKILL.md`, commands as `commands/<name>.md`, and agents (`agents/*.md`), hooks
(`hooks/hooks.json`) or MCP servers (`.mcp.json`) the same way.

The entry point's name, `{name}`, is the installed plugin's name and matches `name` in
`plugin.json`. `pyproject.toml` is the source of truth for the version: keep `plugin.json`'s
in step. A dependency goes in `dependencies` in `pyproject.toml`; it is installed into the
plugin's own virtualenv only.

## Develop

```
{develop}```

## Build and publish

```
{publish}```

Once published, anyone can install it with `ohp install pypi:{dist}`.
"""


def _aligned(rows: Sequence[tuple[str, str]]) -> str:
    """Lines of *rows* (text, comment), the comments lined up one column apart; a row with
    an empty comment is the text alone."""
    width = max(len(text) for text, comment in rows if comment) + 2
    return "".join(f"{text:<{width}}{comment}".rstrip() + "\n" if comment else text + "\n"
                   for text, comment in rows)


def _project_files(name: str, description: str, *, with_tools: bool,
                   with_agent: bool) -> dict[str, str]:
    """The new project's files: relative POSIX path -> text."""
    dist, module = dist_name_for(name), module_name_for(name)
    tools = {"word_count": f"{module}.tools:word_count"} if with_tools else None
    agent = f"{module}.agent:create_agent" if with_agent else None
    files: dict[str, str] = {}
    files["pyproject.toml"] = render_pyproject(
        dist_name=dist, version=NEW_VERSION, description=description, module=module,
        plugin_name=name, agent=agent, tools=tools, readme="README.md") + _PYTEST_SECTION
    files[".gitignore"] = _GITIGNORE

    manifest: dict[str, object] = {"name": name, "version": NEW_VERSION,
                                   "description": description}
    if with_agent:
        manifest["parameters"] = {"system_prompt": f"You are the {name} agent. Be brief."}
        manifest["permissions"] = {"capabilities": ["llm.complete"]}
    files[f"{module}/.plugin/plugin.json"] = json.dumps(manifest, indent=2,
                                                        ensure_ascii=False) + "\n"
    files[f"{module}/__init__.py"] = (
        f'"""The {name} plugin.\n\n'
        "This package is the plugin directory: .plugin/plugin.json, skills/ and commands/ next\n"
        "to this file ship with it as package data. The host reads them as data and never\n"
        "imports this package; plugin code runs only in the plugin's worker.\n"
        '"""\n')
    title = name.replace("-", " ").capitalize()
    files[f"{module}/skills/{name}/SKILL.md"] = (
        f"---\nname: {name}\ndescription: {_quoted(description, ascii_only=False)}\n---\n"
        f"# {title}\n\n"
        "Use this skill when the user's request matches the description above.\n\n"
        "1. Restate the request in one sentence.\n"
        "2. Do the work step by step, and say what each step did.\n"
        "3. End with a short summary of the result.\n")
    files[f"{module}/commands/{name}.md"] = (
        f"---\ndescription: {_quoted(f'Apply the {name} skill to a request')}\n"
        'argument-hint: "[request]"\n---\n'
        f"Use the {name} skill for this request: $ARGUMENTS\n")
    if with_tools:
        files[f"{module}/tools.py"] = _TOOLS_PY.format(name=name)
    if with_agent:
        files[f"{module}/agent.py"] = _AGENT_PY.format(
            name=name,
            tools_import="\nfrom .tools import word_count\n" if with_tools else "",
            tools_step=_AGENT_TOOLS_STEP.format() if with_tools else "")
    files["tests/test_plugin.py"] = _test_file(name, module, with_tools=with_tools,
                                               with_agent=with_agent)
    files["README.md"] = _readme(name, description, with_tools=with_tools,
                                 with_agent=with_agent)
    return files


def _test_file(name: str, module: str, *, with_tools: bool, with_agent: bool) -> str:
    module_imports = ""
    if with_agent:
        module_imports += f"from {module}.agent import create_agent\n"
    if with_tools:
        module_imports += f"from {module}.tools import word_count\n"
    text = _TEST_HEAD.format(
        name=name, module=module,
        imports="from typing import Any\n" if with_agent else "",
        module_imports=f"\n{module_imports}" if module_imports else "")
    if with_tools:
        text += _TEST_TOOLS
    if with_agent:
        tools_event = ('\n        {"type": "observation", "tool": "word_count", "result": 2},'
                       if with_tools else "")
        text += _TEST_AGENT.format(tools_event=tools_event)
    return text


def _readme(name: str, description: str, *, with_tools: bool, with_agent: bool) -> str:
    dist, module = dist_name_for(name), module_name_for(name)
    layout = [
        (f"{dist}/", ""),
        ("  pyproject.toml", "metadata, dependencies, entry points"),
        ("  README.md", ""),
        (f"  {module}/", "the plugin directory"),
        ("    __init__.py", ""),
        ("    .plugin/plugin.json", "the manifest: name, version, description"
         + (", permissions" if with_agent else "")),
        (f"    skills/{name}/SKILL.md", "a skill (frontmatter: name, description)"),
        (f"    commands/{name}.md", "a command (frontmatter: description)"),
    ]
    if with_tools:
        layout.append(("    tools.py", "a tool, word_count (runs in the plugin's worker)"))
    if with_agent:
        layout.append(("    agent.py", "the agent factory (runs in the plugin's worker)"))
    layout.append(("  tests/test_plugin.py", "the plugin's tests"))
    develop = [
        ("ohp validate --python-package .", "# check the project against the plugin contract"),
        ("python -m pytest", "# run the tests (where pytest and ohp are installed)"),
        ("ohp install .", "# build it and install it into your plugin store"),
        (f"ohp show {name}", "# what the store sees: skills, commands, ..."),
    ]
    if with_tools:
        develop += [
            (f"ohp tools {name}", "# the tools and their input schemas"),
            (f"ohp call {name} word_count --args '{{\"text\": \"a b c\"}}'", ""),
        ]
    if with_agent:
        develop += [
            (f"ohp configure {name} --grant all", "# let its agent use the host's model"),
            (f"ohp agent {name} --prompt hello", "# one step of the agent"),
        ]
    publish = [("uv build", "# dist/: the sdist and the wheel"),
               ("uv publish", "# upload dist/* to PyPI (needs an API token)")]
    code_note = (": its Python code runs only in a sandboxed worker process, never in the host"
                 if with_tools or with_agent else "")
    intro = textwrap.fill(
        "An agent plugin for OpenHands, shipped as a Python package. The module directory "
        f"`{module}/` *is* the plugin directory: its manifest, skills and commands are "
        "package data, and the `openhands.plugins` entry point in `pyproject.toml` names it. "
        f"Installed with `ohp`, the plugin gets a virtualenv of its own{code_note}.",
        width=96, break_long_words=False, break_on_hyphens=False)
    return _README.format(dist=dist, name=name, description=description, intro=intro,
                          layout=_aligned(layout),
                          develop=_aligned(develop), publish=_aligned(publish))


# ---- writing a new project ---------------------------------------------------------------------


def new_project(name: str, parent: Path, *, with_tools: bool = False, with_agent: bool = False,
                description: str | None = None) -> Path:
    """Write a new plugin project for plugin *name* at ``parent / dist_name_for(name)``.

    *name* must be kebab-case (:data:`MAX_NAME_LENGTH` characters at most). The target must
    not exist or be an empty directory. The project is written next to the target and renamed
    into place at the end: on any failure nothing is left behind. Returns the project's path.
    """
    _check_name(name)
    text = _check_description(description if description is not None
                              else f"The {name} plugin for OpenHands agents")
    parent = Path(parent)
    target = parent / dist_name_for(name)
    if not parent.is_dir():
        raise PackagingError(str(parent), "expected an existing directory to create the project in")
    _check_target(target)
    files = _project_files(name, text, with_tools=with_tools, with_agent=with_agent)
    temp = _temp_dir(parent, target.name)
    try:
        for relative, content in files.items():
            path = temp / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "x", encoding="utf-8", newline="\n") as handle:
                handle.write(content)
        _check_target(target)
        # rename(2) replaces an empty directory and fails on anything else: the check above
        # cannot be raced into losing someone's files.
        os.replace(temp, target)
    except OSError as exc:
        shutil.rmtree(temp, ignore_errors=True)
        raise PackagingError(str(target), f"cannot be created: {exc.strerror or exc}") from exc
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    return target


def _check_target(target: Path) -> None:
    if not os.path.lexists(target):
        return
    if target.is_symlink() or not target.is_dir():
        raise PackagingError(str(target), "already exists and is not a directory: expected a new "
                          "or empty directory for the project")
    with os.scandir(target) as entries:
        if next(entries, None) is not None:
            raise PackagingError(str(target), "already exists and is not empty: expected a new or "
                              "empty directory for the project")


def _temp_dir(parent: Path, stem: str) -> Path:
    """A new directory in *parent* (same filesystem as the target), with the usual mode."""
    for _ in range(100):
        path = parent / f".{stem}.{secrets.token_hex(4)}.tmp"
        try:
            path.mkdir()
        except FileExistsError:
            continue
        except OSError as exc:
            raise PackagingError(str(parent / stem),
                              f"cannot be created: {exc.strerror or exc}") from exc
        return path
    raise PackagingError(str(parent / stem), "cannot be created: no free temporary name")


__all__ = [
    "EXCLUDE_PACKAGE_DATA",
    "PACKAGE_DATA_GLOBS",
    "dist_name_for",
    "module_name_for",
    "new_project",
    "render_pyproject",
]
