"""Stage 1: a source made ready to resolve: a root requirement, or a directory of content.

A content-only plugin from git or a directory may link files from outside its own directory:
OpenHands/extensions keeps shared skills in the repository's ``skills/`` and each plugin links
them (``plugins/openhands/skills/openhands-api -> ../../../skills/openhands-api``). Such a link is
followed when its target stays inside the source (the checkout; the directory given): the plugin
is first copied with its links made regular files (:func:`content_with_links`), one warning on
the ``isolator.store`` logger naming each link. A link leaving the source is not followed, and
named in a warning too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from isolator._errors import SourceError, StoreError
from isolator.policy._policy import distribution_name, source_indexes
from isolator.sources._sources import (
    classify_directory,
    copy_tree,
    resolve_repo_path,
    scan_tree,
)
from isolator.store._acquire import (
    _SKIPPED_DIRS,
    MAX_CONTENT_BYTES,
    MAX_CONTENT_FILES,
    git_checkout,
)
from isolator.store._disk import checkpoint, say
from isolator.store._records import redacted
from isolator.store._resolve import check_wheel, wheel_distribution

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from isolator.policy._policy import Policy
    from isolator.sources._sources import PluginSource
    from isolator.store._context import StoreContext
    from isolator.store._interpreters import Interpreter


@dataclass
class Prepared:
    """A source made ready to resolve: a root requirement, or content to copy."""

    requirement: str | None = None
    root_name: str | None = None
    content_dir: Path | None = None
    git_commit: str | None = None
    links: tuple[str, ...] = ()
    """What was said of the content's symlinks leaving its directory: one line per link
    followed (inside the source) or not followed (leaving it, dangling...)."""


_logger = logging.getLogger("isolator.store")


def check_indexes(policy: Policy, src: PluginSource, plugin: str) -> None:
    for url in source_indexes(redacted(src)):
        policy.check_index(plugin, url)


def prepare(
    ctx: StoreContext,
    src: PluginSource,
    interpreter: Interpreter | None,
    op: Path,
    *,
    allow_build: bool,
    progress: Callable[[str], None] | None,
    timeout: float | None,
    ref: str | None = None,
) -> Prepared:
    """Turn a source into a requirement to resolve, or a directory of content to copy."""
    if src.kind in ("pypi", "wheel"):  # resolution is the first use of an index
        check_indexes(ctx.policy, src, distribution_name(src))
    if src.kind == "pypi":
        assert src.canonical_name is not None
        return Prepared(requirement=src.requirement(), root_name=src.canonical_name)
    if src.kind == "wheel":
        path = src.path
        assert path is not None
        check_wheel(path)
        return Prepared(requirement=str(path), root_name=wheel_distribution(path)[0])
    git_commit = None
    boundary: Path | None = None
    if src.kind == "git":
        assert src.url is not None
        say(progress, f"cloning {src.url}")
        checkout = op / "checkout"
        git_commit = git_checkout(src.url, ref or src.ref, checkout, progress=None,
                                  timeout=timeout)
        checkpoint("cloned")
        directory = resolve_repo_path(checkout, src.repo_path)
        boundary = checkout
    else:
        path = src.path
        assert path is not None
        directory = boundary = path
    if src.kind in {"directory", "git"}:
        if classify_directory(directory) == "content-only":
            assert boundary is not None
            content, links = content_with_links(
                directory, boundary, op / "linked",
                "the repository" if src.kind == "git" else f"the directory {boundary}",
                progress, label=src.default_name or directory.name)
            return Prepared(content_dir=content, git_commit=git_commit, links=links)
        if src.kind == "git" and not allow_build:
            raise SourceError(src.source, "this repository is a package (it has "
                              "pyproject.toml); building it runs code it ships: pass "
                              "allow_build=True (--allow-build) to allow that")
    if interpreter is None:
        raise StoreError(src.source, "a package source needs an interpreter")
    # A local project (or a checkout, or an sdist) is built into a wheel first; from then
    # on it is a wheel like any other, resolved together with its dependencies.
    check_indexes(ctx.policy, src, distribution_name(src, directory))  # the build uses them
    say(progress, f"building {directory.name}")
    built = ctx.backend.build_wheel(
        directory, op / "built", interpreter, index_url=src.index_url,
        find_links=list(src.find_links), no_index=src.no_index, allow_build=allow_build,
        timeout=timeout,
        # A user's project directory may hold a stale build/ (setuptools never cleans
        # build/lib): built from an sdist, a deleted skill cannot come back in the wheel.
        via_sdist=src.kind == "directory",
    )
    return Prepared(requirement=str(built), root_name=wheel_distribution(built)[0],
                    git_commit=git_commit)


def content_with_links(directory: Path, boundary: Path, work: Path, boundary_name: str,
                       progress: Callable[[str], None] | None, *,
                       label: str) -> tuple[Path, tuple[str, ...]]:
    """The directory to copy for the content-only plugin *directory* of a source whose files
    are *boundary*, and one line per symlink leaving *directory* or entry left out, each also
    logged as a warning (*label* names the plugin in them).

    That directory is *directory* itself when every symlink in it stays inside it and nothing
    is left out (the store's copy follows such links). Otherwise it is a copy in *work*, made
    from :func:`scan_tree`: a link to a file or tree elsewhere in *boundary* is followed, its
    target copied as regular files; a link leaving *boundary* (or dangling, looping, naming a
    special file or ``.git/``) is not followed, as the store's copy never followed it. Such an
    entry is named, not refused: the plugin's other files are its content still.
    """
    tree = scan_tree(directory, boundary=boundary, boundary_name=boundary_name,
                     skip_dirs=_SKIPPED_DIRS, max_files=MAX_CONTENT_FILES,
                     max_bytes=MAX_CONTENT_BYTES)
    lines = tree.notices(label)
    lines += [f"{label}: not copied: {problem}" for problem in tree.problems]
    for line in lines:
        _logger.warning("%s", line)
    if not tree.outside and not tree.problems:
        return directory, ()
    if tree.outside:
        say(progress, f"copying {len(tree.outside)} symlinked paths of {label}")
    target = work / directory.name
    copy_tree(tree, target)
    return target, tuple(lines)
