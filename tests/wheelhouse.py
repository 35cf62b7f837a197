"""The example projects under ``examples/`` built into one flat directory of wheels, cached.

Every directory under ``examples/`` and ``examples/libs/`` that holds a ``pyproject.toml`` is
built with ``uv build --wheel``. The result is cached in
``<oracle.cache_dir()>/wheelhouse-<key>/`` (``$ISOLATOR_TEST_CACHE`` moves it), where the key
hashes every project file and the uv version, so all pytest-xdist workers and later runs share
one build. Builds run under a file lock into a temporary directory that is renamed into place
only when complete. The first build fetches setuptools from PyPI (through uv's cache).

Like :mod:`oracle`, this module does not import pytest.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import oracle
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import Version

if TYPE_CHECKING:
    from collections.abc import Iterator

EXAMPLES_DIR = oracle.REPO_ROOT / "examples"
# Bump when the layout of a cached wheelhouse or the way it is built changes.
_FORMAT = 1
_BUILD_TIMEOUT = 600.0
# Build output that must neither reach the key nor the copy that is built.
_SKIP_DIRS = frozenset({"__pycache__", "build", "dist"})
_PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")
_PASSED_VARS = (
    "PATH",
    "HOME",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "XDG_CACHE_HOME",
    "TMPDIR",
    *_PROXY_VARS,
    *(name.lower() for name in _PROXY_VARS),
)


# -- finding and hashing the projects --------------------------------------------------------


def example_projects(examples_root: Path = EXAMPLES_DIR) -> list[Path]:
    """Every directory under *examples_root* and *examples_root*/libs with a pyproject.toml."""
    found: list[Path] = []
    for parent in (examples_root, examples_root / "libs"):
        if parent.is_dir():
            found += [d for d in parent.iterdir() if (d / "pyproject.toml").is_file()]
    return sorted(found)


def _skipped(name: str) -> bool:
    return name in _SKIP_DIRS or name.endswith(".egg-info")


def _project_files(project: Path) -> Iterator[Path]:
    """The files of *project* that make its wheel, sorted; build output is left out."""
    for current, dirnames, filenames in os.walk(project):
        dirnames[:] = sorted(d for d in dirnames if not _skipped(d))
        for name in sorted(filenames):
            if not name.endswith(".pyc"):
                yield Path(current) / name


def wheelhouse_key(examples_root: Path, uv_version: str) -> str:
    """SHA-256 over the projects' files (relative paths and bytes) and *uv_version*.

    Independent of where the tree lives and of build output (``build/``, ``dist/``,
    ``*.egg-info``, ``__pycache__``); files outside the projects do not count.
    """
    digest = hashlib.sha256()

    def add(tag: bytes, data: bytes) -> None:
        digest.update(tag + len(data).to_bytes(8, "big") + data)

    add(b"V", f"{_FORMAT}\0{uv_version}".encode())
    for project in example_projects(examples_root):
        for path in _project_files(project):
            add(b"P", path.relative_to(examples_root).as_posix().encode())
            add(b"F", path.read_bytes())
    return digest.hexdigest()


# -- building --------------------------------------------------------------------------------


def uv_bin() -> str:
    """The uv binary of the ``uv`` Python package (a test dependency)."""
    from uv import find_uv_bin

    return find_uv_bin()


def build_env() -> dict[str, str]:
    """The scrubbed environment for uv: PATH, HOME, TLS, proxy, cache and temp settings only."""
    return {name: os.environ[name] for name in _PASSED_VARS if name in os.environ}


@functools.cache
def uv_version() -> str:
    """``uv --version`` of :func:`uv_bin`, e.g. ``uv 0.13.9 (x86_64-unknown-linux-gnu)``."""
    proc = subprocess.run(
        [uv_bin(), "--version"],
        env=build_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return proc.stdout.strip()


def build_wheels(examples_root: Path, out_dir: Path) -> list[Path]:
    """Build every project of *examples_root* into *out_dir*; return the wheels, sorted.

    Projects build in parallel, each from a copy, so no ``build/`` or ``*.egg-info`` lands in
    the examples and stale build output cannot leak into a wheel. Raises RuntimeError naming
    the project, with uv's stderr, when a build fails or does not make exactly one wheel.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    projects = example_projects(examples_root)
    with tempfile.TemporaryDirectory(prefix="wheelhouse-src-") as scratch:
        jobs = []
        for index, project in enumerate(projects):
            source = Path(scratch) / "src" / project.relative_to(examples_root)
            shutil.copytree(project, source, ignore=_ignore_build_output)
            jobs.append((project, source, Path(scratch) / "out" / str(index)))
        workers = max(1, min(len(jobs), os.cpu_count() or 1, 8))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            built = list(pool.map(lambda job: _build_one(*job), jobs))
        wheels = []
        for wheel in built:
            if (out_dir / wheel.name).exists():
                raise RuntimeError(f"two example projects build {wheel.name}")
            wheels.append(Path(shutil.move(wheel, out_dir / wheel.name)))
    return sorted(wheels)


def _ignore_build_output(directory: str, names: list[str]) -> set[str]:
    return {n for n in names if _skipped(n) or n.endswith(".pyc")}


def _build_one(project: Path, source: Path, out_dir: Path) -> Path:
    """Build *source* (a copy of *project*) into the empty *out_dir*; return the one wheel."""
    cmd = [
        uv_bin(),
        "build",
        "--no-config",
        "--wheel",
        "--no-create-gitignore",
        "--python",
        sys.executable,
        "--out-dir",
        str(out_dir),
        str(source),
    ]
    try:
        proc = subprocess.run(
            cmd,
            env=build_env(),
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            timeout=_BUILD_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"building {project} timed out after {_BUILD_TIMEOUT:.0f} s") from exc
    made = sorted(out_dir.glob("*.whl"))
    if proc.returncode != 0 or len(made) != 1:
        raise RuntimeError(
            f"building {project} failed (uv exit {proc.returncode}, wheels made: "
            f"{[p.name for p in made]}; a cold build fetches setuptools from PyPI)\n"
            f"command: {' '.join(cmd)}\nuv stderr:\n{proc.stderr[-4000:]}"
        )
    return made[0]


def example_wheelhouse(examples_root: Path = EXAMPLES_DIR, cache_root: Path | None = None) -> Path:
    """The directory of wheels built from *examples_root*, built on first use and cached.

    ``<cache_root>/wheelhouse-<key>/`` (default root: :func:`oracle.cache_dir`). A wheelhouse
    exists only complete: it is built in a sibling temporary directory under a file lock and
    renamed into place. Raises RuntimeError when a build fails.
    """
    cache = oracle.cache_dir() if cache_root is None else cache_root
    target = cache / f"wheelhouse-{wheelhouse_key(examples_root, uv_version())[:16]}"
    if target.is_dir():
        return target
    with oracle._locked(cache / f"{target.name}.lock"):
        if target.is_dir():  # another process built it while we waited
            return target
        for leftover in cache.glob(f".{target.name}.tmp-*"):  # from a killed build
            shutil.rmtree(leftover, ignore_errors=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=cache))
        try:
            build_wheels(examples_root, staging)
            staging.chmod(0o755)  # mkdtemp makes it 0700; the cache may be shared
            staging.rename(target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return target


# -- looking wheels up -----------------------------------------------------------------------


def wheel_for(wheelhouse: Path, distribution: str, version: str | None = None) -> Path:
    """The wheel of *distribution* (any spelling, PEP 503) and *version* in *wheelhouse*.

    Matches on wheel filenames. Raises LookupError when there is no such wheel, or when
    *version* is None and there are several versions.
    """
    wanted = canonicalize_name(distribution)
    available: list[str] = []
    matches: list[Path] = []
    for wheel in sorted(wheelhouse.glob("*.whl")):
        try:
            name, wheel_version, _, _ = parse_wheel_filename(wheel.name)
        except InvalidWheelFilename:
            continue
        available.append(f"{name} {wheel_version}")
        if name == wanted and (version is None or wheel_version == Version(version)):
            matches.append(wheel)
    if len(matches) == 1:
        return matches[0]
    wanted_text = f"{distribution!r}" + (f" version {version}" if version else "")
    if not matches:
        raise LookupError(f"no wheel for {wanted_text} in {wheelhouse}; it holds: {available}")
    raise LookupError(
        f"several wheels for {wanted_text} in {wheelhouse}: {[m.name for m in matches]}; "
        "pass a version"
    )
