"""Installs whose dependencies come from PyPI (marked ``network``; CI runs them)."""

from __future__ import annotations

import subprocess
from typing import TYPE_CHECKING

import pytest

from isolator import PluginStore, StoreError

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.network


def test_a_plugin_whose_dependencies_come_from_pypi(
    tmp_path: Path, example_wheelhouse: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = PluginStore(tmp_path / "store")
    installed = store.install("pypi:openhands-plugin-pypi-deps",
                              find_links=[example_wheelhouse])
    dists = {d.name: d for d in installed.distributions}
    assert set(dists) == {"openhands-plugin-pypi-deps", "six", "idna"}
    for name in ("six", "idna"):
        assert dists[name].url.startswith("https://files.pythonhosted.org/")
        assert len(dists[name].sha256) == 64
    assert installed.venv is not None
    out = subprocess.run(
        [str(installed.venv / "bin" / "python"), "-I", "-c",
         "from openhands_plugin_pypi_deps.tools import to_ascii_hostname as f; "
         "print(f('bücher.example'))"],
        capture_output=True, text=True, check=True, timeout=60).stdout.strip()
    assert out == "xn--bcher-kva.example"
    assert [c.name for c in store.load("pypi-deps").commands]

    # Reinstalling from the record needs no network: prove it with a proxy that goes nowhere.
    for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    again = store.reinstall("pypi-deps")
    assert {d.sha256 for d in again.distributions} == {d.sha256 for d in dists.values()}


def test_a_pypi_package_that_is_not_a_plugin_is_refused(tmp_path: Path) -> None:
    store = PluginStore(tmp_path / "store")
    with pytest.raises(StoreError, match=r"is not a plugin: it declares no 'openhands\.plugins'"):
        store.install("pypi:six", version="==1.17.0")
    assert store.list_installed() == []
