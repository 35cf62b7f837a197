"""The plugin store under faults: kill -9 and Ctrl-C at each install checkpoint, eight installs
racing, a full disk, unknown plugins, malformed wheels, name collisions, a foreign directory.

Nothing is mocked: uv resolves and installs offline from the example wheelhouse; installs that
must crash run as subprocesses that stop themselves at a checkpoint (``ISOLATOR_STOP_AT``, see
``isolator.store._disk.checkpoint``) and are then killed for real; the full disk is a small tmpfs
mounted in a private mount namespace. Every test has its own store root under ``tmp_path``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from helpers_build import make_wheel

from isolator import (
    IsolatorError,
    PluginCollisionError,
    PluginNotFoundError,
    PluginStore,
    ResolutionError,
    StoreError,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from isolator import InstalledPlugin

PACKAGE = "openhands-plugin-greetings"
SOURCE = f"pypi:{PACKAGE}"
MODULE = "openhands_plugin_greetings"
NAME = "greetings"
WAIT = 300.0
"""Seconds to wait for any one subprocess or state: generous, CI has two cores."""
UPGRADE_STAGES = ("resolved", "fetched", "venv-created", "installed", "metadata-written")
GENERATION_STAGES = frozenset({"venv-created", "installed", "metadata-written"})
"""The stages at which the interrupted install has made its generation directory."""


# ---- helpers ---------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _ohp() -> list[str]:
    ohp = Path(sys.executable).with_name("ohp")
    return [str(ohp)] if ohp.exists() else [sys.executable, "-m", "isolator.cli"]


def _run_ohp(*args: str | os.PathLike[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*_ohp(), *map(str, args)], capture_output=True, text=True,
                          timeout=WAIT, check=False, cwd=cwd)


def _assert_one_error_line(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    """``ohp`` failed as it should: exit 1, nothing on stdout, one ``ohp: error:`` line."""
    lines = result.stderr.splitlines()
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("ohp: error: "), result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def _install_v1(root: Path, wheelhouse: Path) -> tuple[PluginStore, InstalledPlugin]:
    store = PluginStore(root)
    installed = store.install(SOURCE, find_links=[wheelhouse], no_index=True)
    assert (installed.name, installed.version) == (NAME, "1.0.0")
    return store, installed


def _upgrade_argv(root: Path, wheelhouse: Path, newer: Path) -> list[str]:
    return [*_ohp(), "install", SOURCE, "--version", ">=1.1", "--upgrade", "-q",
            "--root", str(root), "--find-links", str(wheelhouse), "--find-links", str(newer),
            "--no-index"]


def _install_argv(root: Path, wheelhouse: Path) -> list[str]:
    return [*_ohp(), "install", SOURCE, "-q", "--root", str(root),
            "--find-links", str(wheelhouse), "--no-index"]


def _gen_dirs(root: Path, name: str = NAME) -> list[str]:
    return sorted(p.name for p in (root / "plugins" / name).glob("gen-*"))


def _all_gen_dirs(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.glob("plugins/*/gen-*"))


def _scratch(root: Path) -> list[str]:
    tmp = root / "tmp"
    return sorted(p.name for p in tmp.iterdir()) if tmp.is_dir() else []


def _pointer_temps(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.glob("plugins/*/.current*"))


def _wheel_hashes(root: Path) -> set[str]:
    wheelhouse = root / "wheelhouse"
    return {p.name for p in wheelhouse.iterdir()} if wheelhouse.is_dir() else set()


def _tree(root: Path) -> dict[str, tuple[bool, bytes | None, int]]:
    """Every path under *root*: whether a directory, a file's bytes, its mtime."""
    found: dict[str, tuple[bool, bytes | None, int]] = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        data = path.read_bytes() if path.is_file() else None
        found[str(path.relative_to(root))] = (path.is_dir(), data, info.st_mtime_ns)
    return found


def _assert_works(store: PluginStore, version: str, generation: str | None = None) -> None:
    """Plugin ``greetings`` is installed at *version*: readable, loadable, importable."""
    installed = store.get(NAME)
    assert installed.version == version
    if generation is not None:
        assert installed.generation == generation
    metadata = json.loads((installed.path / "metadata.json").read_text(encoding="utf-8"))
    assert (metadata["name"], metadata["version"]) == (NAME, version)
    plugin = store.load(NAME)
    assert (plugin.name, plugin.version) == (NAME, version)
    assert plugin.skills, "the plugin's skills did not load"
    assert installed.venv is not None
    probe = subprocess.run(
        [str(installed.venv / "bin" / "python"), "-c",
         f"import importlib.metadata, {MODULE}; print(importlib.metadata.version({PACKAGE!r}))"],
        capture_output=True, text=True, timeout=WAIT, check=False)
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip() == version


def _assert_clean_store(store: PluginStore, generation: str | None) -> None:
    """After ``clean()``: no scratch, no stray generation or pointer file, and the wheelhouse
    holds exactly the files the current generation was built from."""
    root = store.root
    assert _scratch(root) == [], "clean() left scratch space behind"
    assert _pointer_temps(root) == [], "clean() left a pointer's temporary file behind"
    if generation is None:
        assert _all_gen_dirs(root) == []
        assert not (root / "plugins" / NAME).exists()
        assert _wheel_hashes(root) == set()
        return
    assert _all_gen_dirs(root) == [f"plugins/{NAME}/{generation}"]
    assert sorted(p.name for p in (root / "plugins" / NAME).iterdir()) == ["current", generation]
    current = store.get(NAME)
    assert current.generation == generation
    assert _wheel_hashes(root) == {d.sha256 for d in current.distributions}


def _proc_state(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            stat = handle.read()
    except FileNotFoundError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]  # the field after "(comm)"; comm may hold spaces


@contextlib.contextmanager
def _stopped_at(stage: str, argv: Sequence[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run *argv* with ``ISOLATOR_STOP_AT=stage``; yield it once it has stopped itself there."""
    env = {**os.environ, "ISOLATOR_STOP_AT": stage}
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + WAIT
        while _proc_state(proc.pid) != "T":
            if proc.poll() is not None:
                raise AssertionError(f"the install exited with {proc.returncode} instead of "
                                     f"stopping at {stage!r}:\n{log.read_text(errors='replace')}")
            if time.monotonic() > deadline:
                raise AssertionError(f"the install did not stop at {stage!r} in {WAIT:g} s")
            time.sleep(0.02)
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()  # SIGKILL ends a stopped process too
        proc.wait(WAIT)


def _kill_at(stage: str, argv: Sequence[str], log: Path) -> None:
    with _stopped_at(stage, argv, log) as proc:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(WAIT)
    assert proc.returncode == -signal.SIGKILL


def _content_plugin(parent: Path, name: str) -> Path:
    """A content-only plugin directory (no pyproject.toml) whose plugin.json names *name*."""
    directory = parent / f"content-{name}"
    (directory / ".plugin").mkdir(parents=True)
    (directory / ".plugin" / "plugin.json").write_text(json.dumps(
        {"name": name, "version": "0.1.0", "description": "test content"}), encoding="utf-8")
    skill = directory / "skills" / "note"
    skill.mkdir(parents=True)
    (skill / "SKILL.md").write_text(
        "---\nname: note\ndescription: Take a note.\n---\nWrite it down.\n", encoding="utf-8")
    return directory


def _plugin_files(module: str, name: str, version: str) -> dict[str, str]:
    return {
        f"{module}/__init__.py": "",
        f"{module}/.plugin/plugin.json": json.dumps({"name": name, "version": version}),
        f"{module}/skills/hello-again/SKILL.md":
            "---\nname: hello-again\ndescription: Greet once more.\n---\nSay hello again.\n",
    }


@pytest.fixture(scope="module")
def newer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A find-links directory with greetings 1.1.0 (same package, same entry point)."""
    out = tmp_path_factory.mktemp("greetings-1.1")
    make_wheel(out, PACKAGE, "1.1.0", files=_plugin_files(MODULE, NAME, "1.1.0"),
               entry_points={"openhands.plugins": {NAME: MODULE}})
    return out


def _newer_hash(newer: Path) -> str:
    (wheel,) = newer.glob("*.whl")
    return _sha256(wheel)


# ---- 1. kill -9 (and Ctrl-C) at each checkpoint -----------------------------------------------


@pytest.mark.parametrize("stage", UPGRADE_STAGES)
def test_kill_during_upgrade_keeps_previous_generation(
    stage: str, tmp_path: Path, example_wheelhouse: Path, newer: Path
) -> None:
    root = tmp_path / "store"
    store, v1 = _install_v1(root, example_wheelhouse)

    _kill_at(stage, _upgrade_argv(root, example_wheelhouse, newer), tmp_path / "upgrade.log")

    # The crash left its debris (else this test would prove nothing about clean()).
    assert len(_scratch(root)) == 1, _scratch(root)
    expected_gens = 2 if stage in GENERATION_STAGES else 1
    assert len(_gen_dirs(root)) == expected_gens, _gen_dirs(root)
    assert (_newer_hash(newer) in _wheel_hashes(root)) == (stage != "resolved")
    # Readers still see the previous generation, whole.
    _assert_works(store, "1.0.0", v1.generation)
    assert [(p.name, p.version) for p in store.list_installed()] == [(NAME, "1.0.0")]

    report = store.clean()
    assert report.scratch == 1
    assert len(report.generations) == expected_gens - 1
    assert report.wheels == (0 if stage == "resolved" else 1)
    _assert_clean_store(store, v1.generation)
    _assert_works(store, "1.0.0", v1.generation)

    # The locks died with the process: the same upgrade now goes through.
    upgraded = store.install(SOURCE, version=">=1.1", find_links=[example_wheelhouse, newer],
                             no_index=True, upgrade=True)
    assert upgraded.version == "1.1.0"
    assert _gen_dirs(root) == [upgraded.generation]


def test_kill_after_switch_new_generation_is_current(
    tmp_path: Path, example_wheelhouse: Path, newer: Path
) -> None:
    root = tmp_path / "store"
    store, v1 = _install_v1(root, example_wheelhouse)

    _kill_at("switched", _upgrade_argv(root, example_wheelhouse, newer), tmp_path / "up.log")

    new = store.get(NAME)
    assert new.generation != v1.generation
    assert sorted(_gen_dirs(root)) == sorted([v1.generation, new.generation])
    _assert_works(store, "1.1.0", new.generation)

    report = store.clean()
    assert report.generations == (f"{NAME}/{v1.generation}",)
    _assert_clean_store(store, new.generation)
    assert _wheel_hashes(root) == {_newer_hash(newer)}
    _assert_works(store, "1.1.0", new.generation)


def test_kill_during_first_install_leaves_nothing_installed(
    tmp_path: Path, example_wheelhouse: Path
) -> None:
    root = tmp_path / "store"
    _kill_at("installed", _install_argv(root, example_wheelhouse), tmp_path / "install.log")
    store = PluginStore(root)

    assert len(_gen_dirs(root)) == 1, "the killed install should have left its generation"
    assert store.list_installed() == []
    with pytest.raises(PluginNotFoundError):
        store.get(NAME)
    with pytest.raises(PluginNotFoundError):
        store.load(NAME)
    listed = _run_ohp("list", "--root", root, "--json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == []

    report = store.clean()
    assert len(report.generations) == 1
    _assert_clean_store(store, None)
    plugins = root / "plugins"
    assert not plugins.exists() or list(plugins.iterdir()) == []

    _, installed = _install_v1(root, example_wheelhouse)  # the store is usable again
    _assert_works(store, "1.0.0", installed.generation)


@pytest.mark.parametrize("stage", UPGRADE_STAGES)
def test_ctrl_c_during_upgrade_cleans_up_on_the_spot(
    stage: str, tmp_path: Path, example_wheelhouse: Path, newer: Path
) -> None:
    root = tmp_path / "store"
    store, v1 = _install_v1(root, example_wheelhouse)
    log = tmp_path / "upgrade.log"

    with _stopped_at(stage, _upgrade_argv(root, example_wheelhouse, newer), log) as proc:
        os.kill(proc.pid, signal.SIGINT)  # pending until it runs again
        os.kill(proc.pid, signal.SIGCONT)
        proc.wait(WAIT)

    output = log.read_text(errors="replace")
    assert proc.returncode == 130, output
    assert output.splitlines() == ["ohp: interrupted; installed plugins are as they were"]
    # Without any clean(): the interrupted install removed its generation and its scratch.
    assert _gen_dirs(root) == [v1.generation]
    assert _scratch(root) == []
    assert _pointer_temps(root) == []
    _assert_works(store, "1.0.0", v1.generation)
    store.clean()
    _assert_clean_store(store, v1.generation)


def test_ctrl_c_right_after_switch_leaves_a_working_plugin(
    tmp_path: Path, example_wheelhouse: Path, newer: Path
) -> None:
    root = tmp_path / "store"
    store, _v1 = _install_v1(root, example_wheelhouse)
    log = tmp_path / "upgrade.log"

    with _stopped_at("switched", _upgrade_argv(root, example_wheelhouse, newer), log) as proc:
        os.kill(proc.pid, signal.SIGINT)
        os.kill(proc.pid, signal.SIGCONT)
        proc.wait(WAIT)
    assert proc.returncode == 130, log.read_text(errors="replace")

    try:
        installed = store.get(NAME)
        listed = store.list_installed()
    except StoreError as exc:
        raise AssertionError(f"Ctrl-C after the switch damaged the store: {exc}") from exc
    assert [p.name for p in listed] == [NAME]
    assert installed.version in {"1.0.0", "1.1.0"}
    _assert_works(store, installed.version, installed.generation)
    store.clean()
    _assert_clean_store(store, installed.generation)


# ---- 2. eight installs at once ---------------------------------------------------------------

_RACER = r"""
import json, os, sys, time
from isolator import PluginStore
root, go, source, links = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
open(f"{go}.ready-{os.getpid()}", "w").close()
deadline = time.monotonic() + 300
while not os.path.exists(go):
    if time.monotonic() > deadline:
        sys.exit("never released")
    time.sleep(0.001)
if links:
    installed = PluginStore(root).install(source, find_links=links, no_index=True)
else:
    installed = PluginStore(root).install(source)
print(json.dumps({"generation": installed.generation, "version": installed.version}))
"""


def _race(root: Path, barrier: Path, source: str, links: Sequence[Path], n: int = 8) \
        -> list[subprocess.CompletedProcess[str]]:
    """Start *n* installs of *source* into *root*, release them together, collect them."""
    script = barrier.with_suffix(".py")
    script.write_text(_RACER, encoding="utf-8")
    go = barrier / "go"
    barrier.mkdir()
    argv = [sys.executable, str(script), str(root), str(go), source, *map(str, links)]
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              stdin=subprocess.DEVNULL) for _ in range(n)]
    try:
        deadline = time.monotonic() + WAIT
        while len(list(barrier.glob("go.ready-*"))) < n:
            assert all(p.poll() is None for p in procs), "a racer died before the start"
            assert time.monotonic() < deadline, "the racers never got ready"
            time.sleep(0.01)
        go.touch()
        results = []
        for proc in procs:
            out, err = proc.communicate(timeout=WAIT)
            results.append(subprocess.CompletedProcess(argv, proc.returncode, out, err))
        return results
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(WAIT)


def _race_report(results: Sequence[subprocess.CompletedProcess[str]]) -> str:
    return "\n".join(f"exit {r.returncode}: {r.stdout.strip()} {r.stderr.strip()[-500:]}"
                     for r in results)


@pytest.mark.slow
def test_eight_concurrent_installs_make_one_generation(
    tmp_path: Path, example_wheelhouse: Path
) -> None:
    root = tmp_path / "store"
    store = PluginStore(root)
    # The store exists beforehand: creating a store concurrently is its own race (next test).
    store.install(str(_content_plugin(tmp_path, "scaffold")))
    store.uninstall("scaffold")

    results = _race(root, tmp_path / "barrier", SOURCE, [example_wheelhouse])

    report = _race_report(results)
    assert [r.returncode for r in results] == [0] * 8, report
    answers = [json.loads(r.stdout) for r in results]
    (generation,) = _gen_dirs(root)
    assert {a["generation"] for a in answers} == {generation}, report
    assert {a["version"] for a in answers} == {"1.0.0"}
    metadata = json.loads((root / "plugins" / NAME / generation / "metadata.json").read_text(
        encoding="utf-8"))
    assert (metadata["name"], metadata["version"], metadata["generation"]) == \
        (NAME, "1.0.0", generation)
    wheel = next(example_wheelhouse.glob("openhands_plugin_greetings-1.0.0-*.whl"))
    assert [(d["name"], d["version"], d["sha256"]) for d in metadata["distributions"]] == \
        [(PACKAGE, "1.0.0", _sha256(wheel))]
    assert [(p.name, p.generation) for p in store.list_installed()] == [(NAME, generation)]
    assert _scratch(root) == []
    assert _wheel_hashes(root) == {_sha256(wheel)}
    _assert_works(store, "1.0.0", generation)


@pytest.mark.slow
def test_concurrent_installs_into_a_new_root(tmp_path: Path) -> None:
    content = _content_plugin(tmp_path, "notes")
    for round_ in range(6):
        root = tmp_path / f"store-{round_}"
        results = _race(root, tmp_path / f"barrier-{round_}", str(content), [])
        assert [r.returncode for r in results] == [0] * 8, _race_report(results)
        assert len(_gen_dirs(root, "notes")) == 1
        assert [p.name for p in PluginStore(root).list_installed()] == ["notes"]


# ---- 3. a full disk ---------------------------------------------------------------------------

_FULL_DISK_SCRIPT = r'''
"""Mount a tmpfs, then install greetings with less and less room left on it; report as JSON."""
import json, os, shutil, subprocess, sys
from pathlib import Path

mnt, wheelhouse, newer, out_path, size = sys.argv[1:6]
Path(out_path + ".started").touch()
mount = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", mnt],
                       capture_output=True, text=True)
if mount.returncode != 0:
    print(f"mount failed: {mount.stderr.strip()}", file=sys.stderr)
    sys.exit(77)
try:
    from isolator import IsolatorError, PluginNotFoundError, PluginStore

    SOURCE = "pypi:openhands-plugin-greetings"
    FILLER = Path(mnt) / "filler"
    PAGE = 4096

    def free():
        st = os.statvfs(mnt)
        return st.f_bavail * st.f_frsize

    def fill(budget):
        """Leave *budget* bytes free."""
        size = free() - budget
        if size <= 0:
            return
        with open(FILLER, "wb") as handle:
            try:
                os.posix_fallocate(handle.fileno(), 0, size)
            except OSError:
                handle.truncate(0)
                while size > 0:
                    size -= handle.write(b"\0" * min(size, 1 << 20))

    def install(store, upgrade):
        if upgrade:
            return store.install(SOURCE, version=">=1.1", find_links=[wheelhouse, newer],
                                 no_index=True, upgrade=True)
        return store.install(SOURCE, find_links=[wheelhouse], no_index=True)

    def state(store):
        root = store.root
        plugins = root / "plugins"
        tmp = root / "tmp"
        wheels = root / "wheelhouse"
        data = {
            "gens": sorted(str(p.relative_to(root)) for p in plugins.glob("*/gen-*")),
            "strays": sorted(str(p.relative_to(root)) for p in plugins.glob("*/*")
                             if not p.name.startswith("gen-") and p.name != "current"),
            "scratch": sorted(p.name for p in tmp.iterdir()) if tmp.is_dir() else [],
            "wheels": sorted(p.name for p in wheels.iterdir()) if wheels.is_dir() else [],
        }
        try:
            data["listed"] = [[p.name, p.version] for p in store.list_installed()]
        except Exception as exc:
            data["listed"] = f"{type(exc).__name__}: {exc}"
        try:
            current = store.get("greetings")
        except PluginNotFoundError:
            data["current"] = None
            return data
        except Exception as exc:
            data["current"] = f"{type(exc).__name__}: {exc}"
            return data
        probe = subprocess.run([str(current.venv / "bin" / "python"), "-c",
                                "import openhands_plugin_greetings"], capture_output=True)
        try:
            store.load("greetings")
            loads = True
        except Exception as exc:
            loads = f"{type(exc).__name__}: {exc}"
        data["current"] = {"version": current.version, "generation": current.generation,
                           "referenced": sorted(d.sha256 for d in current.distributions),
                           "imports": probe.returncode == 0, "loads": loads}
        return data

    def measure(upgrade):
        store = PluginStore(Path(mnt) / ("measure-upgrade" if upgrade else "measure-fresh"))
        if upgrade:
            install(store, False)
            before = free()
            with store.lease("greetings"):  # keeps the old generation: the peak, not the net
                install(store, True)
        else:
            before = free()
            install(store, False)
        used = before - free()
        shutil.rmtree(store.root)
        return used

    def scenario(index, upgrade, budget):
        store = PluginStore(Path(mnt) / f"run-{index}")
        previous = install(store, False).generation if upgrade else None
        fill(budget)
        run = {"upgrade": upgrade, "budget": budget, "free": free(), "previous": previous}
        try:
            installed = install(store, upgrade)
            run["result"] = {"ok": True, "version": installed.version,
                             "generation": installed.generation}
        except Exception as exc:
            run["result"] = {"ok": False, "type": type(exc).__name__,
                             "isolator_error": isinstance(exc, IsolatorError),
                             "message": str(exc)}
        run["before_clean"] = state(store)
        try:
            store.clean()  # on the full disk: clean must work there
            run["clean_error"] = None
        except Exception as exc:
            run["clean_error"] = f"{type(exc).__name__}: {exc}"
        run["after_clean"] = state(store)
        FILLER.unlink(missing_ok=True)
        shutil.rmtree(store.root)
        return run

    used = {"fresh": measure(False), "upgrade": measure(True)}
    runs = []
    for upgrade, total in ((False, used["fresh"]), (True, used["upgrade"])):
        budgets = sorted({0, PAGE} | {total * k // 12 // PAGE * PAGE for k in range(1, 12)})
        runs += [scenario(len(runs), upgrade, budget) for budget in budgets]
    Path(out_path).write_text(json.dumps({"used": used, "runs": runs}, indent=1))
finally:
    subprocess.run(["umount", "-l", mnt], capture_output=True)
'''

_NAMESPACES = (
    # Root in a mount namespace of its own: the tmpfs vanishes with the child, whatever happens.
    ("unshare", "--mount", "--propagation", "private", "--"),
    # Not root: a user namespace maps us to root there, and tmpfs mounts are allowed in it.
    ("unshare", "--user", "--map-root-user", "--mount", "--propagation", "private", "--"),
    # No namespaces at all: mount in ours (as root); the script unmounts when it is done.
    (),
)


@pytest.fixture(scope="module")
def full_disk_runs(
    tmp_path_factory: pytest.TempPathFactory, example_wheelhouse: Path, newer: Path
) -> dict[str, Any]:
    """Installs of greetings (fresh, and an upgrade to 1.1) on a tmpfs filled to leave from
    nothing up to nearly what the install needs; each run's outcome and the store's state."""
    base = tmp_path_factory.mktemp("full-disk")
    script = base / "full_disk.py"
    script.write_text(_FULL_DISK_SCRIPT, encoding="utf-8")
    attempts: list[str] = []
    for index, prefix in enumerate(_NAMESPACES):
        if prefix and shutil.which(prefix[0]) is None:
            attempts.append(f"{' '.join(prefix)}: not found")
            continue
        mnt = base / f"mnt-{index}"
        mnt.mkdir()
        out = base / f"result-{index}.json"
        argv = [*prefix, sys.executable, str(script), str(mnt), str(example_wheelhouse),
                str(newer), str(out), "16m"]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=540, check=False)
        started = Path(f"{out}.started").exists()
        if not started or proc.returncode == 77:
            attempts.append(f"{' '.join(prefix) or 'mount'}: exit {proc.returncode}: "
                            f"{proc.stderr.strip()[-300:]}")
            continue
        assert proc.returncode == 0, f"the full-disk script failed:\n{proc.stderr[-5000:]}"
        result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
        return result
    pytest.skip("cannot mount a tmpfs here (tried: " + "; ".join(attempts) + ")")


def _runs_table(data: dict[str, Any]) -> str:
    lines = [f"bytes a greetings install takes on the tmpfs: {data['used']}"]
    for run in data["runs"]:
        result = run["result"]
        outcome = "installed" if result["ok"] else f"{result['type']}: {result['message'][:160]}"
        lines.append(f"  {'upgrade' if run['upgrade'] else 'fresh  '} budget "
                     f"{run['budget']:>7} free {run['free']:>7}: {outcome}")
    return "\n".join(lines)


@pytest.mark.slow
def test_full_disk_leaves_the_store_consistent(full_disk_runs: dict[str, Any]) -> None:
    table = _runs_table(full_disk_runs)
    used = full_disk_runs["used"]
    runs = full_disk_runs["runs"]
    assert used["fresh"] > 0 and used["upgrade"] > 0, table
    for run in runs:
        kind = "upgrade" if run["upgrade"] else "fresh"
        where = f"{kind} install with {run['budget']} bytes free:\n{table}\n{json.dumps(run)}"
        result, after = run["result"], run["after_clean"]
        if run["budget"] <= used[kind] // 2:
            assert not result["ok"], f"it cannot fit, yet it installed: {where}"
        assert run["clean_error"] is None, where
        assert after["scratch"] == [] and after["strays"] == [], where
        if not result["ok"] and not run["upgrade"]:
            assert after["gens"] == [] and after["wheels"] == [], where
            assert after["listed"] == [] and after["current"] is None, where
            continue
        expected = "1.1.0" if result["ok"] and run["upgrade"] else "1.0.0"
        current = after["current"]
        assert isinstance(current, dict), where
        assert current["version"] == expected, where
        if not result["ok"]:
            assert current["generation"] == run["previous"], where
        assert after["gens"] == [f"plugins/greetings/{current['generation']}"], where
        assert after["wheels"] == current["referenced"], where
        assert after["listed"] == [["greetings", expected]], where
        assert current["imports"] is True and current["loads"] is True, where
    failed = [run for run in runs if not run["result"]["ok"]]
    assert len(failed) >= len(runs) // 2, table


@pytest.mark.slow
def test_full_disk_fails_with_a_one_line_isolator_error(full_disk_runs: dict[str, Any]) -> None:
    table = _runs_table(full_disk_runs)
    failed = [run for run in full_disk_runs["runs"] if not run["result"]["ok"]]
    assert failed, table
    for run in failed:
        result = run["result"]
        assert result["isolator_error"], f"{result['type']} is no IsolatorError:\n{table}"
        assert "\n" not in result["message"], table


# ---- 4. unknown plugins ------------------------------------------------------------------------


def test_unknown_plugin_source(tmp_path: Path, example_wheelhouse: Path) -> None:
    root = tmp_path / "store"
    store = PluginStore(root)
    source = "pypi:no-such-plugin-xyz"
    with pytest.raises(ResolutionError) as caught:
        store.install(source, find_links=[example_wheelhouse], no_index=True)
    message = str(caught.value)
    assert source in message and "\n" not in message
    assert store.list_installed() == []
    assert _all_gen_dirs(root) == []
    assert not (root / "plugins").exists() or list((root / "plugins").iterdir()) == []
    assert _scratch(root) == []

    result = _run_ohp("install", source, "--root", tmp_path / "cli-store", "--find-links",
                      example_wheelhouse, "--no-index", cwd=tmp_path)
    _assert_one_error_line(result, source)
    assert result.stdout == ""


def test_unknown_plugin_names(tmp_path: Path, example_wheelhouse: Path) -> None:
    root = tmp_path / "store"
    store, v1 = _install_v1(root, example_wheelhouse)
    for action in (store.get, store.load, store.uninstall, store.upgrade, store.reinstall):
        with pytest.raises(PluginNotFoundError) as caught:
            action("nope")
        assert "'nope'" in str(caught.value) and "\n" not in str(caught.value)
    for command in ("show", "uninstall", "upgrade", "reinstall"):
        _assert_one_error_line(_run_ohp(command, "nope", "--root", root, cwd=tmp_path), "nope")
    assert [(p.name, p.generation) for p in store.list_installed()] == [(NAME, v1.generation)]
    assert not (root / "plugins" / "nope").exists()


def test_unknown_plugin_names_in_a_root_that_does_not_exist(tmp_path: Path) -> None:
    root = tmp_path / "never-made"
    store = PluginStore(root)
    for action in (store.get, store.load, store.upgrade, store.reinstall):
        with pytest.raises(PluginNotFoundError):
            action("nope")
    assert store.list_installed() == []
    assert store.clean().generations == ()
    _assert_one_error_line(_run_ohp("show", "nope", "--root", root, cwd=tmp_path), "nope")
    assert not root.exists()


def test_uninstall_unknown_plugin_leaves_a_new_root_usable(
    tmp_path: Path, example_wheelhouse: Path
) -> None:
    root = tmp_path / "fresh"
    with pytest.raises(PluginNotFoundError):
        PluginStore(root).uninstall("nope")
    leftovers = sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []
    try:
        _install_v1(root, example_wheelhouse)
    except StoreError as exc:
        raise AssertionError(f"uninstall left {leftovers} and broke the root: {exc}") from exc


def test_uninstall_refuses_a_path_as_name(tmp_path: Path, example_wheelhouse: Path) -> None:
    root = tmp_path / "area" / "store"
    store, _ = _install_v1(root, example_wheelhouse)
    before = sorted(p.name for p in (tmp_path / "area").iterdir())
    with pytest.raises(StoreError) as caught:
        store.uninstall("../../escaped")
    after = sorted(p.name for p in (tmp_path / "area").iterdir())
    assert after == before, f"uninstall wrote outside the store: {after}"
    assert "expected letters" in str(caught.value)


# ---- 5. malformed wheels ---------------------------------------------------------------------


def _not_a_zip(directory: Path) -> tuple[Path, str]:
    path = directory / "broken_plugin-1.0.0-py3-none-any.whl"
    path.write_text("this is not a zip archive\n", encoding="utf-8")
    return path, "not a readable wheel"


def _no_metadata(directory: Path) -> tuple[Path, str]:
    path = directory / "nometa_plugin-1.0.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("nometa_plugin/__init__.py", "")
        archive.writestr("nometa_plugin-1.0.0.dist-info/WHEEL",
                         "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
    return path, "no .dist-info/METADATA"


def _no_entry_point(directory: Path) -> tuple[Path, str]:
    path = make_wheel(directory, "not-a-plugin", "1.0.0",
                      files=_plugin_files("not_a_plugin", "not-a-plugin", "1.0.0"))
    return path, "not-a-plugin 1.0.0 is not a plugin"


def _two_entry_points(directory: Path) -> tuple[Path, str]:
    files = {**_plugin_files("two_plugins/a", "alpha", "1.0.0"),
             **_plugin_files("two_plugins/b", "beta", "1.0.0"), "two_plugins/__init__.py": ""}
    path = make_wheel(directory, "two-plugins", "1.0.0", files=files, entry_points={
        "openhands.plugins": {"alpha": "two_plugins.a", "beta": "two_plugins.b"}})
    return path, "two-plugins declares 2 'openhands.plugins' entry points (alpha, beta)"


@pytest.mark.parametrize("make_bad", [_not_a_zip, _no_metadata, _no_entry_point,
                                      _two_entry_points],
                         ids=["not-a-zip", "no-metadata", "no-entry-point", "two-entry-points"])
def test_malformed_wheel_is_refused(
    make_bad: Callable[[Path], tuple[Path, str]], tmp_path: Path, example_wheelhouse: Path
) -> None:
    root = tmp_path / "store"
    store, v1 = _install_v1(root, example_wheelhouse)
    bad_dir = tmp_path / "bad"
    bad_dir.mkdir()
    wheel, expected = make_bad(bad_dir)

    with pytest.raises(IsolatorError) as caught:
        store.install(str(wheel))
    message = str(caught.value)
    assert expected in message, message
    assert wheel.name in message, message
    assert "\n" not in message
    _assert_one_error_line(_run_ohp("install", wheel, "--root", root, cwd=tmp_path),
                           wheel.name, expected)

    assert [(p.name, p.generation) for p in store.list_installed()] == [(NAME, v1.generation)]
    assert _all_gen_dirs(root) == [f"plugins/{NAME}/{v1.generation}"]
    assert _scratch(root) == []
    _assert_works(store, "1.0.0", v1.generation)
    store.clean()
    _assert_clean_store(store, v1.generation)


# ---- 6. name collisions ----------------------------------------------------------------------


def test_other_package_with_the_same_plugin_name_collides(
    tmp_path: Path, example_wheelhouse: Path
) -> None:
    root = tmp_path / "store"
    store, v1 = _install_v1(root, example_wheelhouse)
    links = tmp_path / "other"
    make_wheel(links, "other-greetings", "1.0.0",
               files=_plugin_files("other_greetings", NAME, "1.0.0"),
               entry_points={"openhands.plugins": {NAME: "other_greetings"}})

    with pytest.raises(PluginCollisionError) as caught:
        store.install("pypi:other-greetings", find_links=[links], no_index=True)
    message = str(caught.value)
    assert PACKAGE in message and "other-greetings" in message, message
    assert "\n" not in message
    result = _run_ohp("install", "pypi:other-greetings", "--root", root, "--find-links", links,
                      "--no-index", cwd=tmp_path)
    _assert_one_error_line(result, PACKAGE, "other-greetings")

    assert _gen_dirs(root) == [v1.generation]
    _assert_works(store, "1.0.0", v1.generation)
    assert store.get(NAME).package == v1.package
    store.clean()
    _assert_clean_store(store, v1.generation)


def test_content_only_directory_with_the_same_name_collides(
    tmp_path: Path, example_wheelhouse: Path
) -> None:
    root = tmp_path / "store"
    store, v1 = _install_v1(root, example_wheelhouse)
    content = _content_plugin(tmp_path, NAME)

    with pytest.raises(PluginCollisionError) as caught:
        store.install(str(content))
    message = str(caught.value)
    assert PACKAGE in message and str(content) in message, message
    assert _gen_dirs(root) == [v1.generation]
    assert _scratch(root) == []
    _assert_works(store, "1.0.0", v1.generation)
    assert store.get(NAME).kind == "package"


# ---- 7. a directory that is not a store ------------------------------------------------------


def test_foreign_directory_is_not_a_store(tmp_path: Path, example_wheelhouse: Path) -> None:
    root = tmp_path / "documents"
    (root / "photos").mkdir(parents=True)
    (root / "notes.txt").write_text("precious\n", encoding="utf-8")
    (root / "photos" / "cat.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    before = _tree(root)
    store = PluginStore(root)

    with pytest.raises(StoreError) as caught:
        store.install(SOURCE, find_links=[example_wheelhouse], no_index=True)
    assert "not a plugin store" in str(caught.value)
    assert str(root) in str(caught.value)
    with pytest.raises(StoreError, match="not a plugin store"):
        store.install(str(_content_plugin(tmp_path, "notes")))
    with pytest.raises(StoreError, match="not a plugin store"):
        store.uninstall(NAME)
    assert store.clean().generations == ()
    result = _run_ohp("install", SOURCE, "--root", root, "--find-links", example_wheelhouse,
                      "--no-index", cwd=tmp_path)
    _assert_one_error_line(result, "not a plugin store")

    assert _tree(root) == before
