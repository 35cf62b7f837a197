"""Bytecode for plugin venvs, compiled once per distinct source file and shared by hardlinks.

uv hardlinks a dependency's ``.py`` files from its cache into every venv that installs it, but
``compileall`` writes a fresh ``.pyc`` into each venv: with the venv's path inside and the
source's mtime in its header, no two are alike. Here a ``.pyc`` is compiled with
``unchecked-hash`` invalidation (its header holds the source's hash, not its mtime: the venv
never changes once built) and with the file's path *relative to site-packages* as its
recorded name (the import system rewrites ``co_filename`` to the real path on load). Its bytes
then depend only on the source, the relative path and the interpreter, so one copy in the
store's pool, ``bytecode/<cache_tag>/<key>.pyc``, is hardlinked into every venv that has
the same file. An install compiles only what the pool lacks; a second plugin sharing its
dependencies compiles nothing.

The compiler runs as ``python -I -S``: no ``site``, so no ``.pth`` file of a dependency runs
at install time.

An install does not wait for the venv to compile: :meth:`BytecodePool.precompile` starts, in a
thread, on the fetched wheels themselves (their sha256 checked), while the backend makes the
venv and installs them. Each ``.py`` a wheel puts into site-packages is keyed as it will be
there (its bytes, its path relative to site-packages); :meth:`BytecodePool.compile_site` then
finds those in the pool and links them, and compiles only what the installed files hold besides
(a file the wheel maps elsewhere, or whatever differs: the key is of the installed bytes).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from isolator._errors import CommandError, StoreError
from isolator.store._commands import run_command, scrubbed_env

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from isolator.store._interpreters import Interpreter

_MAX_PRECOMPILED_SOURCE = 8 << 20
"""A wheel member larger than this is left to :meth:`BytecodePool.compile_site`."""

_COMPILER = r"""
import json, py_compile, sys
jobs = json.load(open(sys.argv[1], encoding="utf-8"))
mode = py_compile.PycInvalidationMode.UNCHECKED_HASH
done = []
for source, name, target in jobs:
    try:
        # quiet=2 returns None instead of raising for a file that does not compile.
        if py_compile.compile(source, cfile=target, dfile=name, doraise=True,
                              invalidation_mode=mode, quiet=2) is not None:
            done.append(target)
    except (py_compile.PyCompileError, OSError, ValueError, SyntaxError):
        pass  # as compileall: a file that does not compile is left to fail at import
json.dump(done, sys.stdout)
"""


@dataclass(frozen=True)
class CompileReport:
    linked: int
    """``.pyc`` files taken from the pool."""
    compiled: int
    """Files compiled now (and added to the pool)."""


class BytecodePool:
    """Content-addressed ``.pyc`` files under *root*, hardlinked into venvs."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def precompile(
        self,
        wheels: Sequence[Path],
        interpreter: Interpreter,
        workdir: Path,
        *,
        timeout: float | None = None,
    ) -> Callable[[], set[Path]]:
        """Start compiling into the pool, in a thread, the ``.py`` files *wheels* install into
        site-packages that the pool lacks; return the function that waits for it and gives
        the pool files it added. Its failure is no error: :meth:`compile_site` compiles
        whatever is still missing, and reports a compiler that fails."""
        added: set[Path] = set()

        def work() -> None:
            with contextlib.suppress(Exception):  # compile_site does it, and says why not
                added.update(self._precompile(wheels, interpreter, workdir, timeout))

        thread = threading.Thread(target=work, name="isolator-precompile", daemon=True)
        thread.start()

        def wait() -> set[Path]:
            thread.join()
            return added

        return wait

    def _precompile(self, wheels: Sequence[Path], interpreter: Interpreter, workdir: Path,
                    timeout: float | None) -> set[Path]:
        tag = interpreter.cache_tag
        if not tag:
            return set()
        pool = self.root / tag
        sources = workdir / "wheel-sources"
        sources.mkdir()
        missing: list[tuple[Path, str, Path, Path]] = []
        keys: set[str] = set()
        for wheel in wheels:
            with zipfile.ZipFile(wheel) as archive:
                for info in archive.infolist():
                    rel = _site_path(info.filename)
                    if rel is None or info.file_size > _MAX_PRECOMPILED_SOURCE:
                        continue
                    data = archive.read(info)
                    digest = hashlib.sha256(f"{tag}\0{rel}\0".encode())
                    digest.update(data)
                    key = digest.hexdigest()
                    pooled = pool / key[:2] / f"{key}.pyc"
                    if key in keys or pooled.exists():
                        continue
                    keys.add(key)
                    # The member's bytes under a name of ours: nothing a wheel names is written.
                    source = sources / f"{len(missing)}.py"
                    source.write_bytes(data)
                    missing.append((source, rel, pooled, sources / f"{len(missing)}.pyc"))
        if missing:
            compiler_dir = workdir / "wheel-bytecode"
            compiler_dir.mkdir()
            self._compile(missing, interpreter, pool, compiler_dir, timeout)
        return {pooled for _, _, pooled, _ in missing if pooled.exists()}

    def compile_site(
        self,
        site: Path,
        interpreter: Interpreter,
        workdir: Path,
        *,
        timeout: float | None = None,
        precompiled: set[Path] | frozenset[Path] = frozenset(),
    ) -> CompileReport:
        """Give every ``.py`` under *site* its ``__pycache__`` entry, from the pool or compiled.
        *precompiled*: pool files :meth:`precompile` added for this install (counted as
        compiled, not shared)."""
        tag = interpreter.cache_tag
        if not tag:
            raise StoreError(str(interpreter.path), "the interpreter has no bytecode cache tag")
        pool = self.root / tag
        missing: list[tuple[Path, str, Path, Path]] = []
        linked = fresh = 0
        for source, rel in _sources(site):
            key = _key(source, rel, tag)
            pooled = pool / key[:2] / f"{key}.pyc"
            target = source.parent / "__pycache__" / f"{source.stem}.{tag}.pyc"
            if pooled.exists():
                _link(pooled, target)
                linked += 1
                fresh += pooled in precompiled
            else:
                missing.append((source, rel, pooled, target))
        if missing:
            self._compile(missing, interpreter, pool, workdir, timeout)
        return CompileReport(linked=linked - fresh, compiled=len(missing) + fresh)

    def _compile(
        self,
        missing: list[tuple[Path, str, Path, Path]],
        interpreter: Interpreter,
        pool: Path,
        workdir: Path,
        timeout: float | None,
    ) -> None:
        staging = workdir / "bytecode"
        staging.mkdir(exist_ok=True)
        jobs = [(str(source), rel, str(staging / f"{index}.pyc"))
                for index, (source, rel, _, _) in enumerate(missing)]
        job_file = workdir / "bytecode-jobs.json"
        job_file.write_text(json.dumps(jobs), encoding="utf-8")
        cmd = [str(interpreter.path), "-I", "-S", "-c", _COMPILER, str(job_file)]
        try:
            result = run_command(cmd, env=scrubbed_env(), timeout=timeout)
            done = set(json.loads(result.stdout or "[]"))
        except (CommandError, ValueError) as exc:
            raise StoreError("bytecode", f"compiling failed: {exc}") from None
        for (_, _, pooled, target), (_, _, staged) in zip(missing, jobs, strict=True):
            if staged not in done:
                continue
            pooled.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(staged, 0o444)
            # Two installs may compile the same file at once: the bytes are equal, either wins.
            os.replace(staged, pooled)
            _link(pooled, target)

    def remove_unused(self) -> tuple[int, int]:
        """Delete pooled files no venv links to any more; return (files, bytes)."""
        removed = freed = 0
        for dirpath, _dirs, files in os.walk(self.root):
            for name in files:
                path = os.path.join(dirpath, name)
                with contextlib.suppress(OSError):
                    info = os.lstat(path)
                    if info.st_nlink <= 1:
                        os.unlink(path)
                        removed += 1
                        freed += info.st_size
        return removed, freed


def _sources(site: Path) -> list[tuple[Path, str]]:
    found: list[tuple[Path, str]] = []
    base = len(str(site)) + 1
    for dirpath, dirnames, files in os.walk(site):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(dirpath, name)
                found.append((Path(path), path[base:]))
    return found


def _site_path(member: str) -> str | None:
    """Where an installer puts wheel member *member* relative to site-packages, for a ``.py``
    file (a venv's purelib and platlib are its site-packages); None for anything else."""
    parts = member.split("/")
    if not member.endswith(".py") or member.startswith("/") or "\\" in member or \
            any(part in ("", ".", "..", "__pycache__") for part in parts):
        return None
    if parts[0].endswith(".data"):
        if len(parts) < 3 or parts[1] not in ("purelib", "platlib"):
            return None
        parts = parts[2:]
    return os.sep.join(parts)


def _key(source: Path, rel: str, tag: str) -> str:
    digest = hashlib.sha256(f"{tag}\0{rel}\0".encode())
    with open(source, "rb") as handle:
        digest.update(handle.read())
    return digest.hexdigest()


def _link(pooled: Path, target: Path) -> None:
    target.parent.mkdir(exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        target.unlink()
    os.link(pooled, target)
