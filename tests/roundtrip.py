"""The round trip over the corpus: the same content from git (a directory) and from a package.

For every plugin directory: ``ohp package`` it (a real setuptools build through uv), ``ohp
install`` the wheel from a local wheelhouse into its own venv, load it from that venv's
site-packages, and compare with loading the directory itself: the loaded content must be equal
(paths aside), and so must the file tree (every file, its bytes' presence and its executable
bit; the package adds only ``__init__.py``).

A plugin may link files from outside its own directory: OpenHands/extensions links its plugins'
skills to the repository's shared ``skills/``. Packaging follows a link whose target is inside
the repository (``package_plugin(repo_root=)``, issue #18) and copies the target in: for such
a plugin the reference is an independent copy of the directory with every link followed
(``shutil.copytree(symlinks=False)``), what its author meant, not the directory loaded in
place (the loader, as the SDK's, refuses links leaving the plugin root). Such plugins are
listed in ``RoundTrip.followed``. A plugin with a link leaving the repository cannot be
packaged: for it the round trip checks that ``ohp package`` refuses it with a
:class:`~isolator.PackagingError` naming each such link and nothing else, and lists it in
``RoundTrip.refused``; anything else (packaged anyway, refused for another reason) is a failure.

Used by ``tests/test_corpus_roundtrip.py`` and ``benchmarks/bench_roundtrip.py``; like
:mod:`oracle`, it does not import pytest.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import isolator
from isolator.authoring._authoring import (
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
    refused: dict[str, list[str]] = field(default_factory=dict)
    """Plugins refused by ``ohp package`` as expected, only for symlinks leaving the
    repository (the plugin's ``repo_root``): label -> those links (relative paths, sorted)."""
    followed: dict[str, list[str]] = field(default_factory=dict)
    """Plugins packaged with symlinks leaving their directory for the repository, followed:
    label -> those links (relative paths, sorted). Each is in ``passed`` or ``failures`` too."""
    package_seconds: float = 0.0
    install_seconds: float = 0.0
    total_seconds: float = 0.0
    per_plugin_install: list[float] = field(default_factory=list)


class RefusedForLinks(UserWarning):
    """Plugins the round trip could not cover: packaging refuses symlinks leaving their
    repository."""


def refusal_notice(refused: dict[str, list[str]]) -> str:
    """One line per refused plugin, for a report."""
    lines = [f"{len(refused)} plugins refused by ohp package (symlinks leaving the "
             "repository):"]
    lines += [f"  {name}: {', '.join(links)}" for name, links in sorted(refused.items())]
    return "\n".join(lines)


def warn_refused(refused: dict[str, list[str]]) -> None:
    """Report the refused plugins as a :class:`RefusedForLinks` warning (none: nothing)."""
    if refused:
        warnings.warn(RefusedForLinks(refusal_notice(refused)), stacklevel=2)


def links_leaving(directory: Path, root: Path | None = None) -> list[str]:
    """The symlinks under *directory* whose target resolves outside *root* (default:
    *directory*), as sorted relative POSIX paths. Links that stay inside *root* are followed
    (as packaging follows them), once each."""
    real_root = os.path.realpath(root if root is not None else directory)
    found: list[str] = []

    def walk(real_dir: str, rel_dir: str, ancestors: frozenset[str]) -> None:
        for entry in sorted(os.scandir(real_dir), key=lambda e: e.name):
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            path = os.path.realpath(entry.path)
            if entry.is_symlink() and os.path.commonpath([real_root, path]) != real_root:
                found.append(rel)
            elif os.path.isdir(path) and path not in ancestors:
                walk(path, rel, ancestors | {path})

    start = os.path.realpath(directory)
    walk(start, "", frozenset({start}))
    return sorted(found)


def linked_copy(directory: Path, into: Path) -> Path:
    """What the author of a plugin linking files from its repository meant: a copy of
    *directory* (named as it) with every symlink followed, VCS and cache directories left
    out. Made with ``shutil.copytree``, not with the code under test."""
    target = into / directory.name
    shutil.copytree(directory, target, symlinks=False, ignore=shutil.ignore_patterns(
        ".git", ".hg", ".svn", "__pycache__", ".venv", "node_modules", "*.pyc", "*.pyo"))
    return target


def refusal_problems(directory: Path, made: PackageResult | Exception,
                     leaving: Sequence[str]) -> list[str]:
    """Why packaging *directory* (whose links *leaving* leave it) was not the refusal we
    expect: a PackagingError naming the directory and each of those links, and nothing else."""
    if not isinstance(made, isolator.PackagingError):
        got = "a wheel" if isinstance(made, PackageResult) else f"{type(made).__name__}: {made}"
        return [f"package: expected a PackagingError for the symlinks leaving the plugin "
                f"directory ({', '.join(leaving)}), got {got}"]
    problems = []
    if made.path != str(directory):
        problems.append(f"package: the PackagingError names {made.path!r}, not the plugin")
    named = {p.split(": ", 1)[0]: p for p in made.problems}
    if sorted(named) != sorted(leaving) or len(named) != len(made.problems):
        problems.append(f"package: refused for {list(made.problems)}, expected exactly the "
                        f"symlinks leaving the plugin directory {list(leaving)}")
    for rel in leaving:
        target = os.readlink(directory / rel)
        problem = named.get(rel, "")
        if "symlink" not in problem or target not in problem or rel not in str(made):
            problems.append(f"package: the refusal does not name the link {rel} -> {target} "
                            f"as a symlink: {problem!r}")
    return problems


def _package(directory: Path, out: Path, python: str | None,
             repo_root: Path | None) -> PackageResult | Exception:
    try:
        return package_plugin(directory, out, settings=BuildSettings(python=python),
                              repo_root=repo_root)
    except isolator.IsolatorError as exc:
        return exc


def compare_installed(directory: Path, store: isolator.PluginStore, name: str) -> list[str]:
    """How the installed plugin *name* differs from the directory it was packaged from (a
    plugin linking files from elsewhere: from :func:`linked_copy` of it)."""
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
    repo_root: Callable[[Path], Path] | None = None,
) -> RoundTrip:
    """Package, install, load and compare every directory; *work* holds the wheelhouses and
    the store. *python* is the venvs' interpreter (default: this one). *repo_root* gives the
    repository a plugin directory is in, where its symlinks may point (default: the plugin
    directory itself)."""
    result = RoundTrip(plugins=len(directories))
    start = time.perf_counter()
    workers = workers or os.cpu_count() or 2
    outs = [work / "wheels" / f"{i:04d}" for i in range(len(directories))]
    roots = [repo_root(d) if repo_root is not None else d for d in directories]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        packaged = list(pool.map(_package, directories, outs,
                                 [python] * len(directories), roots))
    result.package_seconds = time.perf_counter() - start
    store = isolator.PluginStore(work / "store")
    installing = time.perf_counter()
    for index, (directory, made, out, root) in enumerate(
            zip(directories, packaged, outs, roots, strict=True)):
        name = label(directory)
        if progress is not None:
            progress(f"[{index + 1}/{len(directories)}] {name}")
        leaving = links_leaving(directory, root)
        if leaving:
            problems = refusal_problems(directory, made, leaving)
            if problems:
                result.failures[name] = problems
            else:
                result.refused[name] = leaving
            continue
        if isinstance(made, Exception):
            result.failures[name] = [f"package: {made}"]
            continue
        reference = directory
        followed = links_leaving(directory)
        if followed:
            result.followed[name] = followed
            reference = linked_copy(directory, work / "reference" / f"{index:04d}")
            if sorted(made.outside) != followed:
                result.failures[name] = [f"package: followed {sorted(made.outside)} out of "
                                         f"the plugin directory, expected {followed}"]
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
            problems = compare_installed(reference, store, installed.name)
        finally:
            store.uninstall(installed.name)  # corpus plugins share names: one at a time
        if problems:
            result.failures[name] = problems
        else:
            result.passed.append(name)
    result.install_seconds = time.perf_counter() - installing
    result.total_seconds = time.perf_counter() - start
    return result
