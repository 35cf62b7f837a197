"""The environment pool (``PluginStore(root, pool=DIR)``, ``--pool DIR``): one venv per resolved
set, shared read-only by every tenant store that installs the same set; real uv, real venvs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from isolator import PluginStore, StoreError
from isolator.metadata._distinfo import find_site_packages
from isolator.store._venvfiles import venv_entries

SALUTE = "pypi:openhands-plugin-salute"  # brings greetings and example-textkit 1
WAIT = 300


def offline(wheelhouse: Path) -> dict[str, object]:
    return {"find_links": [wheelhouse], "no_index": True}


def tenants(base: Path, n: int, pool: Path | None = None) -> list[PluginStore]:
    pool = pool or base / "pool"
    return [PluginStore(base / f"tenant-{i}", pool=pool) for i in range(n)]


def envs(pool: Path) -> list[str]:
    directory = pool / "envs"
    return sorted(e.name for e in directory.iterdir()) if directory.is_dir() else []


def disk(path: Path) -> int:
    """Bytes allocated under *path*, each inode counted once (as du)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for current, dirs, files in os.walk(path):
        for name in [*dirs, *files]:
            info = os.lstat(os.path.join(current, name))
            if (info.st_dev, info.st_ino) not in seen:
                seen.add((info.st_dev, info.st_ino))
                total += info.st_blocks * 512
    return total


def ohp(*args: str | os.PathLike[str]) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("ohp")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "hostbridge.cli"]
    return subprocess.run([*cmd, *map(str, args)], capture_output=True, text=True,
                          timeout=WAIT, check=False)


def test_tenants_share_one_environment_and_keep_their_own_records(
    tmp_path: Path, example_wheelhouse: Path
) -> None:
    a, b = tenants(tmp_path, 2)
    first = a.install(SALUTE, **offline(example_wheelhouse))  # type: ignore[arg-type]
    second = b.install(SALUTE, **offline(example_wheelhouse))  # type: ignore[arg-type]
    pool = tmp_path / "pool"
    assert envs(pool) == [first.pool["key"]] if first.pool else False
    assert first.venv == second.venv and first.venv is not None
    assert first.venv.is_relative_to(pool)
    # Each tenant has its own generation and metadata; the venv is not under either.
    assert first.path.is_relative_to(tmp_path / "tenant-0")
    assert second.path.is_relative_to(tmp_path / "tenant-1")
    assert not (second.path / "venv").exists()
    meta = json.loads((second.path / "metadata.json").read_text())
    assert meta["pool"] == {"root": str(pool.resolve()), "key": envs(pool)[0],
                            "env": str(first.env_dir)}
    # Content, brought plugins, entry points and verify read the pooled venv.
    assert b.load("salute").name == "salute"
    assert [p.name for p in b.list_installed()] == ["greetings", "salute"]
    assert b.get("greetings").content_dir.is_dir()
    assert b.entry_points("salute")["openhands.tools"]
    assert b.verify().ok and a.verify().ok
    b.check_interpreter_files(second)
    # The tenant holds no wheelhouse, uv cache or bytecode: those are the pool's.
    for shared in ("wheelhouse", "cache", "bytecode"):
        assert not (tmp_path / "tenant-1" / shared).exists()
        assert (pool / shared).is_dir()
    # An extra tenant costs metadata only.
    assert disk(tmp_path / "tenant-1") < 150 * 1024, disk(tmp_path / "tenant-1")
    # Settings and the audit log stay the tenant's.
    b.configure("salute", sandbox="strict")
    assert a.settings("salute").sandbox is None
    assert (tmp_path / "tenant-1" / "audit.jsonl").exists()
    assert not (pool / "audit.jsonl").exists()


def test_uninstall_in_one_tenant_leaves_the_other_working_and_clean_collects_last(
    tmp_path: Path, example_wheelhouse: Path
) -> None:
    a, b = tenants(tmp_path, 2)
    installed = a.install(SALUTE, **offline(example_wheelhouse))  # type: ignore[arg-type]
    b.install(SALUTE, **offline(example_wheelhouse))  # type: ignore[arg-type]
    pool = tmp_path / "pool"
    (key,) = envs(pool)
    a.uninstall("salute")
    report = a.clean()
    assert report.pool is not None and report.pool["environments"] == []
    assert report.pool["kept"] == 1 and report.pool["references"] == 1  # a's reference went
    assert b.verify().ok and b.load("salute").name == "salute"
    assert installed.venv is not None and (installed.venv / "bin" / "python").exists()
    # A worker's lease on the last generation that names the environment keeps it.
    with b.lease("salute"):
        b.uninstall("salute")
        assert b.clean().pool["environments"] == []  # type: ignore[index]
        assert envs(pool) == [key]
    report = b.clean()
    assert report.pool is not None and report.pool["environments"] == [key]
    assert envs(pool) == []
    assert list((pool / "wheelhouse").iterdir()) == []
    assert not (pool / "refs" / key).exists()
    # The pool still serves: the next install builds the environment again.
    again = b.install(SALUTE, **offline(example_wheelhouse))  # type: ignore[arg-type]
    assert again.pool is not None and again.pool["key"] == key and b.verify().ok


def test_reinstall_and_sync_use_the_pool(tmp_path: Path, example_wheelhouse: Path) -> None:
    a, b = tenants(tmp_path, 2)
    installed = a.install(SALUTE, **offline(example_wheelhouse))  # type: ignore[arg-type]
    again = a.reinstall("salute")
    assert again.generation != installed.generation and again.venv == installed.venv
    report = b.sync(a.lock())
    assert report.installed == ("salute",)
    assert b.get("salute").venv == installed.venv and b.verify().ok
    assert len(envs(tmp_path / "pool")) == 1


def test_a_content_only_plugin_and_the_default_store_are_unchanged(
    tmp_path: Path, example_wheelhouse: Path
) -> None:
    (a,) = tenants(tmp_path, 1)
    plugin = tmp_path / "notes"
    (plugin / "skills" / "n").mkdir(parents=True)
    (plugin / "skills" / "n" / "SKILL.md").write_text("---\nname: n\ndescription: d\n---\nx\n")
    assert a.install(str(plugin)).kind == "content-only"
    plain = PluginStore(tmp_path / "plain")
    own = plain.install(SALUTE, **offline(example_wheelhouse))  # type: ignore[arg-type]
    assert own.pool is None and own.venv == own.path / "venv"
    assert (tmp_path / "plain" / "wheelhouse").is_dir()


def test_concurrent_installs_from_many_tenants_build_one_environment(
    tmp_path: Path, example_wheelhouse: Path
) -> None:
    n = 4
    script = tmp_path / "racer.py"
    script.write_text(
        "import json, os, sys, time\n"
        "from isolator import PluginStore\n"
        "root, pool, go, source, links = sys.argv[1:]\n"
        "open(go + '.ready-' + str(os.getpid()), 'w').close()\n"
        "while not os.path.exists(go): time.sleep(0.005)\n"
        "i = PluginStore(root, pool=pool).install(source, find_links=[links], no_index=True)\n"
        "print(json.dumps({'venv': str(i.venv)}))\n", encoding="utf-8")
    go = tmp_path / "barrier" / "go"
    go.parent.mkdir()
    pool = tmp_path / "pool"
    procs = [subprocess.Popen([sys.executable, str(script), str(tmp_path / f"t{i}"), str(pool),
                               str(go), SALUTE, str(example_wheelhouse)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(n)]
    try:
        deadline = time.monotonic() + WAIT
        while len(list(go.parent.glob("go.ready-*"))) < n:
            assert all(p.poll() is None for p in procs) and time.monotonic() < deadline
            time.sleep(0.01)
        go.touch()
        results = [p.communicate(timeout=WAIT) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert [p.returncode for p in procs] == [0] * n, results
    assert len({json.loads(out)["venv"] for out, _ in results}) == 1
    assert len(envs(pool)) == 1
    assert list((pool / "tmp").iterdir()) == []
    for i in range(n):
        assert PluginStore(tmp_path / f"t{i}", pool=pool).verify().ok


# ---- hostile pools -----------------------------------------------------------------------------


@pytest.fixture
def pooled_pair(tmp_path: Path, example_wheelhouse: Path) -> tuple[PluginStore, PluginStore,
                                                                   Path]:
    """Tenant a installed salute into the pool; tenant b has not yet. The environment's dir."""
    a, b = tenants(tmp_path, 2)
    installed = a.install(SALUTE, **offline(example_wheelhouse))  # type: ignore[arg-type]
    return a, b, installed.env_dir


def _refused(store: PluginStore, wheelhouse: Path, *needles: str) -> str:
    with pytest.raises(StoreError) as info:
        store.install(SALUTE, **offline(wheelhouse))  # type: ignore[arg-type]
    message = str(info.value)
    for needle in needles:
        assert needle in message, message
    assert store.list_installed() == []  # nothing half-installed
    assert list((store.root / "plugins").glob("*/gen-*")) == []
    return message


def test_a_changed_file_in_a_pooled_environment_is_refused(
    pooled_pair: tuple[PluginStore, PluginStore, Path], example_wheelhouse: Path
) -> None:
    a, b, env = pooled_pair
    module = find_site_packages(env / "venv") / "openhands_plugin_salute" / "tools.py"
    text = module.read_text()
    module.unlink()  # a new inode: uv's cache keeps its own copy
    module.write_text(text + "\nimport os  # planted\n")
    _refused(b, example_wheelhouse, "openhands_plugin_salute/tools.py is modified")
    assert not a.verify().ok  # and the tenant that had it sees it too


def test_a_planted_pth_file_in_a_pooled_environment_is_refused(
    pooled_pair: tuple[PluginStore, PluginStore, Path], example_wheelhouse: Path
) -> None:
    _a, b, env = pooled_pair
    (find_site_packages(env / "venv") / "zz-planted.pth").write_text("import os\n")
    _refused(b, example_wheelhouse, "zz-planted.pth is unexpected")


def test_a_pooled_environment_with_another_interpreter_is_refused(
    pooled_pair: tuple[PluginStore, PluginStore, Path], example_wheelhouse: Path
) -> None:
    _a, b, env = pooled_pair
    cfg = env / "venv" / "pyvenv.cfg"
    cfg.write_text(cfg.read_text().replace("include-system-site-packages = false",
                                           "include-system-site-packages = true"))
    _refused(b, example_wheelhouse, "pyvenv.cfg is modified")
    # Its record rewritten to match does not help: the file itself is checked.
    record = json.loads((env / "env.json").read_text())
    site = find_site_packages(env / "venv")
    record["interpreter_files"] = venv_entries(env / "venv", site)
    (env / "env.json").write_text(json.dumps(record))
    _refused(b, example_wheelhouse, "system site-packages")


def test_an_environment_record_for_other_inputs_is_refused(
    pooled_pair: tuple[PluginStore, PluginStore, Path], example_wheelhouse: Path
) -> None:
    _a, b, env = pooled_pair
    record = json.loads((env / "env.json").read_text())
    record["inputs"]["distributions"] = []
    (env / "env.json").write_text(json.dumps(record))
    _refused(b, example_wheelhouse, "other inputs")


def test_a_symlinked_environment_is_refused(
    pooled_pair: tuple[PluginStore, PluginStore, Path], example_wheelhouse: Path,
    tmp_path: Path
) -> None:
    _a, b, env = pooled_pair
    elsewhere = tmp_path / "elsewhere"
    shutil.move(env, elsewhere)
    env.symlink_to(elsewhere)
    _refused(b, example_wheelhouse, "not a directory")


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_an_environment_owned_by_another_uid_is_refused(
    pooled_pair: tuple[PluginStore, PluginStore, Path], example_wheelhouse: Path
) -> None:
    _a, b, env = pooled_pair
    os.chown(env, 65534, 65534)
    _refused(b, example_wheelhouse, "owned by uid 65534")


def test_a_half_built_environment_is_rebuilt_and_debris_collected(
    pooled_pair: tuple[PluginStore, PluginStore, Path], example_wheelhouse: Path
) -> None:
    a, b, env = pooled_pair
    (env / ".complete").unlink()  # as a build killed before it was published
    installed = b.install(SALUTE, **offline(example_wheelhouse))  # type: ignore[arg-type]
    assert installed.env_dir == env and (env / ".complete").exists() and b.verify().ok
    debris = env.parent / ("f" * 32)
    debris.mkdir()
    (debris / "venv").mkdir()
    report = a.clean()
    assert report.pool is not None and report.pool["debris"] == 1 and not debris.exists()
    assert a.verify().ok and b.verify().ok


def test_pool_and_tenant_roots_must_be_apart(tmp_path: Path) -> None:
    pool = tmp_path / "pool"
    for root in (pool, pool / "tenant", tmp_path):
        with pytest.raises(StoreError, match="the pool, inside it or around it"):
            PluginStore(root, pool=pool)
    (tmp_path / "link").symlink_to(pool)  # the same directory under another name
    pool.mkdir()
    with pytest.raises(StoreError, match="the pool, inside it or around it"):
        PluginStore(tmp_path / "link", pool=pool)


def test_a_directory_that_is_no_pool_is_refused(tmp_path: Path, example_wheelhouse: Path,
                                                ) -> None:
    store_dir = tmp_path / "store"
    PluginStore(store_dir).install(SALUTE, **offline(example_wheelhouse))  # type: ignore[arg-type]
    tenant = PluginStore(tmp_path / "t", pool=store_dir)
    with pytest.raises(StoreError, match="is a plugin store, not an environment pool"):
        tenant.install(SALUTE, **offline(example_wheelhouse))  # type: ignore[arg-type]
    other = tmp_path / "other"
    other.mkdir()
    (other / "file").write_text("x")
    with pytest.raises(StoreError, match="not an environment pool"):
        PluginStore(tmp_path / "t2", pool=other).install(
            SALUTE, **offline(example_wheelhouse))  # type: ignore[arg-type]
    assert sorted(p.name for p in other.iterdir()) == ["file"]


def test_a_pool_this_process_may_not_write_is_refused_with_the_reason(
    tmp_path: Path, example_wheelhouse: Path
) -> None:
    pool = tmp_path / "pool"
    a, b = tenants(tmp_path, 2)
    a.install(SALUTE, **offline(example_wheelhouse))  # type: ignore[arg-type]
    if os.geteuid() == 0:
        os.chown(pool, 65534, 65534)  # another user's pool
        needle = "owned by uid 65534"
    else:
        pool.chmod(0o555)
        needle = "not writable by this process"
    try:
        _refused(b, example_wheelhouse, needle, str(pool))
        # Reading what a tenant installed from it needs no write access.
        assert a.load("salute").name == "salute" and a.verify().ok
    finally:
        os.chown(pool, os.geteuid(), os.getegid())
        pool.chmod(0o755)


def test_ohp_takes_pool_on_every_store_command(tmp_path: Path,
                                               example_wheelhouse: Path) -> None:
    pool = tmp_path / "pool"
    for tenant in ("a", "b"):
        result = ohp("install", SALUTE, "--find-links", example_wheelhouse, "--no-index",
                     "--root", tmp_path / tenant, "--pool", pool)
        assert result.returncode == 0, result.stderr
    listed = ohp("list", "--json", "--root", tmp_path / "b", "--pool", pool)
    assert listed.returncode == 0, listed.stderr
    venvs = {p["venv"] for p in json.loads(listed.stdout)}
    assert len(venvs) == 1 and venvs.pop().startswith(str(pool.resolve()))
    assert ohp("verify", "--root", tmp_path / "b", "--pool", pool).returncode == 0
    assert ohp("uninstall", "salute", "--root", tmp_path / "a", "--pool", pool).returncode == 0
    cleaned = ohp("clean", "--json", "--root", tmp_path / "a", "--pool", pool)
    assert cleaned.returncode == 0, cleaned.stderr
    assert json.loads(cleaned.stdout)["pool"]["kept"] == 1
    bad = ohp("list", "--root", pool, "--pool", pool)
    assert bad.returncode == 1 and "inside it or around it" in bad.stderr
