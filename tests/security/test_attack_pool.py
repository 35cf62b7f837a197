"""Writes into the environment pool (``PluginStore(root, pool=DIR)``): a worker runs on a venv
the pool shares with every tenant that installed the same set, so a write there would reach
them all. Under standard and strict its sandbox reads the pooled venv and writes nothing of it.

attack                                     standard                  strict
-----------------------------------------  ------------------------  ------------------------
create a .pth in the pooled site-packages, Landlock: writes only to   Landlock: EACCES
  append to a pooled module, write the       the scratch (and a root
  pool's env.json, plant an environment      host's uid 65534): EACCES
  in the pool, write the pool's wheelhouse
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from secsupport import ATTACK_PLUGINS, Bystander, attack, open_bridge

from isolator import PluginStore
from isolator.metadata._distinfo import find_site_packages


def pool_files(pool: Path) -> dict[str, str]:
    """Content hash and mode of every regular file of the pool but its lock files."""
    found: dict[str, str] = {}
    for current, _dirs, files in os.walk(pool):
        for name in files:
            path = Path(current) / name
            if path.is_symlink() or not path.is_file() or name.endswith(".lock"):
                continue
            info = path.stat()
            found[str(path)] = (f"{stat.filemode(info.st_mode)} "
                                f"{hashlib.sha256(path.read_bytes()).hexdigest()}")
    assert found
    return found


@pytest.fixture(scope="module")
def pooled(sec_root: Path, attack_wheelhouse: Path, plugin_python: str) -> PluginStore:
    """A tenant whose plugins' venvs are in a pool (another tenant shares them)."""
    base = sec_root / "pooled"
    base.mkdir(mode=0o755)
    pool = base / "pool"
    stores = [PluginStore(base / tenant, python=plugin_python, pool=pool)
              for tenant in ("tenant-a", "tenant-b")]
    for store in stores:
        for source in ATTACK_PLUGINS:
            store.install(source, find_links=[attack_wheelhouse], no_index=True)
    return stores[0]


@pytest.mark.parametrize("profile", ["standard", "strict"])
def test_a_worker_cannot_write_into_the_pool(pooled: PluginStore, profile: str) -> None:
    store = pooled
    assert store.pool is not None
    installed = store.get("attacks")
    assert installed.venv is not None and installed.venv.is_relative_to(store.pool)
    site = find_site_packages(installed.venv)
    module = site / "openhands_plugin_attacks" / "tools.py"
    before = pool_files(store.pool)
    module_before = module.read_bytes()
    wheel_dir = next((store.pool / "wheelhouse").iterdir())
    targets: dict[str, dict[str, Any]] = {
        "new .pth": {"path": str(site / "zz-planted.pth"), "text": "# planted\n"},
        "append to module": {"path": str(module), "text": "\n# planted\n", "mode": "a"},
        "env.json": {"path": str(installed.env_dir / "env.json"), "text": "{}", "mode": "r+"},
        "planted environment": {"path": str(store.pool / "envs" / ("0" * 32)), "text": "x"},
        "wheelhouse": {"path": str(wheel_dir / "planted.whl"), "text": "x"},
        "reference": {"path": str(store.pool / "refs" / "planted.json"), "text": "{}"},
    }
    with open_bridge(store, profile) as bridge:
        bystander = Bystander.start(bridge)
        outcomes = {what: attack(bridge, "write_file", timeout=60, **args)
                    for what, args in targets.items()}
        bystander.check()
    denied = (errno.EACCES, errno.EPERM, errno.EROFS)
    got_through = {what: outcome for what, outcome in outcomes.items()
                   if outcome["ok"] is not False or outcome["errno"] not in denied}
    assert got_through == {}, f"these got through: {got_through}"
    assert module.read_bytes() == module_before
    assert pool_files(store.pool) == before
    # Without the sandbox the same write goes through: the refusal above is the sandbox's.
    probe = store.pool / "tmp" / "probe.txt"
    (store.pool / "tmp").mkdir(exist_ok=True)
    try:
        with open_bridge(store, "off") as bridge:
            assert attack(bridge, "write_file", path=str(probe), text="x") == {"ok": True}
    finally:
        probe.unlink(missing_ok=True)
