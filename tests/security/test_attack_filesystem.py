"""Writes: outside the scratch directory, into the plugin's venv (and so into what the venv
shares with the store: uv's cache and the bytecode pool hardlink their files into every venv),
into another plugin's venv or scratch directory, and past the file size limit.

attack                                     standard                  strict
-----------------------------------------  ------------------------  ------------------------
create a file in a world-writable dir,     - (not a layer of         Landlock: EACCES
  the host's home, /tmp, /dev/shm            standard)
create a .pth in site-packages, append to  Landlock, the store      Landlock: EACCES
  a module in place, overwrite a pooled      read-only: EACCES (and
  .pyc, write into another plugin's venv,    a root host's uid 65534)
  plant a symlink among the skills
chmod an installed file                    root host: uid 65534      seccomp: EPERM (chmod
                                             (EPERM); else **not       and chown refused; no
                                             stopped** (xfail)         Landlock right covers
                                                                       them)
read or write another worker's scratch     (no scratch directories)  Landlock: EACCES
write a file past the size limit           RLIMIT_FSIZE (1 GiB)      RLIMIT_FSIZE (256 MiB):
                                                                       EFBIG

The venv tests hash the store's shared files (uv's cache, the bytecode pool, the wheelhouse,
the bystander's venv: contents and modes) before and after: they must not change.
"""

from __future__ import annotations

import errno
import hashlib
import os
import secrets
import stat
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from secsupport import AS_ROOT, Bystander, attack, attempt_failed, make_store, open_bridge

from hostbridge import PROFILE_LIMITS
from isolator.metadata._distinfo import find_site_packages

if TYPE_CHECKING:
    from isolator import PluginStore

HOLE_UNLESS_ROOT = pytest.mark.xfail(
    not AS_ROOT, strict=True, reason="HOLE under standard when the host is not root: the worker "
    "owns the store's files and no Landlock right governs modes. A venv's files are hardlinks "
    "of uv's cache and of the bytecode pool, shared with every other plugin's venv: a chmod "
    "changes them all")


def shared_files(store: PluginStore) -> dict[str, str]:
    """Content hash and mode of every file of the store that venvs share, and of the
    bystander's venv."""
    bystander = store.get("bystander").path
    found: dict[str, str] = {}
    for top in (store.root / "cache" / "uv", store.root / "bytecode", store.root / "wheelhouse",
                bystander):
        for current, _dirs, files in os.walk(top):
            for name in files:
                path = Path(current) / name
                if path.is_symlink() or not path.is_file():
                    continue
                info = path.stat()
                found[str(path)] = (f"{stat.filemode(info.st_mode)} "
                                    f"{hashlib.sha256(path.read_bytes()).hexdigest()}")
    assert found
    return found


@pytest.fixture
def own_store(sec_tmp: Path, attack_wheelhouse: Path, plugin_python: str) -> PluginStore:
    """A store of the test's own: the attacks below may succeed where a test xfails."""
    return make_store(sec_tmp / "own", attack_wheelhouse, plugin_python)


# Under standard this was a hole (#15): every worker runs as the same uid (65534 under a root
# host, else the host's), so /tmp, /var/tmp, /dev/shm and any world-writable directory were
# places plugins shared, and a non-root host's worker could write the host user's home.
@pytest.mark.parametrize("profile", ["standard", "strict"])
def test_writes_outside_the_scratch_directory_fail(
    store: PluginStore, sec_tmp: Path, fake_home: Path, profile: str
) -> None:
    token = secrets.token_hex(8)
    world = sec_tmp / "world-writable"
    world.mkdir()
    world.chmod(0o777)  # any uid may write here: only Landlock stands in the way
    fake_home.chmod(0o777)
    targets = [world / "planted.txt", fake_home / "planted.txt",
               Path(f"/tmp/isolator-sec-planted-{token}"),
               Path(f"/dev/shm/isolator-sec-planted-{token}"),
               Path(f"/var/tmp/isolator-sec-planted-{token}")]
    before = shared_files(store)
    try:
        with open_bridge(store, profile) as bridge:
            bystander = Bystander.start(bridge)
            for target in targets:
                if target.parent.is_dir():
                    attempt_failed(attack(bridge, "write_file", path=str(target)), errno.EACCES)
            scratch = attack(bridge, "scratch")  # the one place it may write
            assert scratch["ok"] and scratch["path"].startswith(str(store.root / "scratch"))
            bystander.check()
        assert [t for t in targets if t.exists()] == []
        assert shared_files(store) == before
        # Without the sandbox the write goes through: the refusal above is Landlock's.
        with open_bridge(store, "off") as bridge:
            assert attack(bridge, "write_file", path=str(targets[0])) == {"ok": True}
    finally:
        for target in targets:
            target.unlink(missing_ok=True)


# Found by this suite under standard with a host that is not root (the worker owns the store's
# files): now standard's Landlock ruleset keeps the whole store read-only.
@pytest.mark.parametrize("profile", ["standard", "strict"])
def test_the_venv_and_what_it_shares_stay_unchanged(own_store: PluginStore,
                                                    profile: str) -> None:
    store = own_store
    installed = store.get("attacks")
    assert installed.venv is not None
    site = find_site_packages(installed.venv)
    module = site / "openhands_plugin_attacks" / "tools.py"
    # The module is one inode with uv's cache entry: a write in place would change both.
    assert module.stat().st_nlink > 1
    pooled = next((site / "openhands_plugin_attacks" / "__pycache__").glob("tools.*.pyc"))
    bystander_venv = store.get("bystander").venv
    assert bystander_venv is not None
    bystander_module = (find_site_packages(bystander_venv) / "openhands_plugin_bystander"
                        / "__init__.py")
    before = shared_files(store)
    module_before = module.read_bytes()
    with open_bridge(store, profile) as bridge:
        bystander = Bystander.start(bridge)
        denied = (errno.EACCES, errno.EPERM, errno.EROFS)
        outcomes = {
            "new .pth": attack(bridge, "write_file", path=str(site / "zz-planted.pth"),
                               text="# planted by the security suite\n"),
            "append to module": attack(bridge, "write_file", path=str(module),
                                       text="\n# planted by the security suite\n", mode="a"),
            "overwrite pooled pyc": attack(bridge, "write_file", path=str(pooled), text="x",
                                           mode="r+"),
            "another plugin's venv": attack(bridge, "write_file", path=str(bystander_module),
                                            text="\n# planted by the security suite\n",
                                            mode="a"),
            "symlink in skills": attack(bridge, "plant_symlink", target="/etc/passwd",
                                        link="skills/planted"),
        }
        bystander.check()
    got_through = {what: outcome for what, outcome in outcomes.items()
                   if outcome["ok"] is not False or outcome["errno"] not in denied}
    assert got_through == {}, f"these got through: {got_through}"
    assert not (site / "zz-planted.pth").exists()
    assert not (site / "openhands_plugin_attacks" / "skills" / "planted").is_symlink()
    assert module.read_bytes() == module_before
    assert shared_files(store) == before


@pytest.mark.parametrize("profile", [
    pytest.param("standard", marks=HOLE_UNLESS_ROOT),
    # Found by this suite under strict with a host that is not root: Landlock does not govern
    # chmod and the worker owns the store's files (a venv file is a hardlink of uv's cache
    # entry and of every other venv's copy). Now strict's seccomp filter refuses chmod/chown.
    "strict",
])
def test_installed_files_keep_their_modes(own_store: PluginStore, profile: str) -> None:
    store = own_store
    installed = store.get("attacks")
    assert installed.venv is not None
    module = find_site_packages(installed.venv) / "openhands_plugin_attacks" / "tools.py"
    before = shared_files(store)
    mode = stat.S_IMODE(module.stat().st_mode)
    with open_bridge(store, profile) as bridge:
        bystander = Bystander.start(bridge)
        outcome = attack(bridge, "chmod", path=str(module), mode=0o666)
        bystander.check()
    assert stat.S_IMODE(module.stat().st_mode) == mode
    attempt_failed(outcome, errno.EPERM, errno.EACCES)
    assert shared_files(store) == before


@pytest.mark.parametrize("profile", ["standard", "strict"])
def test_a_file_past_the_size_limit_cannot_be_written(store: PluginStore, profile: str) -> None:
    limit = PROFILE_LIMITS[profile].file_size_bytes
    assert limit is not None
    with open_bridge(store, profile) as bridge:
        bystander = Bystander.start(bridge)
        limits = attack(bridge, "whoami")["limits"]
        assert limits["RLIMIT_FSIZE"] == limit
        if profile == "strict":  # the scratch directory: no need to write the whole limit
            outcome = attack(bridge, "fill_scratch", megabytes=(limit >> 20) + 1)
            attempt_failed(outcome, errno.EFBIG)
            assert outcome["size"] == limit
        bystander.check()


# Under standard this was a hole (#15): the bystander's scratch, owned by the same uid, was
# readable and writable by its neighbour.
@pytest.mark.parametrize("profile", ["standard", "strict"])
def test_one_workers_scratch_is_out_of_anothers_reach(store: PluginStore, profile: str) -> None:
    # Both workers run as the same uid (65534 under a root host, else the host's): only
    # Landlock keeps the attacking plugin out of the bystander's scratch directory.
    with open_bridge(store, profile) as bridge:
        bystander = Bystander.start(bridge)
        note = Path(bridge.call_tool("bystander", "keep", {"text": "private"}).content)
        scratch = bridge.worker("bystander").scratch
        assert scratch is not None and note.parent == scratch
        attempt_failed(attack(bridge, "read_file", path=str(note)), errno.EACCES)
        attempt_failed(attack(bridge, "list_dir", path=str(scratch)), errno.EACCES)
        attempt_failed(attack(bridge, "write_file", path=str(scratch / "planted.txt")),
                       errno.EACCES)
        attempt_failed(attack(bridge, "write_file", path=str(note), mode="a"), errno.EACCES)
        assert note.read_text() == "private"
        assert not (scratch / "planted.txt").exists()
        bystander.check()


# Under standard this was a hole (#15): a worker read other plugins' venvs, the bytecode pool,
# uv's cache, the wheelhouse and the store's metadata. It sees its own generation only.
@pytest.mark.parametrize("profile", ["standard", "strict"])
def test_a_worker_sees_only_its_own_generation_of_the_store(store: PluginStore,
                                                            profile: str) -> None:
    mine = store.get("attacks")
    other = store.get("bystander")
    assert other.venv is not None
    other_file = next(p for p in find_site_packages(other.venv).rglob("*.py"))
    places = [other.path, other_file, other.path / "metadata.json", store.root / "bytecode",
              store.root / "cache" / "uv", store.root / "wheelhouse", store.root / "plugins",
              store.root]
    places += [p for p in store.root.glob("*.json*")]  # policy, audit log, lock files
    with open_bridge(store, profile) as bridge:
        bystander = Bystander.start(bridge)
        for place in places:
            if place.is_dir():
                attempt_failed(attack(bridge, "list_dir", path=str(place)), errno.EACCES)
            elif place.exists():
                attempt_failed(attack(bridge, "read_file", path=str(place)), errno.EACCES)
        # Its own generation stays readable: its content and metadata.
        own = attack(bridge, "read_file", path=str(mine.path / "metadata.json"))
        assert own["ok"] is True, own
        bystander.check()
    with open_bridge(store, "off") as bridge:  # the refusals above are the sandbox's
        assert attack(bridge, "read_file", path=str(other_file))["ok"] is True
