"""Stage 1: a source made ready to resolve: a root requirement, or a directory of content."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from isolator._errors import SourceError, StoreError
from isolator.policy._policy import distribution_name, source_indexes
from isolator.sources._sources import classify_directory, resolve_repo_path
from isolator.store._acquire import git_checkout
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
    if src.kind == "git":
        assert src.url is not None
        say(progress, f"cloning {src.url}")
        checkout = op / "checkout"
        git_commit = git_checkout(src.url, ref or src.ref, checkout, progress=None,
                                  timeout=timeout)
        checkpoint("cloned")
        directory = resolve_repo_path(checkout, src.repo_path)
    else:
        path = src.path
        assert path is not None
        directory = path
    if src.kind in {"directory", "git"}:
        if classify_directory(directory) == "content-only":
            return Prepared(content_dir=directory, git_commit=git_commit)
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
