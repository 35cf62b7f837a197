"""`ohp new`: isolator/authoring/_templates.py and the project it writes, run, built, installed.

The projects are real: their own tests run with pytest, setuptools builds them (through uv),
the store installs them into venvs, and their tool and agent run in sandboxed workers.
"""

from __future__ import annotations

import ast
import compileall
import errno
import json
import os
import subprocess
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from reachable import remove, worker_python, world_dir

import isolator
from hostbridge import EchoLLM, HostBridge
from isolator._errors import IsolatorError, PackagingError
from isolator.authoring._templates import (
    EXCLUDE_PACKAGE_DATA,
    PACKAGE_DATA_GLOBS,
    dist_name_for,
    module_name_for,
    new_project,
    render_pyproject,
)
from isolator.policy._permissions import Permissions
from isolator.store._backends import get_backend

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

if TYPE_CHECKING:
    from collections.abc import Iterator

# Quotes, a backslash, non-ASCII and a character outside the BMP: every writer must quote it.
ODD = 'Says "hi" \\ to Zoë 👋 (and \'bye\')'

# name -> (with_tools, with_agent, description); "both" carries the odd description all the way
# through build, install and load.
VARIANTS: dict[str, tuple[bool, bool, str | None]] = {
    "new-plain": (False, False, None),
    "new-tools": (True, False, None),
    "new-agent": (False, True, None),
    "new-both": (True, True, ODD),
}


# ---- names -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "module", "dist"), [
    ("security-scanner", "openhands_plugin_security_scanner", "openhands-plugin-security-scanner"),
    ("x", "openhands_plugin_x", "openhands-plugin-x"),
    ("a1-b2", "openhands_plugin_a1_b2", "openhands-plugin-a1-b2"),
    ("My.Plugin", "openhands_plugin_my_plugin", "openhands-plugin-my-plugin"),
    ("openhands-plugin-foo", "openhands_plugin_foo", "openhands-plugin-foo"),  # not twice
    ("openhands_plugin_foo", "openhands_plugin_foo", "openhands-plugin-foo"),
])
def test_module_and_dist_names(name: str, module: str, dist: str) -> None:
    assert module_name_for(name) == module
    assert dist_name_for(name) == dist
    assert module.isidentifier()


# ---- render_pyproject --------------------------------------------------------------------------


def test_render_pyproject_parses_with_every_section() -> None:
    text = render_pyproject(
        dist_name="openhands-plugin-demo", version="1.2.3", description=ODD,
        module="openhands_plugin_demo", plugin_name="demo",
        agent="openhands_plugin_demo.agent:create_agent",
        tools={"word_count": "openhands_plugin_demo.tools:word_count",
               "needs quoting.v2": "openhands_plugin_demo.tools:other",
               'odd "key"': "openhands_plugin_demo.tools:odd"},
        extra_package_data=[".a/.b/*"], dependencies=['idna>=3; python_version >= "3.10"'],
        requires_python=">=3.11")
    assert text.isascii()  # non-ASCII is escaped, so no encoding can garble it
    data = tomllib.loads(text)
    assert data["build-system"] == {"requires": ["setuptools>=69"],
                                    "build-backend": "setuptools.build_meta"}
    project = data["project"]
    assert project["name"] == "openhands-plugin-demo" and project["version"] == "1.2.3"
    assert project["description"] == ODD
    assert project["readme"] == "README.md" and project["requires-python"] == ">=3.11"
    assert project["dependencies"] == ['idna>=3; python_version >= "3.10"']
    assert "openhands" in project["keywords"] and "classifiers" not in project
    assert project["entry-points"] == {
        "openhands.plugins": {"demo": "openhands_plugin_demo"},
        "openhands.agents": {"demo": "openhands_plugin_demo.agent:create_agent"},
        "openhands.tools": {"word_count": "openhands_plugin_demo.tools:word_count",
                            "needs quoting.v2": "openhands_plugin_demo.tools:other",
                            'odd "key"': "openhands_plugin_demo.tools:odd"},
    }
    setuptools = data["tool"]["setuptools"]
    assert setuptools["packages"] == ["openhands_plugin_demo"]
    assert setuptools["include-package-data"] is True
    assert setuptools["package-data"] == {
        "openhands_plugin_demo": [*PACKAGE_DATA_GLOBS, ".a/.b/*"]}
    assert setuptools["exclude-package-data"] == {
        "openhands_plugin_demo": list(EXCLUDE_PACKAGE_DATA)}
    # The comment that says why the dot patterns are there sits right above them.
    before = text[:text.index("[tool.setuptools.package-data]")].splitlines()[-4:]
    assert all(line.startswith("#") for line in before)
    assert ".mcp.json" in " ".join(before) and "hidden directory" in " ".join(before)


def test_render_pyproject_minimal() -> None:
    text = render_pyproject(dist_name="openhands-plugin-min", version="0.1.0", description="",
                            module="openhands_plugin_min", plugin_name="min", readme=None)
    data = tomllib.loads(text)
    assert "readme" not in data["project"] and data["project"]["dependencies"] == []
    assert data["project"]["requires-python"] == ">=3.10"
    assert data["project"]["entry-points"] == {
        "openhands.plugins": {"min": "openhands_plugin_min"}}
    assert "openhands.agents" not in text and "openhands.tools" not in text


def test_render_pyproject_escapes_what_toml_needs() -> None:
    for value in ["tab\there", "new\nline", "nul\x00", "del\x7f", "\u2028", "𝄞 clef", "\\u0041"]:
        text = render_pyproject(dist_name="d", version="1", description=value, module="m",
                                plugin_name=value, readme=None)
        data = tomllib.loads(text)
        assert data["project"]["description"] == value
        assert data["project"]["entry-points"]["openhands.plugins"] == {value: "m"}
    with pytest.raises(ValueError, match="surrogate"):
        render_pyproject(dist_name="d", version="1", description="\ud800", module="m",
                         plugin_name="p")


# ---- new_project: what it refuses --------------------------------------------------------------


@pytest.mark.parametrize("name", [
    "", "Upper", "under_score", "1leading-digit", "trailing-", "-leading", "double--hyphen",
    "a" * 65, "plügin", "a/b", "../escape", "a\\b", "with space", "dot.ted", "a\nb",
])
def test_bad_names_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(PackagingError) as caught:
        new_project(name, tmp_path)
    assert caught.value.path == f"plugin name {name!r}"
    assert repr(name) in str(caught.value) and "kebab-case" in str(caught.value)
    assert list(tmp_path.iterdir()) == []  # nothing written, not even a temporary directory


def test_the_longest_name_is_accepted(tmp_path: Path) -> None:
    project = new_project("a" * 64, tmp_path)
    assert project == tmp_path / ("openhands-plugin-" + "a" * 64)
    assert (project / ("openhands_plugin_" + "a" * 64) / "skills" / ("a" * 64) / "SKILL.md"
            ).is_file()


@pytest.mark.parametrize("description", ["two\nlines", "bell\x07", "\ud800"])
def test_a_description_must_be_one_printable_line(tmp_path: Path, description: str) -> None:
    with pytest.raises(PackagingError, match="one line"):
        new_project("ok", tmp_path, description=description)
    assert list(tmp_path.iterdir()) == []


def test_an_existing_target_is_refused_and_left_untouched(tmp_path: Path) -> None:
    target = tmp_path / "openhands-plugin-taken"
    target.mkdir()
    (target / "mine.txt").write_text("keep me")
    with pytest.raises(PackagingError) as caught:
        new_project("taken", tmp_path, with_tools=True)
    assert str(target) in str(caught.value) and "not empty" in str(caught.value)
    assert [p.name for p in target.iterdir()] == ["mine.txt"]
    assert (target / "mine.txt").read_text() == "keep me"
    assert [p.name for p in tmp_path.iterdir()] == [target.name]

    (tmp_path / "openhands-plugin-file").write_text("a file")
    with pytest.raises(PackagingError, match="not a directory"):
        new_project("file", tmp_path)
    assert (tmp_path / "openhands-plugin-file").read_text() == "a file"
    (tmp_path / "openhands-plugin-link").symlink_to(target)
    with pytest.raises(PackagingError, match="not a directory"):
        new_project("link", tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "openhands-plugin-file", "openhands-plugin-link", target.name]
    with pytest.raises(PackagingError, match="existing directory"):
        new_project("x", tmp_path / "missing")


def test_an_empty_directory_is_filled(tmp_path: Path) -> None:
    (tmp_path / "openhands-plugin-empty").mkdir()
    project = new_project("empty", tmp_path)
    assert (project / "pyproject.toml").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["openhands-plugin-empty"]


def test_a_failure_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_space(src: object, dst: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    def interrupted(src: object, dst: object) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(os, "replace", no_space)
        with pytest.raises(PackagingError, match="No space left on device") as caught:
            new_project("doomed", tmp_path, with_tools=True, with_agent=True)
        assert isinstance(caught.value, IsolatorError)
        patch.setattr(os, "replace", interrupted)
        with pytest.raises(KeyboardInterrupt):
            new_project("doomed", tmp_path)
    assert list(tmp_path.iterdir()) == []


# ---- new_project: what it writes --------------------------------------------------------------


def _expected_files(name: str, with_tools: bool, with_agent: bool) -> set[str]:
    module = module_name_for(name)
    files = {"pyproject.toml", "README.md", ".gitignore", "tests/test_plugin.py",
             f"{module}/__init__.py", f"{module}/.plugin/plugin.json",
             f"{module}/skills/{name}/SKILL.md", f"{module}/commands/{name}.md"}
    if with_tools:
        files.add(f"{module}/tools.py")
    if with_agent:
        files.add(f"{module}/agent.py")
    return files


@pytest.mark.parametrize("name", list(VARIANTS))
def test_the_project_layout(tmp_path: Path, name: str) -> None:
    with_tools, with_agent, description = VARIANTS[name]
    project = new_project(name, tmp_path, with_tools=with_tools, with_agent=with_agent,
                          description=description)
    module = module_name_for(name)
    assert project == tmp_path / dist_name_for(name)
    written = {p.relative_to(project).as_posix() for p in project.rglob("*") if p.is_file()}
    assert written == _expected_files(name, with_tools, with_agent)
    expected_description = description or f"The {name} plugin for OpenHands agents"

    data = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    assert data["project"]["name"] == dist_name_for(name)
    assert data["project"]["version"] == "0.1.0"
    assert data["project"]["description"] == expected_description
    assert data["project"]["readme"] == "README.md"
    groups = data["project"]["entry-points"]
    assert groups["openhands.plugins"] == {name: module}
    assert groups.get("openhands.tools") == (
        {"word_count": f"{module}.tools:word_count"} if with_tools else None)
    assert groups.get("openhands.agents") == (
        {name: f"{module}.agent:create_agent"} if with_agent else None)
    assert data["tool"]["pytest"]["ini_options"]["pythonpath"] == ["."]

    manifest = json.loads((project / module / ".plugin" / "plugin.json").read_text("utf-8"))
    assert manifest["name"] == name and manifest["version"] == "0.1.0"
    assert manifest["description"] == expected_description
    if with_agent:
        assert manifest["permissions"] == {"capabilities": ["llm.complete"]}
        assert manifest["parameters"]["system_prompt"]
    else:
        assert "permissions" not in manifest

    plugin = isolator.load_plugin(project / module)  # the skill's YAML quoting holds
    assert plugin.diagnostics == ()
    assert [(s.name, s.description) for s in plugin.skills] == [(name, expected_description)]
    assert [c.name for c in plugin.commands] == [name] and plugin.commands[0].description

    init = ast.parse((project / module / "__init__.py").read_text(encoding="utf-8"))
    assert len(init.body) == 1 and ast.get_docstring(init)  # a docstring and nothing else
    for path in project.rglob("*.py"):
        compile(path.read_text(encoding="utf-8"), str(path), "exec")
    readme = (project / "README.md").read_text(encoding="utf-8")
    for command in ("ohp validate --python-package .", "ohp install .", "python -m pytest",
                    "uv build", "uv publish", f"ohp show {name}"):
        assert command in readme
    assert (f"ohp call {name} word_count" in readme) is with_tools
    assert (f"ohp agent {name}" in readme) is with_agent


# ---- the generated projects, run, built and installed (shared by the slow tests below) ---------


@dataclass
class Generated:
    name: str
    project: Path
    module: str
    with_tools: bool
    with_agent: bool
    description: str
    tests: subprocess.CompletedProcess[str]


def _run_project_tests(project: Path) -> subprocess.CompletedProcess[str]:
    """The project's own tests, as its author runs them, writing bytecode as usual."""
    env = {k: v for k, v in os.environ.items()
           if k != "PYTHONDONTWRITEBYTECODE" and not k.startswith(("PYTEST_", "COV_"))}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
         "-W", "error"],
        cwd=project, env=env, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Generated]:
    parent = tmp_path_factory.mktemp("projects")
    projects = {name: new_project(name, parent, with_tools=with_tools, with_agent=with_agent,
                                  description=description)
                for name, (with_tools, with_agent, description) in VARIANTS.items()}
    with ThreadPoolExecutor(2) as pool:
        runs = dict(zip(projects, pool.map(_run_project_tests, projects.values()),
                        strict=True))
    return {name: Generated(name, projects[name], module_name_for(name), with_tools, with_agent,
                            description or f"The {name} plugin for OpenHands agents", runs[name])
            for name, (with_tools, with_agent, description) in VARIANTS.items()}


@pytest.fixture(scope="module")
def wheels(generated: dict[str, Generated],
           tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("wheels")
    backend = get_backend("uv")

    def build(g: Generated) -> Path:
        # After the projects' tests ran: their __pycache__ is there to be left out. A module
        # the tests do not import (no tools, no agent) gets its bytecode as an import would.
        assert compileall.compile_dir(g.project / g.module, quiet=1)
        return backend.build_wheel(g.project, out / g.name, sys.executable)

    with ThreadPoolExecutor(2) as pool:
        return dict(zip(generated, pool.map(build, generated.values()), strict=True))


@pytest.fixture(scope="module")
def store(generated: dict[str, Generated]) -> Iterator[isolator.PluginStore]:
    # Where uid 65534 can reach it: workers run as that uid when the tests run as root.
    root = world_dir()
    store = isolator.PluginStore(root / "store", python=worker_python())
    for name, g in generated.items():
        installed = store.install(isolator.PluginSource.parse(str(g.project)))
        assert installed.name == name
        if g.with_agent:
            # What `ohp install --grant all` does: the operator grants what plugin.json asks.
            asked = Permissions.from_manifest(store.load(name).manifest.extra, name)
            assert asked.capabilities == ("llm.complete",)
            store.configure(name, grants=asked.grant(["all"], name))
    yield store
    remove(root)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(VARIANTS))
def test_the_projects_own_tests_pass(generated: dict[str, Generated], name: str) -> None:
    g = generated[name]
    assert g.tests.returncode == 0, g.tests.stdout + g.tests.stderr
    count = 1 + (1 if g.with_tools else 0) + (2 if g.with_agent else 0)
    last = g.tests.stdout.strip().splitlines()[-1]
    assert last.startswith(f"{count} passed"), g.tests.stdout  # none skipped, none missing
    if g.with_tools or g.with_agent:
        # They ran as the author runs them: importing the module wrote its bytecode.
        assert list((g.project / g.module / "__pycache__").glob("__init__.*.pyc"))


@pytest.mark.slow
@pytest.mark.parametrize("name", list(VARIANTS))
def test_the_project_builds_a_wheel_with_all_its_content(
        generated: dict[str, Generated], wheels: dict[str, Path], name: str) -> None:
    g = generated[name]
    assert list((g.project / g.module / "__pycache__").glob("*.pyc"))  # there to leave out
    with zipfile.ZipFile(wheels[name]) as wheel:
        names = set(wheel.namelist())
        dist_info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
        in_module = {n for n in names if n.startswith(f"{g.module}/")}
        expected = {f for f in _expected_files(name, g.with_tools, g.with_agent)
                    if f.startswith(f"{g.module}/")}
        assert in_module == expected
        assert not [n for n in names if "__pycache__" in n or n.endswith((".pyc", ".pyo"))]
        assert not [n for n in names if n.startswith("tests/")]
        assert json.loads(wheel.read(f"{g.module}/.plugin/plugin.json")) == json.loads(
            (g.project / g.module / ".plugin" / "plugin.json").read_text(encoding="utf-8"))
        metadata = wheel.read(f"{dist_info}/METADATA").decode("utf-8")
        entry_points = wheel.read(f"{dist_info}/entry_points.txt").decode("utf-8")
    assert f"Name: {dist_name_for(name)}\n" in metadata and "Version: 0.1.0\n" in metadata
    assert f"Summary: {g.description}\n" in metadata
    assert f"[openhands.plugins]\n{name} = {g.module}\n" in entry_points
    assert (f"word_count = {g.module}.tools:word_count" in entry_points) is g.with_tools
    assert (f"{name} = {g.module}.agent:create_agent" in entry_points) is g.with_agent


@pytest.mark.slow
@pytest.mark.parametrize("name", list(VARIANTS))
def test_the_project_passes_ohp_validate(generated: dict[str, Generated], name: str) -> None:
    """After its own tests ran (a __pycache__ in the module): every check OK, no warning."""
    from isolator.authoring._authoring import validate_package

    g = generated[name]
    report = validate_package(g.project)
    assert report.ok and not report.warnings, [c for c in report.checks if c.status != "ok"]
    passed = {c.name for c in report.checks if c.status == "ok"}
    assert {"pyproject", "entry-point", "module", "content", "manifest", "name", "version",
            "build", "package-data", "wheel-content"} <= passed
    assert ("tools" in passed) is g.with_tools and ("agent" in passed) is g.with_agent
    assert report.plugin == name and report.version == "0.1.0"


@pytest.mark.slow
def test_dotfiles_ship_and_nested_hidden_directories_need_listing(tmp_path: Path) -> None:
    """What the comment above package-data says, checked against setuptools itself."""
    project = new_project("dots", tmp_path)
    module_dir = project / "openhands_plugin_dots"
    hidden = [".mcp.json", "skills/dots/.mcp.json", ".plugin/.extra", ".a/sub/deep.txt",
              "hooks/.cfg/hooks.json"]
    nested = [".a/.b/nested.txt"]
    for relative in hidden + nested:
        (module_dir / relative).parent.mkdir(parents=True, exist_ok=True)
        (module_dir / relative).write_text(relative)
    backend = get_backend("uv")

    def shipped(extra: list[str]) -> set[str]:
        (project / "pyproject.toml").write_text(render_pyproject(
            dist_name="openhands-plugin-dots", version="0.1.0", description="dots",
            module="openhands_plugin_dots", plugin_name="dots", extra_package_data=extra),
            encoding="utf-8")
        out = tmp_path / f"out{len(extra)}"
        with zipfile.ZipFile(backend.build_wheel(project, out, sys.executable)) as wheel:
            return {n.split("/", 1)[1] for n in wheel.namelist()
                    if n.startswith("openhands_plugin_dots/")}

    first = shipped([])
    assert set(hidden) <= first and ".plugin/plugin.json" in first
    assert not set(nested) & first  # "**" does not enter .b inside .a
    assert set(nested) <= shipped([".a/.b/*"])


@pytest.mark.slow
@pytest.mark.parametrize("name", list(VARIANTS))
def test_the_installed_plugin_loads_from_the_store(
        store: isolator.PluginStore, generated: dict[str, Generated], name: str) -> None:
    g = generated[name]
    plugin = store.load(name)
    assert (plugin.name, plugin.version, plugin.description) == (name, "0.1.0", g.description)
    assert plugin.diagnostics == ()
    assert [s.name for s in plugin.skills] == [name]
    assert "Restate the request" in plugin.skills[0].content
    assert [c.name for c in plugin.commands] == [name]
    assert "$ARGUMENTS" in plugin.commands[0].content
    entry_points = store.entry_points(name)
    assert [e.value for e in entry_points["openhands.plugins"]] == [g.module]
    assert [e.name for e in entry_points["openhands.tools"]] == (
        ["word_count"] if g.with_tools else [])
    assert [e.value for e in entry_points["openhands.agents"]] == (
        [f"{g.module}.agent:create_agent"] if g.with_agent else [])
    # The content comes from the installed package, not from the project directory.
    assert not Path(plugin.root).is_relative_to(g.project)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["new-tools", "new-both"])
def test_the_tool_runs_in_the_worker(store: isolator.PluginStore, name: str) -> None:
    with HostBridge(store) as bridge:
        tool = bridge.tool(name, "word_count")
        assert tool.description.startswith("Count the words in *text*")
        assert tool.input_schema["required"] == ["text"]
        assert tool.input_schema["properties"]["text"]["type"] == "string"
        assert tool.input_schema["properties"]["min_length"] == {
            "type": "integer", "default": 1, "description": "Shorter words are not counted."}
        assert bridge.call_tool(name, "word_count", {"text": "a bb ccc"}).content == 3
        result = bridge.call_tool(name, "word_count", {"text": "a bb ccc", "min_length": 2})
        assert (result.content, result.is_error) == (2, False)


class RecordingLLM(EchoLLM):
    """The host's model: echoes, and remembers what it was asked."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[list[dict[str, Any]]] = []

    def complete(self, messages: list[dict[str, Any]], **options: Any) -> dict[str, Any]:
        self.requests.append(messages)
        return super().complete(messages, **options)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["new-agent", "new-both"])
def test_the_agent_runs_in_the_worker_with_the_hosts_model(
        store: isolator.PluginStore, generated: dict[str, Generated], name: str) -> None:
    llm = RecordingLLM()
    with HostBridge(store, llm=llm) as bridge:
        seen: list[Any] = []
        events = bridge.agent(name).step(
            {"messages": [{"role": "user", "content": "hello there friend"}]},
            on_event=seen.append)
        usage = bridge.llm_usage[name]
    expected = [{"type": "status", "text": "asking the model"},
                {"type": "message", "role": "assistant", "content": "echo: hello there friend"}]
    if generated[name].with_tools:
        expected.append({"type": "observation", "tool": "word_count", "result": 4})
    assert events == expected
    assert seen == events
    assert usage.calls == 1
    # The config defaults to plugin.json's parameters: its system prompt reached the model.
    prompt = store.load(name).manifest.extra["parameters"]["system_prompt"]
    assert llm.requests == [[{"role": "system", "content": prompt},
                             {"role": "user", "content": "hello there friend"}]]
