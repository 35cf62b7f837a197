"""``ohp demo``: the whole path, from example packages to plugin code in sandboxed workers.

In a temporary root, offline: build five example projects into a local wheelhouse (``uv build
--no-build-isolation``, with this interpreter's setuptools), install three plugins into a store
(each into its own venv: ``greetings``, content only; ``salute``, tools, depends on greetings and
pins example-textkit 1.x; ``echo-agent``, a custom agent, pins example-textkit 2.x), list them,
read greetings' content from site-packages, call tools in workers, run one agent step whose model
calls this process serves, report the sandbox layers in force, and remove everything.

Each step is timed and checks its own result: a step whose result is not what the examples
promise fails the demo. :func:`run_demo` returns a :class:`DemoResult`; ``ohp demo`` prints it
as it goes (or as JSON).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import io
import json
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from hostbridge.agents._agents import EchoLLM
from hostbridge.launch._sandbox import sandbox_layers
from hostbridge.supervision._bridge import HostBridge
from isolator import IsolatorError
from isolator.cli import one_line
from isolator.cli import print_summary as print_plugin_summary
from isolator.metadata import find_site_packages
from isolator.policy import Permissions
from isolator.sandbox import launcher_info, reachable_system_python
from isolator.store import PluginStore, UvBackend

if TYPE_CHECKING:
    from collections.abc import Callable

    from hostbridge.supervision._process import Worker
    from isolator.store import InstalledPlugin

PROJECTS = (
    "openhands-plugin-greetings",
    "openhands-plugin-salute",
    "openhands-plugin-echo-agent",
    "libs/example-textkit-1",
    "libs/example-textkit-2",
)
"""The example projects the demo builds, relative to the examples directory."""

PLUGINS = (
    ("greetings", "openhands-plugin-greetings"),
    ("salute", "openhands-plugin-salute"),
    ("echo-agent", "openhands-plugin-echo-agent"),
)
"""The plugins it installs, in order, and their distributions."""

TOOL_CALLS: tuple[tuple[str, str, dict[str, Any], str], ...] = (
    ("salute", "salute", {"name": "Ada"}, "HELLO, ADA!"),
    ("salute", "textkit_version", {}, "1.0.0"),
    ("echo-agent", "textkit_version", {}, "2.0.0"),
)
"""(plugin, tool, arguments, the result the examples promise)."""

PROMPT = "hello from ohp demo"
BUILD_PARALLEL = 2
_BUILD_TIMEOUT = 300.0
_CALL_TIMEOUT = 60.0
_INDENT = "    "
_BUILD_OUTPUT = ("build", "dist", "*.egg-info", "__pycache__", "*.pyc")


class DemoError(IsolatorError):
    """The demo could not run, or a step failed; *result* holds the steps run so far."""

    def __init__(self, message: str, result: DemoResult | None = None) -> None:
        super().__init__(message)
        self.result = result


@dataclass
class DemoStep:
    """One step: what it did (*lines*, for people; *data*, for programs) and how long it took."""

    number: int
    name: str
    title: str
    seconds: float = 0.0
    ok: bool = False
    data: dict[str, Any] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"number": self.number, "name": self.name, "title": self.title,
                               "seconds": round(self.seconds, 3), "ok": self.ok,
                               "data": self.data}
        if self.error is not None:
            out["error"] = self.error
        return out


@dataclass
class DemoResult:
    """Every step run, the temporary root, and the total wall time."""

    root: str
    kept: bool
    steps: list[DemoStep] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return len(self.steps) == len(_STEPS) and all(step.ok for step in self.steps)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "seconds": round(self.seconds, 3), "root": self.root,
                "kept": self.kept, "steps": [step.to_dict() for step in self.steps]}


_STEPS = (
    ("build", "build the example packages into a local wheelhouse"),
    ("install", "install three plugins, each into its own venv"),
    ("list", "list the installed plugins (ohp list)"),
    ("content", "read greetings' content from its venv's site-packages"),
    ("tools", "call plugin tools in their workers"),
    ("agent", "run one step of echo-agent's custom agent"),
    ("sandbox", "the sandbox layers in force for the workers"),
    ("cleanup", "clean up"),
)


def default_examples_dir() -> Path:
    """The example projects: ``hostbridge/_examples/`` in an installed wheel (setuptools copies
    ``examples/`` there when it builds one: pyproject.toml maps the package to that directory),
    else the repository's ``examples/`` next to the ``hostbridge`` package (a clone, an
    editable install)."""
    package = Path(__file__).resolve().parents[1]
    packaged = package / "_examples"
    if (packaged / PROJECTS[0] / "pyproject.toml").is_file():
        return packaged
    return package.parent / "examples"


def check_examples(examples: Path) -> Path:
    """*examples*, absolute, once it holds every project the demo builds; else
    :class:`DemoError` saying what is missing and what to do."""
    hint = ("pass --examples DIR (the examples/ directory of a clone of this repository); an "
            "installed isolator wheel ships them as hostbridge/_examples")
    if not examples.is_dir():
        raise DemoError(f"examples directory {examples}: not found; {hint}")
    missing = [p for p in PROJECTS if not (examples / p / "pyproject.toml").is_file()]
    if missing:
        raise DemoError(f"examples directory {examples}: no project {', '.join(missing)} "
                        f"(no pyproject.toml); {hint}")
    return examples.resolve()


def run_demo(examples: Path, *, keep: bool = False, out: TextIO | None = None) -> DemoResult:
    """Run every step in a new temporary root; print each one to *out* (None: quiet) as it
    ends. The root is removed at the end, also on an error or an interrupt, unless *keep*.

    Raises :class:`DemoError` (with the result so far) when a step fails, after cleaning up.
    """
    examples = check_examples(examples)
    if importlib.util.find_spec("setuptools") is None:
        raise DemoError(f"setuptools is not installed for {sys.executable}: the demo builds "
                        "the examples with it, offline (pip install setuptools)")
    return _Demo(examples, keep=keep, out=out).run()


def print_summary(result: DemoResult, out: TextIO) -> None:
    """One line per step with its time, the total, and ``demo ok`` (or what failed)."""
    out.write("\nsummary\n")
    width = max(len(title) for _, title in _STEPS)
    for step in result.steps:
        state = "" if step.ok else "  FAILED"
        out.write(f"  {step.number}  {step.title.ljust(width)}  {step.seconds:6.2f} s{state}\n")
    out.write(f"     {'total'.ljust(width)}  {result.seconds:6.2f} s\n")
    out.write("demo ok\n" if result.ok else "demo FAILED\n")
    out.flush()


class _Demo:
    """The state the steps share: the root, the store, the bridge and its workers."""

    def __init__(self, examples: Path, *, keep: bool, out: TextIO | None) -> None:
        self.examples = examples
        self.keep = keep
        self.out = out
        self.root = Path(tempfile.mkdtemp(prefix="ohp-demo-"))
        self.result = DemoResult(root=str(self.root), kept=keep)
        self.wheelhouse = self.root / "wheelhouse"
        # uv offline: nothing is fetched, whatever the machine's network can reach; its
        # temporary files (a build leaves lock files there) in the root. The store keeps uv's
        # cache inside it, as a store does (its venvs hardlink the cache's files).
        uv_env = {"UV_OFFLINE": "1", "TMPDIR": str(self.root / "tmp")}
        self.builder = UvBackend(cache_dir=self.root / "build-cache", extra_env=uv_env)
        self.python, self.python_note = _venv_python()
        store_root = self.root / "store"
        self.store = PluginStore(store_root, python=self.python, backend=UvBackend(
            cache_dir=store_root / "cache" / "uv", extra_env=uv_env))
        self.bridge: HostBridge | None = None
        self.cleaned = False

    # ---- running -------------------------------------------------------------------------

    def run(self) -> DemoResult:
        started = time.perf_counter()
        try:
            if os.geteuid() == 0:
                # Sandboxed workers of a root host run as uid 65534, which must enter the store
                # (mkdtemp makes the root 0700).
                self.root.chmod(0o755)
            (self.root / "tmp").mkdir()
            where = "kept afterwards" if self.keep else "removed at the end"
            self._write(f"ohp demo: three plugins, each in its own venv, offline, in "
                        f"{self.root} ({where})\n")
            actions: dict[str, Callable[[DemoStep], None]] = {
                "build": self._build, "install": self._install, "list": self._list,
                "content": self._content, "tools": self._tools, "agent": self._agent,
                "sandbox": self._sandbox, "cleanup": self._cleanup}
            for number, (name, title) in enumerate(_STEPS, 1):
                self._step(DemoStep(number, name, title), actions[name])
        finally:
            if not self.cleaned:
                self._remove(quiet=False)
            self.result.seconds = time.perf_counter() - started
        return self.result

    def _step(self, step: DemoStep, action: Callable[[DemoStep], None]) -> None:
        self.result.steps.append(step)
        started = time.perf_counter()
        try:
            action(step)
        except Exception as exc:
            step.seconds = time.perf_counter() - started
            step.error = one_line(str(exc) or type(exc).__name__, 400)
            self._show(step)
            raise DemoError(f"demo step {step.number} ({step.title}) failed: {step.error}",
                            self.result) from exc
        step.seconds = time.perf_counter() - started
        step.ok = True
        self._show(step)

    def _show(self, step: DemoStep) -> None:
        state = f"{step.seconds:.2f} s" if step.error is None else \
            f"FAILED after {step.seconds:.2f} s"
        text = f"\n[{step.number}/{len(_STEPS)}] {step.title}  ({state})\n"
        text += "".join(f"{_INDENT}{line}\n" if line else "\n" for line in step.lines)
        if step.error is not None:
            text += f"{_INDENT}error: {step.error}\n"
        self._write(text)

    def _write(self, text: str) -> None:
        if self.out is not None:
            self.out.write(text)
            self.out.flush()

    def _remove(self, *, quiet: bool) -> list[str]:
        """Stop the workers and remove the root (unless kept); what was done, for people."""
        self.cleaned = True
        done: list[str] = []
        if self.bridge is not None:
            self.bridge.close()
            self.bridge = None
            done.append("workers stopped")
        if self.keep:
            done.append(f"kept {self.root} (remove it with: rm -rf {self.root})")
        else:
            shutil.rmtree(self.root, ignore_errors=True)
            done.append(f"removed {self.root}")
        if not quiet:
            self._write("".join(f"ohp demo: {line}\n" for line in done))
        return done

    # ---- the steps -----------------------------------------------------------------------

    def _build(self, step: DemoStep) -> None:
        """Each project from a copy (setuptools writes build/ and *.egg-info into the project),
        by uv with this interpreter's setuptools: no build environment, no index, no network."""
        jobs: list[tuple[str, Path]] = []
        sources = self.root / "src"
        for project in PROJECTS:
            copy = sources / Path(project).name
            shutil.copytree(self.examples / project, copy,
                            ignore=shutil.ignore_patterns(*_BUILD_OUTPUT))
            jobs.append((project, copy))

        def build(job: tuple[str, Path]) -> Path:
            return self.builder.build_wheel(job[1], self.wheelhouse, sys.executable,
                                            no_index=True, build_isolation=False,
                                            timeout=_BUILD_TIMEOUT)

        with ThreadPoolExecutor(max_workers=BUILD_PARALLEL) as pool:
            wheels = list(pool.map(build, jobs))
        shutil.rmtree(sources)
        setuptools = importlib.metadata.version("setuptools")
        step.lines += [
            f"uv build --wheel --no-build-isolation --offline, {BUILD_PARALLEL} at a time, "
            f"with setuptools {setuptools} of {sys.executable}",
            f"from copies of {self.examples}, into {self.wheelhouse}:"]
        built = {project: wheel.name for (project, _), wheel in zip(jobs, wheels, strict=True)}
        width = max(map(len, built.values()))
        step.lines += [f"  {wheel.ljust(width)}  <- examples/{project}"
                       for project, wheel in built.items()]
        step.data = {"wheelhouse": str(self.wheelhouse), "python": sys.executable,
                     "setuptools": setuptools, "wheels": built}

    def _install(self, step: DemoStep) -> None:
        if self.python_note:
            step.lines.append(self.python_note)
        step.lines.append(f"store {self.store.root}; from the wheelhouse only (--find-links "
                          f"{self.wheelhouse.name} --no-index)")
        plugins = []
        for name, dist in PLUGINS:
            installed = self.store.install(f"pypi:{dist}", find_links=[self.wheelhouse],
                                           no_index=True)
            _expect(installed.name == name, f"installing {dist} gave plugin "
                    f"{installed.name!r}, expected {name!r}")
            plugins.append(self._describe_install(installed, step.lines))
        textkits = {p["name"]: v for p in plugins for d, v in p["distributions"].items()
                    if d == "example-textkit"}
        _expect(textkits == {"salute": "1.0.0", "echo-agent": "2.0.0"},
                f"example-textkit in the venvs: {textkits}, expected salute 1.0.0 and "
                "echo-agent 2.0.0")
        step.lines.append("example-textkit: 1.0.0 in salute's venv, 2.0.0 in echo-agent's: "
                          "conflicting pins, each plugin in its own venv")

        # What `ohp configure echo-agent --grant capability:llm.complete` does: the operator
        # grants one capability its plugin.json asks for.
        asked = Permissions.from_manifest(self.store.load("echo-agent").manifest.extra,
                                          "echo-agent")
        granted = asked.grant(["capability:llm.complete"], "echo-agent")
        self.store.configure("echo-agent", grants=granted)
        step.lines.append(f"echo-agent asks for capabilities {', '.join(asked.capabilities)}; "
                          f"granted: {', '.join(granted.capabilities)} (as `ohp configure "
                          "echo-agent --grant capability:llm.complete`)")
        step.data = {"store": str(self.store.root), "plugins": plugins,
                     "granted": {"echo-agent": list(granted.capabilities)}}

    def _describe_install(self, installed: InstalledPlugin, lines: list[str]) -> dict[str, Any]:
        code = [f"{group.rsplit('.', 1)[1][:-1]} {ep.name}"
                for group, eps in self.store.entry_points(installed.name).items()
                if group != "openhands.plugins" for ep in eps]
        python = installed.python or {}
        dists = {d.name: d.version for d in installed.distributions}
        brought = [entry for entry in installed.metadata.get("brought") or []
                   if isinstance(entry, dict)]
        lines += [
            "",
            f"{installed.name} {installed.version}  ({installed.package}; "
            f"{', '.join(code) if code else 'no code: content only'})",
            f"  venv        {installed.venv}",
            f"  python      {python.get('version')} (venv made from {python.get('path')})",
            f"  holds       {', '.join(f'{n} {v}' for n, v in sorted(dists.items()))}"]
        lines += [f"  brings      plugin {b.get('name')} {b.get('version')} ({b.get('package')}):"
                  f" loadable from this venv too, brought by {installed.name}" for b in brought]
        return {"name": installed.name, "version": installed.version,
                "package": installed.package, "venv": str(installed.venv),
                "python": python.get("version"), "python_path": python.get("path"),
                "code": code, "distributions": dists,
                "brings": [{"name": b.get("name"), "version": b.get("version"),
                            "package": b.get("package"), "brought_by": installed.name}
                           for b in brought]}

    def _list(self, step: DemoStep) -> None:
        plugins = self.store.list_installed()
        rows = [(p.name, p.version, p.package or "(content only)", p.python_version or "-",
                 f"brought by {p.brought_by}" if p.brought_by else p.source.source)
                for p in plugins]
        header = ("NAME", "VERSION", "PACKAGE", "PYTHON", "SOURCE")
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(4)]
        step.lines += ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:4]))
                       + "  " + row[4] for row in [header, *rows]]
        names = [p.name for p in plugins]
        _expect(names == sorted(name for name, _ in PLUGINS),
                f"ohp list shows {names}, expected the three plugins")
        step.lines.append("greetings is also in salute's venv (brought by salute); the one "
                          "installed itself is the one listed")
        step.data = {"plugins": [{"name": p.name, "version": p.version, "package": p.package,
                                  "python": p.python_version, "source": p.source.source,
                                  "brought_by": p.brought_by} for p in plugins]}

    def _content(self, step: DemoStep) -> None:
        installed = self.store.get("greetings")
        plugin = self.store.load("greetings")
        assert installed.venv is not None  # a package plugin has a venv
        site = find_site_packages(installed.venv)
        root = Path(plugin.root)
        _expect(root.is_relative_to(site), f"greetings' content is at {root}, outside its "
                f"venv's site-packages {site}")
        module = installed.module or root.name
        imported = module in sys.modules
        _expect(not imported, f"{module} was imported into the host")
        text = io.StringIO()
        print_plugin_summary(plugin, text)
        step.lines += text.getvalue().rstrip("\n").splitlines()
        step.lines += ["", f"site-packages: {site}",
                       f"read as files: {module} was not imported (not in this process's "
                       "sys.modules); nothing of the plugin ran"]
        _expect(bool(plugin.skills and plugin.commands and plugin.agents and plugin.hooks
                     and plugin.mcp_servers), "greetings lacks a skill, command, agent, hook "
                "or MCP server")
        step.data = {"plugin": plugin.name, "root": str(root), "site_packages": str(site),
                     "skills": [s.name for s in plugin.skills],
                     "commands": [c.name for c in plugin.commands],
                     "agents": [a.name for a in plugin.agents],
                     "hooks": sorted(plugin.hooks or {}),
                     "mcp_servers": sorted(plugin.mcp_servers),
                     "imported": imported}

    def _tools(self, step: DemoStep) -> None:
        # The bridge lives until the cleanup step: the agent and sandbox steps use its workers.
        self.bridge = bridge = HostBridge(self.store, llm=EchoLLM())
        calls = []
        for plugin, tool, arguments, expected in TOOL_CALLS:
            result = bridge.call_tool(plugin, tool, arguments, timeout=_CALL_TIMEOUT)
            _expect(not result.is_error and result.content == expected,
                    f"{plugin}'s {tool} returned {result.content!r}, expected {expected!r}")
            args = ", ".join(f"{k}={json.dumps(v)}" for k, v in arguments.items())
            step.lines.append(f"{plugin.ljust(10)}  {tool}({args}) -> {result.content!r}")
            calls.append({"plugin": plugin, "tool": tool, "arguments": arguments,
                          "content": result.content, "is_error": result.is_error})
        step.lines += ["", "each plugin's worker (the venv's interpreter, -I -S):"]
        workers = {}
        for plugin in _worker_plugins():
            worker = bridge.worker(plugin)
            hello = worker.hello
            step.lines.append(f"{plugin.ljust(10)}  pid {worker.pid}  {hello.get('executable')} "
                              f"(Python {hello.get('python')})")
            workers[plugin] = {"pid": worker.pid, "python": hello.get("executable"),
                               "python_version": hello.get("python")}
        in_host = importlib.util.find_spec("example_textkit") is not None
        step.lines.append("this process (the host) has an example_textkit of its own; the "
                          "workers used their venvs'" if in_host else "this process (the "
                          "host) cannot import example_textkit: each version lives only in its "
                          "plugin's venv")
        step.data = {"calls": calls, "workers": workers, "textkit_in_host": in_host}

    def _agent(self, step: DemoStep) -> None:
        assert self.bridge is not None
        bridge = self.bridge
        agent = bridge.agent("echo-agent")
        state = {"messages": [{"role": "user", "content": PROMPT}]}
        step.lines += ["create_agent() runs in echo-agent's worker; its llm.complete() is "
                       "answered by EchoLLM, a deterministic model held by this process",
                       f"step({json.dumps(state)}) -> events, each as it happened:"]
        events = agent.step(state, on_event=lambda event: step.lines.append(
            "  " + json.dumps(event, ensure_ascii=False)), timeout=_CALL_TIMEOUT)
        _expect(any(isinstance(e, dict) and e.get("content") == f"echo: {PROMPT}"
                    for e in events), f"the agent's events lack the model's answer: {events}")
        usage = bridge.llm_usage["echo-agent"]
        calls = f"{usage.calls} call" + ("" if usage.calls == 1 else "s")
        step.lines.append(f"host-side model use by echo-agent: {calls}, "
                          f"{usage.prompt_tokens} prompt + {usage.completion_tokens} completion "
                          "tokens, counted (and capped) by the host; the model and its "
                          "credentials stay in this process")
        step.data = {"state": state, "events": events, "llm_usage": usage.to_dict()}

    def _sandbox(self, step: DemoStep) -> None:
        assert self.bridge is not None
        workers = {name: self.bridge.worker(name) for name in _worker_plugins()}
        info = launcher_info()
        profiles = {name: worker.profile for name, worker in workers.items()}
        step.lines.append("profile: " + ", ".join(f"{n} {p}" for n, p in profiles.items())
                          + " (the default; `--sandbox` or `ohp install --sandbox` changes it)")
        who = "root" if info["host_is_root"] else f"uid {os.geteuid()}"
        step.lines.append(f"this machine: the host runs as {who}; Landlock ABI "
                          f"{info['landlock']}; namespaces through "
                          f"{info['unshare'] or 'nothing (no unshare)'}")
        rows: list[tuple[str, str, str, str]] = [("LAYER", "HERE", "IN FORCE", "WHAT")]
        layers: dict[str, Any] = {}
        for layer, about in sandbox_layers().items():
            values = {name: _in_force(worker, layer, about) for name, worker in workers.items()}
            states = {name: _state(layer, value) for name, value in values.items()}
            in_force = next(iter(states.values())) if len(set(states.values())) == 1 else \
                "; ".join(f"{name}: {state}" for name, state in states.items())
            if not any(values.values()) and about["profiles"] == ["strict"]:
                in_force += " (strict only)"
            here = "n/a" if about["works"] is None else "works" if about["works"] else "MISSING"
            rows.append((layer, here, in_force, one_line(about["what"], 64)))
            layers[layer] = {"works_here": about["works"], "profiles": about["profiles"],
                             "in_force": _jsonable(values)}
        widths = [max(len(row[i]) for row in rows) for i in range(3)]
        step.lines += ["  ".join([*(row[i].ljust(widths[i]) for i in range(3)), row[3]])
                       for row in rows]
        applied = {name: _applied(worker.sandbox.get("applied_in_worker"))
                   for name, worker in workers.items()}
        if len(set(applied.values())) == 1:
            step.lines.append(f"each worker applied to itself, before any plugin code: "
                              f"{next(iter(applied.values()))}")
        else:
            step.lines += [f"{name} applied to itself, before any plugin code: {text}"
                           for name, text in applied.items()]
        step.data = {"profiles": profiles, "host_is_root": info["host_is_root"],
                     "landlock_abi": info["landlock"], "layers": layers,
                     "applied_in_worker": {name: _jsonable(worker.sandbox.get(
                         "applied_in_worker")) for name, worker in workers.items()}}

    def _cleanup(self, step: DemoStep) -> None:
        pids = {}
        if self.bridge is not None:
            pids = {name: self.bridge.worker(name).pid for name in _worker_plugins()}
        step.lines += self._remove(quiet=True)
        running = [name for name, pid in pids.items() if pid is not None and _running(pid)]
        _expect(not running, f"workers still running: {running}")
        _expect(self.keep or not self.root.exists(), f"{self.root} is still there")
        step.data = {"workers_stopped": sorted(pids), "root_removed": not self.root.exists(),
                     "kept": str(self.root) if self.keep else None}


# ---- helpers -------------------------------------------------------------------------------


def _venv_python() -> tuple[str, str | None]:
    """The interpreter to make plugin venvs from, and a note when it is not this one.

    When the host is root, sandboxed workers run as uid 65534, which cannot run an interpreter
    under /root (pyenv): the system's python3, when that uid can run it."""
    if os.geteuid() != 0:
        return sys.executable, None
    system = reachable_system_python()
    if system is None:
        return sys.executable, (f"this process runs as root and uid 65534 can run no system "
                                f"python3: workers run as root ({sys.executable})")
    return system, (f"this process runs as root: venvs are made from {system}, which the "
                    f"workers' uid 65534 can run")


def _worker_plugins() -> list[str]:
    return list(dict.fromkeys(plugin for plugin, *_ in TOOL_CALLS))


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise DemoError(message)


def _running(pid: int, wait: float = 2.0) -> bool:
    """Whether process *pid* still exists after up to *wait* seconds."""
    deadline = time.monotonic() + wait
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass  # it exists, under another uid
        if time.monotonic() > deadline:
            return True
        time.sleep(0.05)


def _in_force(worker: Worker, layer: str, about: dict[str, Any]) -> Any:
    """*layer*'s value for *worker*: its launch record, else (a layer every process of its
    profile gets, such as the process group) whether the layer works here."""
    if layer in worker.sandbox:
        return worker.sandbox[layer]
    return bool(about["works"]) and worker.profile in about["profiles"]


_LIMIT_NAMES = {"memory_bytes": "memory", "open_files": "open files", "cpu_seconds": "CPU s",
                "processes": "processes", "file_size_bytes": "file size"}


def _state(layer: str, value: object) -> str:
    """A layer's value in a worker's launch record, for people."""
    if value is True:
        return "yes"
    if value is False:
        return "no"
    if value is None:
        return "n/a"
    if layer == "rlimits" and isinstance(value, dict):
        return ", ".join(f"{_LIMIT_NAMES.get(k, k)} {_bytes(v) if k.endswith('_bytes') else v}"
                         for k, v in value.items() if v is not None) or "none set"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    return str(value)


def _bytes(size: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale and size % scale == 0:
            return f"{size // scale} {unit}"
    return f"{size} B"


def _applied(record: object) -> str:
    """What a worker applied to itself (its handshake's ``sandbox``), for people."""
    if not isinstance(record, dict) or not record:
        return "nothing"
    parts = []
    for key, value in record.items():
        if key == "landlock" and isinstance(value, dict):
            rules = [k for k, v in value.items() if v]
            parts.append(f"Landlock ({', '.join(rules) or 'no'} rules)")
        elif key == "seccomp":
            sockets = "no new sockets" if value == "none" else f"sockets: {value}"
            parts.append(f"seccomp filter ({sockets})")
        elif key == "mode_changes":
            parts.append("chmod/chown allowed" if value else "no chmod/chown")
        else:
            parts.append(f"{key} {value}")
    return ", ".join(parts)


def _jsonable(value: Any) -> Any:
    with contextlib.suppress(TypeError, ValueError):
        return json.loads(json.dumps(value))
    return str(value)
