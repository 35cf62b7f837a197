"""A dependency whose dist-info metadata is huge (#15, class 6a).

The host reads dist-info files of every distribution in a plugin's venv as data (entry points
to find the plugins a dependency brings, RECORD, METADATA, INSTALLER...). A plugin's
dependency wheel ships an ``entry_points.txt`` of any size: read whole, 384 MiB of it cost the
host 1.2 GiB at install. Every such read is capped (``isolator.metadata.dist_info_cap``): the
install is refused with an error naming the file and the cap, the store is left as it was,
and the host's memory does not follow the file's size.

The wheels are made per test (``helpers_build.make_wheel``): the file is one comment line of
``#``, which deflates to almost nothing.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

import pytest
from helpers_build import make_wheel
from secsupport import peak_rss_growth

from isolator import IsolatorError, PluginStore
from isolator.metadata._distinfo import dist_info_cap

if TYPE_CHECKING:
    from pathlib import Path

BOMB = "openhands-metadata-bomb"
VICTIM = "openhands-plugin-meta-victim"


def wheels(directory: Path, entry_points_bytes: int) -> Path:
    """A plugin wheel that depends on a wheel whose entry_points.txt has that many bytes."""
    head = "[openhands.plugins]\n"
    make_wheel(directory, BOMB, "1.0.0", files={
        "openhands_metadata_bomb/__init__.py": "",
        "openhands_metadata_bomb-1.0.0.dist-info/entry_points.txt":
            head + "#" * (entry_points_bytes - len(head) - 1) + "\n"})
    make_wheel(directory, VICTIM, "1.0.0", deps=[BOMB],
               entry_points={"openhands.plugins": {"meta-victim": "openhands_plugin_meta_victim"}},
               files={"openhands_plugin_meta_victim/__init__.py": "",
                      "openhands_plugin_meta_victim/commands/hello.md": "Say hello.\n"})
    make_wheel(directory, "openhands-plugin-fine", "1.0.0",
               entry_points={"openhands.plugins": {"fine": "openhands_plugin_fine"}},
               files={"openhands_plugin_fine/__init__.py": "",
                      "openhands_plugin_fine/commands/hello.md": "Say hello.\n"})
    return directory


def snapshot(root: Path) -> list[str]:
    """The store's plugins and generations (what an install adds)."""
    plugins = root / "plugins"
    return sorted(str(p.relative_to(root)) for p in plugins.glob("*/*")) \
        if plugins.is_dir() else []


def refused(store: PluginStore, links: Path) -> IsolatorError:
    with pytest.raises(IsolatorError) as caught:
        store.install(f"pypi:{VICTIM}", find_links=[links], no_index=True)
    return caught.value


def test_entry_points_just_over_the_cap_are_refused_by_name(sec_tmp: Path,
                                                           plugin_python: str) -> None:
    cap = dist_info_cap("entry_points.txt")
    links = wheels(sec_tmp / "wheels", cap + 1)
    store = PluginStore(sec_tmp / "store", python=plugin_python)
    store.install("pypi:openhands-plugin-fine", find_links=[links], no_index=True)
    before = snapshot(store.root)

    message = str(refused(store, links))
    assert "entry_points.txt" in message and "openhands_metadata_bomb-1.0.0.dist-info" in message
    assert re.search(r"\b1 MiB\b", message), message  # the cap, for the person reading it
    assert [p.name for p in store.list_installed()] == ["fine"]
    assert snapshot(store.root) == before


def test_entry_points_at_the_cap_install(sec_tmp: Path, plugin_python: str) -> None:
    links = wheels(sec_tmp / "wheels", dist_info_cap("entry_points.txt"))
    store = PluginStore(sec_tmp / "store", python=plugin_python)
    assert store.install(f"pypi:{VICTIM}", find_links=[links], no_index=True).name \
        == "meta-victim"


def test_a_huge_entry_points_file_costs_the_host_no_memory(sec_tmp: Path,
                                                           plugin_python: str) -> None:
    size = 64 << 20
    links = wheels(sec_tmp / "wheels", size)
    store = PluginStore(sec_tmp / "store", python=plugin_python)
    with peak_rss_growth() as growth:
        error = refused(store, links)
    assert "entry_points.txt" in str(error)
    assert store.list_installed() == []
    assert growth[0] < 32 << 20, f"the host grew by {growth[0] >> 20} MiB reading metadata"


def test_verify_never_reads_a_planted_record_whole_nor_blocks_on_a_fifo(
        sec_tmp: Path, plugin_python: str) -> None:
    # After install, a worker under `off` (or anyone owning the store) replaces a dependency's
    # RECORD with a huge file or a FIFO: `ohp verify` reports the plugin as not verified.
    links = wheels(sec_tmp / "wheels", 100)
    store = PluginStore(sec_tmp / "store", python=plugin_python)
    store.install(f"pypi:{VICTIM}", find_links=[links], no_index=True)
    installed = store.get("meta-victim")
    assert installed.venv is not None
    record = next(installed.venv.rglob("openhands_metadata_bomb-*.dist-info/RECORD"))
    record.unlink()
    os.mkfifo(record)
    report = store.verify("meta-victim")  # before the fix: blocked here for good
    # Its files are no longer accounted for by a RECORD: reported, not verified clean.
    assert not report.ok and report.changes, report
    record.unlink()
    with open(record, "wb") as handle:
        handle.truncate(dist_info_cap("RECORD") + 1)  # sparse: costs no disk
    with peak_rss_growth() as growth:
        report = store.verify("meta-victim")
    assert not report.ok and report.changes, report
    assert growth[0] < 16 << 20, growth
