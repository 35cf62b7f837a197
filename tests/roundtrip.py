"""The round trip over the corpus: the same content from git (a directory) and from a package.

For every plugin directory: ``ohp package`` it (a real setuptools build through uv), ``ohp
install`` the wheel from a local wheelhouse into its own venv, load it from that venv's
site-packages, and compare with loading the directory itself: the loaded content must be equal
(paths aside), and so must the file tree (every file, its bytes' presence and its executable
bit; the package adds only ``__init__.py``).

Used by ``tests/test_corpus_roundtrip.py`` and ``benchmarks/bench_roundtrip.py``; like
:mod:`oracle`, it does not import pytest.
"""

from __future__ import annotations

import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import isolator
from isolator._authoring import (
    BuildSettings,
    PackageResult,
    content_differences,
    package_plugin,
    plugin_files,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from pathlib import Path


@dataclass
class RoundTrip:
    """What a round trip over some plugin directories found, with its timings (seconds)."""

    plugins: int = 0
    passed: list[str] = field(default_factory=list)
    failures: dict[str, list[str]] = field(default_factory=dict)
    package_seconds: float = 0.0
    install_seconds: float = 0.0
    total_seconds: float = 0.0
    per_plugin_install: list[float] = field(default_factory=list)


def _package(directory: Path, out: Path, python: str | None) -> PackageResult | str:
    try:
        return package_plugin(directory, out, settings=BuildSettings(python=python))
    except isolator.IsolatorError as exc:
        return f"package: {exc}"


def compare_installed(directory: Path, store: isolator.PluginStore, name: str) -> list[str]:
    """How the installed plugin *name* differs from the directory it was packaged from."""
    problems: list[str] = []
    from_dir = isolator.load_plugin(directory)
    installed = store.load(name)
    problems += content_differences(from_dir, installed)
    if installed.installation is None or installed.installation.kind != "package":
        problems.append(f"installed as {installed.installation}, not as a package")
    ours, theirs = plugin_files(directory), plugin_files(installed.root)
    if "__init__.py" not in ours:
        theirs.pop("__init__.py", None)  # the one file the package adds
    if ours != theirs:
        problems += [f"file only in the directory: {p}" for p in sorted(set(ours) - set(theirs))]
        problems += [f"file only in the package: {p}" for p in sorted(set(theirs) - set(ours))]
        problems += [f"executable bit differs: {p}" for p in sorted(set(ours) & set(theirs))
                     if ours[p] != theirs[p]]
    if not installed.root.startswith(str(store.root)) or "site-packages" not in installed.root:
        problems.append(f"loaded from {installed.root}, not from the venv's site-packages")
    return problems


def round_trip(
    directories: Sequence[Path],
    work: Path,
    *,
    label: Callable[[Path], str] = str,
    python: str | None = None,
    workers: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> RoundTrip:
    """Package, install, load and compare every directory; *work* holds the wheelhouses and
    the store. *python* is the venvs' interpreter (default: this one)."""
    result = RoundTrip(plugins=len(directories))
    start = time.perf_counter()
    workers = workers or os.cpu_count() or 2
    outs = [work / "wheels" / f"{i:04d}" for i in range(len(directories))]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        packaged = list(pool.map(_package, directories, outs,
                                 [python] * len(directories)))
    result.package_seconds = time.perf_counter() - start
    store = isolator.PluginStore(work / "store")
    installing = time.perf_counter()
    for index, (directory, made, out) in enumerate(zip(directories, packaged, outs, strict=True)):
        name = label(directory)
        if progress is not None:
            progress(f"[{index + 1}/{len(directories)}] {name}")
        if isinstance(made, str):
            result.failures[name] = [made]
            continue
        one = time.perf_counter()
        source = isolator.PluginSource.parse(f"pypi:{made.dist_name}", version=made.version,
                                             find_links=[str(out)], no_index=True)
        try:
            installed = store.install(source, python=python or sys.executable)
        except isolator.IsolatorError as exc:
            result.failures[name] = [f"install: {exc}"]
            continue
        result.per_plugin_install.append(time.perf_counter() - one)
        try:
            problems = compare_installed(directory, store, installed.name)
        finally:
            store.uninstall(installed.name)  # corpus plugins share names: one at a time
        if problems:
            result.failures[name] = problems
        else:
            result.passed.append(name)
    result.install_seconds = time.perf_counter() - installing
    result.total_seconds = time.perf_counter() - start
    return result
