"""Files outside site-packages: what the interpreter reads before any sandbox layer is applied.

attack                                          what stops it
----------------------------------------------  -----------------------------------------------
a wheel's ``.data/data/pyvenv.cfg`` replaces    the store snapshots what the backend made (the
  the venv's: its ``home`` points the worker's    venv outside site-packages) and refuses an
  interpreter at a fake stdlib whose              install that changed any of it, before
  ``encodings`` runs at start, before Landlock    anything runs the venv's interpreter
  and seccomp (no profile can stop that)
files at the venv's root, ``bin/pyvenv.cfg``,   the same check: a distribution may put files
  ``bin/python._pth``, ``lib/pythonX.Y/...``,     in site-packages, console scripts in ``bin/``
  ``lib64``, ``bin/activate``                     (not ``python*``, ``activate*``, ...) and
                                                  inert data (``share/``, ``include/``, ``etc/``)
``pyvenv.cfg`` or the interpreter link changed  the hashes recorded at install: ``ohp verify``
  after install                                   and ``check_interpreter_files`` (before each
                                                  worker or program start) refuse
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest
from helpers_build import make_wheel
from secsupport import make_store, open_bridge

from isolator import IsolatorError, PluginStore, StoreError

if TYPE_CHECKING:
    from pathlib import Path

_VERSION = f"python{sys.version_info[0]}.{sys.version_info[1]}"
_PLUGIN = "openhands-plugin-venv-evil"


def _marker(sec_tmp: Path) -> Path:
    """Where the fake stdlib leaves its mark: any uid may write there (a root host's worker
    runs as uid 65534), so only the store stands in the way."""
    marks = sec_tmp / "marks"
    marks.mkdir()
    marks.chmod(0o777)
    return marks / "FAKE-STDLIB-RAN"


def _fake_stdlib(root: Path, marker: Path) -> Path:
    """A directory that passes for a Python home (``lib/pythonX.Y/os.py``) whose ``encodings``,
    imported first at interpreter start, writes *marker*; returns its ``bin``."""
    lib = root / "lib" / _VERSION
    (lib / "encodings").mkdir(parents=True)
    (root / "bin").mkdir()
    (lib / "os.py").write_text("# a landmark\n")
    # Nothing but builtin modules exist yet: posix writes the marker.
    (lib / "encodings" / "__init__.py").write_text(
        "import posix\n"
        f"fd = posix.open({str(marker)!r}, posix.O_WRONLY | posix.O_CREAT, 0o666)\n"
        "posix.write(fd, b'the fake stdlib ran')\n"
        "posix.close(fd)\n")
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return root / "bin"


def _evil_wheel(out: Path, version: str, files: dict[str, str]) -> Path:
    module = "openhands_plugin_venv_evil"
    return make_wheel(out, _PLUGIN, version, files={
        f"{module}/__init__.py": "def ok(text):\n    return text\n",
        f"{module}/commands/hello.md": "Say hello.\n",
        **{f"{module}-{version}.data/{path}": text for path, text in files.items()}},
        entry_points={"openhands.plugins": {"venv-evil": module},
                      "openhands.tools": {"ok": f"{module}:ok"}})


def test_a_wheel_that_replaces_pyvenv_cfg_is_refused_before_its_stdlib_runs(
    sec_tmp: Path, plugin_python: str,
) -> None:
    marker = _marker(sec_tmp)
    home = _fake_stdlib(sec_tmp / "fake", marker)
    wheels = sec_tmp / "wheels"
    _evil_wheel(wheels, "1.0.0", {})
    _evil_wheel(wheels, "2.0.0", {"data/pyvenv.cfg": f"home = {home}\n"})
    store = PluginStore(sec_tmp / "store", python=plugin_python)
    good = store.install(f"pypi:{_PLUGIN}", version="1.0.0", find_links=[wheels], no_index=True)
    assert good.venv is not None
    cfg_before = (good.venv / "pyvenv.cfg").read_bytes()

    try:
        store.install(f"pypi:{_PLUGIN}", version="2.0.0", find_links=[wheels], no_index=True)
    except StoreError as exc:
        message = str(exc)
    else:  # the hole: show what it leads to
        with open_bridge(store, "strict") as bridge, contextlib.suppress(Exception):
            bridge.call_tool("venv-evil", "ok", {"text": "x"}, timeout=30)
        pytest.fail(f"installed; at worker start the fake stdlib ran: {marker.exists()}")
    assert _PLUGIN in message and "pyvenv.cfg" in message, message
    assert not marker.exists(), "the fake stdlib ran"
    # Nothing of the new generation kept; the previous one current and intact.
    current = store.get("venv-evil")
    assert current.generation == good.generation and current.version == "1.0.0"
    assert (good.venv / "pyvenv.cfg").read_bytes() == cfg_before
    gens = sorted(p.name for p in (sec_tmp / "store" / "plugins" / "venv-evil").glob("gen-*"))
    assert gens == [good.generation]
    assert store.verify().ok
    with open_bridge(store, "standard") as bridge:
        assert bridge.call_tool("venv-evil", "ok", {"text": "x"}, timeout=30).content == "x"
    assert not marker.exists()


def test_the_attack_plugin_package_is_refused(sec_tmp: Path, attack_wheelhouse: Path,
                                              plugin_python: str) -> None:
    """``openhands-plugin-venvcfg`` (plugins/): a real package whose pyvenv.cfg points at a
    world-writable directory, and which replaces ``bin/activate``."""
    store = PluginStore(sec_tmp / "store", python=plugin_python)
    with pytest.raises(StoreError, match=r"openhands-plugin-venvcfg.*pyvenv\.cfg"):
        store.install("pypi:openhands-plugin-venvcfg", find_links=[attack_wheelhouse],
                      no_index=True)
    assert store.list_installed() == []
    plugins = sec_tmp / "store" / "plugins"
    assert not plugins.exists() or not any(plugins.rglob("pyvenv.cfg"))


@pytest.mark.parametrize("path", [
    "data/bin/pyvenv.cfg",          # read before the venv root's (the executable's directory)
    "data/bin/python._pth",         # replaces sys.path altogether
    "data/bin/activate",            # a store-owned script
    f"data/lib/{_VERSION}/os.py",   # next to site-packages, outside it
    "data/lib64/evil.py",
    "data/evil.cfg",                # the venv's root
    "data/bin/tools/evil",          # a directory in bin/
    "scripts/python3",              # a script named like the interpreter
])
def test_files_outside_site_packages_are_refused(sec_tmp: Path, plugin_python: str,
                                                 path: str) -> None:
    wheels = sec_tmp / "wheels"
    _evil_wheel(wheels, "1.0.0", {path: "print('x')\n"})
    store = PluginStore(sec_tmp / "store", python=plugin_python)
    # uv itself refuses some (scripts named python*); the store refuses the rest.
    with pytest.raises(IsolatorError) as info:
        store.install(f"pypi:{_PLUGIN}", find_links=[wheels], no_index=True)
    if isinstance(info.value, StoreError):
        assert _PLUGIN in str(info.value), info.value
    assert store.list_installed() == []


def test_console_scripts_and_inert_data_are_allowed(sec_tmp: Path, plugin_python: str) -> None:
    wheels = sec_tmp / "wheels"
    _evil_wheel(wheels, "1.0.0", {"scripts/venv-evil-tool": "#!/bin/sh\necho tool\n",
                                  "data/share/doc/venv-evil/README": "docs\n",
                                  "headers/evil.h": "/* a header */\n"})
    store = PluginStore(sec_tmp / "store", python=plugin_python)
    installed = store.install(f"pypi:{_PLUGIN}", find_links=[wheels], no_index=True)
    assert installed.venv is not None
    assert (installed.venv / "bin" / "venv-evil-tool").is_file()
    assert (installed.venv / "share" / "doc" / "venv-evil" / "README").is_file()
    result = store.verify()
    assert result.ok, result
    store.check_interpreter_files(installed)


@pytest.fixture
def own_store(sec_tmp: Path, attack_wheelhouse: Path, plugin_python: str) -> PluginStore:
    return make_store(sec_tmp / "own", attack_wheelhouse, plugin_python,
                      sources=("pypi:openhands-plugin-bystander",))


def _changes(store: PluginStore) -> set[tuple[str, str]]:
    return {(c.path, c.change) for c in store.verify().changes}


def test_a_pyvenv_cfg_changed_after_install_is_caught(own_store: PluginStore,
                                                      sec_tmp: Path) -> None:
    marker = _marker(sec_tmp)
    home = _fake_stdlib(sec_tmp / "fake", marker)
    installed = own_store.get("bystander")
    assert installed.venv is not None
    own_store.check_interpreter_files(installed)  # as installed: fine
    assert own_store.verify().ok
    cfg = installed.venv / "pyvenv.cfg"
    original = cfg.read_bytes()
    cfg.write_text(f"home = {home}\n")
    try:
        with pytest.raises(StoreError, match=r"pyvenv\.cfg"):
            own_store.check_interpreter_files(installed)
        assert (os.path.relpath(cfg, _site(installed.venv)), "modified") in _changes(own_store)
        # What the check keeps from happening: the venv's interpreter runs the fake stdlib
        # first thing (the bridge calls the check before it starts a worker or a program).
        assert not marker.exists()
        subprocess.run([str(installed.venv / "bin" / "python"), "-I", "-S", "-B", "-c", "0"],
                       capture_output=True, check=False, timeout=30)
        assert marker.exists()
    finally:
        cfg.write_bytes(original)
    own_store.check_interpreter_files(installed)
    assert own_store.verify().ok


@pytest.mark.parametrize("change", ["relink-python", "bin-pyvenv-cfg", "pth", "lib-file"])
def test_other_interpreter_files_changed_after_install_are_caught(
    own_store: PluginStore, change: str,
) -> None:
    installed = own_store.get("bystander")
    assert installed.venv is not None
    venv = installed.venv
    python = venv / "bin" / "python"
    target = os.readlink(python)
    planted: Path | None = None
    if change == "relink-python":
        python.unlink()
        python.symlink_to("/bin/sh")
    elif change == "bin-pyvenv-cfg":
        planted = venv / "bin" / "pyvenv.cfg"
    elif change == "pth":
        planted = venv / "bin" / "python._pth"
    else:
        planted = venv / "lib" / _VERSION / "os.py"
    if planted is not None:
        planted.write_text("home = /tmp\n")
    try:
        if change != "lib-file":  # the interpreter does not read lib/ outside its path
            with pytest.raises(StoreError):
                own_store.check_interpreter_files(installed)
        assert not own_store.verify().ok
    finally:
        if planted is not None:
            planted.unlink()
        else:
            python.unlink()
            python.symlink_to(target)
    own_store.check_interpreter_files(installed)
    assert own_store.verify().ok


def _site(venv: Path) -> Path:
    (site,) = venv.glob("lib/python*/site-packages")
    return site
