"""The worker runtime in a store: the worker's code and msgpack per Python ABI, kept there.

A worker never runs the host's installed ``hostbridge`` (its ``__init__`` pulls in the host
API, and the host's site-packages must stay out of reach): the stdlib-only tree
``hostbridge/worker`` is copied into ``STORE/runtime/worker-<hash>/ohp_worker``. msgpack,
the one thing it needs beyond the stdlib, goes into ``STORE/runtime/msgpack-<abi>-<version>``:
copied from the host when the ABI is the host's, else installed with ``uv pip install --target``
for that interpreter (a compiled wheel: the pure-Python fallback is ten times slower).
Both are made in a temporary directory and renamed into place, so concurrent hosts agree.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import msgpack  # type: ignore[import-untyped]

from hostbridge._errors import WorkerStartError
from isolator.sandbox import confine
from isolator.store import CommandError, find_uv, run_command, scrubbed_env

if TYPE_CHECKING:
    from collections.abc import Callable

WORKER_SOURCE = Path(__file__).parent.parent / "worker"
CONFINE_SOURCE = Path(confine.__file__).parent
"""The in-process sandbox layers (Landlock, seccomp), copied next to the worker's modules."""
WORKER_PACKAGE = "ohp_worker"
MSGPACK_VERSION = ".".join(map(str, msgpack.version))


@dataclass(frozen=True)
class Runtime:
    """Where a worker's code and its msgpack are, for one interpreter ABI."""

    worker_dir: Path
    """The directory to put on ``sys.path`` (it holds the ``ohp_worker`` package)."""
    msgpack_dir: Path


def ensure_runtime(store_root: Path, abi_tag: str, python: Path) -> Runtime:
    """The runtime for plugins whose interpreter has *abi_tag*, created on first use."""
    runtime = store_root / "runtime"
    worker_dir = runtime / f"worker-{_tree_hash(WORKER_SOURCE, CONFINE_SOURCE)}"
    if not (worker_dir / WORKER_PACKAGE).is_dir():
        _make(worker_dir, lambda tmp: _copy_worker(tmp / WORKER_PACKAGE))
    msgpack_dir = runtime / f"msgpack-{abi_tag}-{MSGPACK_VERSION}"
    if not (msgpack_dir / "msgpack").is_dir():
        _make(msgpack_dir, lambda tmp: _install_msgpack(tmp, abi_tag, python))
    compiled = worker_dir / f".compiled-{abi_tag}"
    if not compiled.exists():
        # Workers run with -B (they never write bytecode): compile the runtime once per ABI,
        # or every worker start compiles it from source (about 30 ms).
        _compile(worker_dir / WORKER_PACKAGE, python)
        compiled.touch()
    if not (msgpack_dir / ".compiled").exists():
        # msgpack's modules too (copied or installed without bytecode): about 5 ms a start.
        _compile(msgpack_dir / "msgpack", python)
        (msgpack_dir / ".compiled").touch()
    return Runtime(worker_dir=worker_dir, msgpack_dir=msgpack_dir)


def _compile(directory: Path, python: Path) -> None:
    cmd = [str(python), "-I", "-S", "-m", "compileall", "-q", str(directory)]
    try:
        run_command(cmd, env=scrubbed_env(), timeout=120)
    except CommandError as exc:
        raise WorkerStartError(str(directory), f"cannot be compiled: {exc.summary}") from None


def host_abi_tag() -> str:
    impl = sys.implementation.name
    if impl == "cpython":
        tag = f"cp{sys.version_info[0]}{sys.version_info[1]}"
        import sysconfig  # noqa: PLC0415

        return tag + ("t" if sysconfig.get_config_var("Py_GIL_DISABLED") else "")
    return (sys.implementation.cache_tag or impl).replace("-", "_")


def _tree_hash(*roots: Path) -> str:
    digest = hashlib.sha256()
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            digest.update(path.relative_to(root).as_posix().encode() + b"\0")
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _copy_worker(target: Path) -> None:
    shutil.copytree(WORKER_SOURCE, target, ignore=shutil.ignore_patterns("__pycache__"))
    for module in ("landlock.py", "seccomp.py", "sandbox.py"):
        shutil.copyfile(CONFINE_SOURCE / module, target / module)


def _install_msgpack(target: Path, abi_tag: str, python: Path) -> None:
    if abi_tag == host_abi_tag():
        source = Path(msgpack.__file__).parent
        shutil.copytree(source, target / "msgpack", ignore=shutil.ignore_patterns("__pycache__"))
        return
    cmd = [find_uv(), "pip", "install", "--no-config", "--no-python-downloads", "--quiet",
           "--python", str(python), "--target", str(target), "--only-binary", ":all:",
           "--no-deps", f"msgpack=={MSGPACK_VERSION}"]
    try:
        run_command(cmd, env=scrubbed_env(), timeout=300)
    except CommandError as exc:
        raise WorkerStartError(f"msgpack {MSGPACK_VERSION} for {abi_tag}",
                               f"cannot be installed: {exc.summary}") from None


def _make(final: Path, build: Callable[[Path], None]) -> None:
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".tmp-{final.name}-{secrets.token_hex(4)}"
    tmp.mkdir()
    try:
        build(tmp)
        try:
            os.rename(tmp, final)
        except OSError:
            if not final.is_dir():  # another host made it first: keep theirs
                raise
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(tmp)
