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
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from isolator._errors import CommandError, StoreError
from isolator.store._commands import run_command, scrubbed_env

if TYPE_CHECKING:
    from isolator.store._interpreters import Interpreter

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

    def compile_site(
        self,
        site: Path,
        interpreter: Interpreter,
        workdir: Path,
        *,
        timeout: float | None = None,
    ) -> CompileReport:
        """Give every ``.py`` under *site* its ``__pycache__`` entry, from the pool or compiled."""
        tag = interpreter.cache_tag
        if not tag:
            raise StoreError(str(interpreter.path), "the interpreter has no bytecode cache tag")
        pool = self.root / tag
        missing: list[tuple[Path, str, Path, Path]] = []
        linked = 0
        for source, rel in _sources(site):
            key = _key(source, rel, tag)
            pooled = pool / key[:2] / f"{key}.pyc"
            target = source.parent / "__pycache__" / f"{source.stem}.{tag}.pyc"
            if pooled.exists():
                _link(pooled, target)
                linked += 1
            else:
                missing.append((source, rel, pooled, target))
        if missing:
            self._compile(missing, interpreter, pool, workdir, timeout)
        return CompileReport(linked=linked, compiled=len(missing))

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
