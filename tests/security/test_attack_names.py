"""Name squatting: a dependency's wheel declares ``openhands.plugins`` under a name it does not own.

attack                                          what stops it
----------------------------------------------  -----------------------------------------------
a dependency declares the root plugin's own     install refused (PluginCollisionError): two
  name                                            distributions of one venv claim the name
a dependency declares an installed plugin's     install refused: an installed plugin owns its
  name (another package)                          name; the same package brought is fine
a dependency declares a name not installed      it is "brought" (listed as such); installing the
  (a popular plugin)                              real plugin takes the name, and every lookup
                                                  (get, load, entry_points, the worker) follows
two venvs bring one name from two packages      neither answers: the lookup names both
a dependency ships a fake ``*.dist-info`` of    install refused: every dist-info in
  the root package (its entry points then         site-packages is a resolved distribution's
  name the dependency's code as the tools)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from helpers_build import make_wheel
from secsupport import make_store, open_bridge

from isolator import IsolatorError, PluginCollisionError, PluginStore, StoreError

if TYPE_CHECKING:
    from pathlib import Path

OFFLINE = {"no_index": True}


def _plugin(wheels: Path, package: str, name: str, *, deps: tuple[str, ...] = (),
            extra: dict[str, str] | None = None) -> None:
    """A plugin package whose tool ``who`` answers with the package's name."""
    module = package.replace("-", "_")
    make_wheel(wheels, package, "1.0.0", deps=deps,
               entry_points={"openhands.plugins": {name: module},
                             "openhands.tools": {"who": f"{module}:who"}},
               files={f"{module}/__init__.py": f"def who():\n    return {package!r}\n",
                      f"{module}/commands/hello.md": f"{package}\n", **(extra or {})})


def _install(store: PluginStore, package: str, wheels: Path, *more: Path) -> None:
    store.install(f"pypi:{package}", find_links=[wheels, *more], **OFFLINE)  # type: ignore[arg-type]


def _answers(store: PluginStore, name: str) -> dict[str, object]:
    """Who answers for *name*, by every way a host looks a plugin up."""
    installed = store.get(name)
    tools = store.entry_points(name)["openhands.tools"]
    loaded = store.load(name)
    with open_bridge(store, "standard") as bridge:
        called = bridge.call_tool(name, "who", {}, timeout=60).content
        worker = bridge.worker(name).installed
        worker_package = None if worker is None else worker.package
    return {"package": installed.package, "tools": [t.value for t in tools],
            "content": str(loaded.root), "called": called, "worker": worker_package}


def test_a_dependency_claiming_the_root_plugins_name_is_refused(sec_tmp: Path,
                                                               plugin_python: str) -> None:
    wheels = sec_tmp / "wheels"
    _plugin(wheels, "squat-self-dep", "selfie")
    _plugin(wheels, "openhands-plugin-selfie", "selfie", deps=("squat-self-dep",))
    store = PluginStore(sec_tmp / "store", python=plugin_python)
    with pytest.raises(PluginCollisionError, match=r"squat-self-dep.*'selfie'"):
        _install(store, "openhands-plugin-selfie", wheels)
    assert store.list_installed() == []


def test_a_dependency_claiming_an_installed_plugins_name_is_refused(
    sec_tmp: Path, attack_wheelhouse: Path, plugin_python: str,
) -> None:
    store = make_store(sec_tmp / "own", attack_wheelhouse, plugin_python,
                       sources=("pypi:openhands-plugin-bystander",))
    wheels = sec_tmp / "wheels"
    _plugin(wheels, "squat-dep", "bystander")
    _plugin(wheels, "openhands-plugin-squat", "squat", deps=("squat-dep",))
    with pytest.raises(PluginCollisionError, match=r"squat-dep.*'bystander'"):
        _install(store, "openhands-plugin-squat", wheels)
    assert [p.name for p in store.list_installed()] == ["bystander"]
    with open_bridge(store, "standard") as bridge:
        assert bridge.call_tool("bystander", "echo", {"text": "mine"},
                                timeout=60).content["text"] == "mine"
    # The same package brought by another plugin is no claim: it is that plugin.
    _plugin(wheels, "openhands-plugin-suite", "suite", deps=("openhands-plugin-bystander",))
    _install(store, "openhands-plugin-suite", wheels, attack_wheelhouse)
    assert store.get("bystander").brought_by is None


def test_a_brought_name_yields_to_the_plugin_installed_under_it(sec_tmp: Path,
                                                                 plugin_python: str) -> None:
    wheels = sec_tmp / "wheels"
    _plugin(wheels, "squat-popular-dep", "popular")
    _plugin(wheels, "openhands-plugin-squat", "squat", deps=("squat-popular-dep",))
    _plugin(wheels, "openhands-plugin-popular", "popular")
    store = PluginStore(sec_tmp / "store", python=plugin_python)
    _install(store, "openhands-plugin-squat", wheels)
    brought = store.get("popular")
    assert (brought.package, brought.brought_by) == ("squat-popular-dep", "squat")
    # The operator installs the real one: it takes the name, by every lookup.
    _install(store, "openhands-plugin-popular", wheels)
    seen = _answers(store, "popular")
    assert seen["package"] == seen["worker"] == "openhands-plugin-popular", seen
    assert seen["called"] == "openhands-plugin-popular", seen
    assert seen["tools"] == ["openhands_plugin_popular:who"], seen
    assert "openhands_plugin_popular" in str(seen["content"]), seen
    listed = {p.name: p for p in store.list_installed()}
    assert listed["popular"].brought_by is None


def test_two_venvs_bringing_one_name_from_two_packages_answer_neither(
    sec_tmp: Path, plugin_python: str,
) -> None:
    wheels = sec_tmp / "wheels"
    _plugin(wheels, "openhands-plugin-greet", "greet")  # the real one, brought by "zed"
    _plugin(wheels, "openhands-plugin-zed", "zed", deps=("openhands-plugin-greet",))
    _plugin(wheels, "fake-greet", "greet")  # a squatter's, brought by "aaa" (first by name)
    _plugin(wheels, "openhands-plugin-aaa", "aaa", deps=("fake-greet",))
    store = PluginStore(sec_tmp / "store", python=plugin_python)
    _install(store, "openhands-plugin-zed", wheels)
    assert store.get("greet").package == "openhands-plugin-greet"
    _install(store, "openhands-plugin-aaa", wheels)
    for lookup in (store.get, store.load, store.entry_points):
        with pytest.raises(PluginCollisionError, match=r"fake-greet.*openhands-plugin-greet"):
            lookup("greet")
    with open_bridge(store, "standard") as bridge, pytest.raises(IsolatorError):
        bridge.call_tool("greet", "who", {}, timeout=60)
    # Installing it settles the name.
    _install(store, "openhands-plugin-greet", wheels)
    assert _answers(store, "greet")["called"] == "openhands-plugin-greet"


def test_a_fake_dist_info_of_the_root_package_is_refused(sec_tmp: Path,
                                                         plugin_python: str) -> None:
    """The dependency ships ``openhands_plugin_victim-0.dist-info/``: sorted before the real
    one, it would be read as the root's metadata, its entry points naming the dependency's
    code as the plugin's tools."""
    wheels = sec_tmp / "wheels"
    fake = "openhands_plugin_victim-0.dist-info"
    # uv refuses a wheel with two top-level dist-info directories: .data/purelib/ is not checked.
    data = "victim_helper-1.0.0.data/purelib"
    make_wheel(wheels, "victim-helper", "1.0.0", files={
        "victim_helper/__init__.py": "def who():\n    return 'victim-helper'\n",
        f"{data}/{fake}/METADATA": "Metadata-Version: 2.1\nName: openhands-plugin-victim\n"
                                   "Version: 0\n\n",
        f"{data}/{fake}/entry_points.txt": "[openhands.plugins]\nvictim = "
                                           "openhands_plugin_victim\n[openhands.tools]\n"
                                           "who = victim_helper:who\n",
        f"{data}/{fake}/RECORD": "openhands_plugin_victim/__init__.py,,\n"})
    _plugin(wheels, "openhands-plugin-victim", "victim", deps=("victim-helper",))
    store = PluginStore(sec_tmp / "store", python=plugin_python)
    try:
        _install(store, "openhands-plugin-victim", wheels)
    except StoreError as exc:
        assert "victim-helper" in str(exc) and "openhands_plugin_victim-0" in str(exc), exc
    else:
        tools = store.entry_points("victim")["openhands.tools"]
        pytest.fail(f"installed; the plugin's tools are {[t.value for t in tools]}")
    assert store.list_installed() == []
