"""Build code of a project, run under the sandbox launcher.

A local project (``ohp install ./dir``, ``ohp validate``, ``ohp package``) or an sdist the
operator allowed to build has a build backend and maybe a ``setup.py``: code its author wrote,
as hostile as a plugin's tools. It never runs on the host as it is. A build is two steps:

1. **On the host, no project code:** a fresh build environment (``uv venv``) gets the project's
   static build requirements (``[build-system] requires`` of ``pyproject.toml``, read as data;
   setuptools when there is none) as **wheels only**, from the index the caller gave. Nothing
   of the project is imported or run.
2. **In the sandbox:** ``uv build --no-build-isolation --offline`` runs the backend in that
   environment, from a copy of the project, as the launcher runs a plugin process: an
   unprivileged uid when the host is root (a private mount namespace covers what that uid may
   not enter), a user, PID and network namespace (no network at all: the requirements are
   already there), its own ``/proc``, rlimits, then Landlock (read: the build directory, the
   interpreter, uv and the system's libraries; write: the project copy, the output directory
   and a scratch directory only) and the seccomp filter, applied by the interpreter before it
   ``execve``s uv (``isolator._confine.sandbox.exec_main``).

The difference to a plain ``uv build``: build requirements come only from the project's static
``[build-system] requires`` (a backend's ``get_requires_for_build_*`` hook is not consulted, so a
requirement only that hook names is missing: declare it statically), and they must be wheels.
Layers this machine lacks are left out and reported through *progress*; where none works at
all (not Linux) the build runs as a plain subprocess, as before, and says so.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import _confine
from ._errors import CommandError, SandboxError
from ._launcher import (
    HIDDEN,
    MOUNT_PROC,
    SYSTEM_READ,
    SYSTEM_WRITE,
    UNPRIVILEGED_GID,
    UNPRIVILEGED_UID,
    UNSHARE,
    _die_with_parent_prefix,
    drop_privileges,
    launcher_info,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from ._backends import CommandResult

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

_EXEC_BOOT = ("import sys; sys.path.insert(0, sys.argv[1]); "
              "from ohp_confine.sandbox import exec_main; exec_main(sys.argv[2], sys.argv[3:])")
_DEFAULT_REQUIRES = ("setuptools>=40.8.0",)
"""PEP 517's fallback for a project without ``[build-system]``."""
_LIMITS = ("--nofile=1024", "--nproc=512", f"--fsize={4 << 30}")
_SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", ".venv", "node_modules")


def static_build_requires(project: Path) -> list[str]:
    """``[build-system] requires`` of *project*'s ``pyproject.toml`` (a directory, or an sdist
    archive), read as data (PEP 517's setuptools fallback when there is none). Raises
    :class:`SandboxError` for a malformed one."""
    path = project / "pyproject.toml"
    try:
        if project.is_file():
            text = _sdist_pyproject(project)
            if text is None:
                return list(_DEFAULT_REQUIRES)
            data = tomllib.loads(text.decode("utf-8"))
        else:
            with open(path, "rb") as handle:
                data = tomllib.load(handle)
    except FileNotFoundError:
        return list(_DEFAULT_REQUIRES)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SandboxError(str(path), f"cannot be read: {exc}") from None
    system = data.get("build-system")
    if system is None:
        return list(_DEFAULT_REQUIRES)
    requires = system.get("requires") if isinstance(system, dict) else None
    if not isinstance(requires, list) or not all(isinstance(r, str) for r in requires):
        raise SandboxError(str(path), "[build-system] requires must be a list of strings")
    return list(requires)


def _sdist_pyproject(sdist: Path) -> bytes | None:
    """The top-level ``pyproject.toml`` of an sdist (``.tar.gz`` or ``.zip``), at most 1 MiB,
    read from the archive as data; None when it has none."""
    limit = 1 << 20
    if sdist.name.endswith(".zip"):
        with zipfile.ZipFile(sdist) as archive:
            names = [n for n in archive.namelist()
                     if n.count("/") == 1 and n.endswith("/pyproject.toml")]
            if not names or archive.getinfo(names[0]).file_size > limit:
                return None
            return archive.read(names[0])
    with tarfile.open(sdist, "r:*") as archive:
        for member in archive:
            if member.name.count("/") == 1 and member.name.endswith("/pyproject.toml") \
                    and member.isfile() and member.size <= limit:
                handle = archive.extractfile(member)
                return handle.read(limit) if handle is not None else None
    return None


def sandboxed_build(
    uv: str,
    uv_args: Sequence[str],
    project: Path,
    out_dir: Path,
    python: str,
    *,
    via_sdist: bool,
    build_isolation: bool,
    env: dict[str, str],
    install_requires: Callable[[Path, list[str]], None],
    create_env: Callable[[Path], None],
    run: Callable[..., CommandResult],
    progress: Callable[[str], None] | None = None,
    timeout: float | None = None,
) -> Path:
    """Build *project*'s wheel into *out_dir* (through an sdist with *via_sdist*) with its
    build code confined; returns the wheel. *create_env* makes a venv at a path, and
    *install_requires* installs requirements (wheels only) into it: the backend's own
    operations, run on the host before any project code. Without *build_isolation* the
    backend runs in *python*'s own environment (its packages must already be there)."""
    info = launcher_info()
    work = Path(tempfile.mkdtemp(prefix="ohp-build-"))
    try:
        work.chmod(0o755)
        src, out, scratch, confine = (work / "src", work / "out", work / "tmp",
                                      work / "confine")
        if project.is_file():  # an sdist: uv unpacks it in the scratch directory
            src.mkdir()
            shutil.copyfile(project, src / project.name)
            target_path = src / project.name
        else:
            shutil.copytree(project, src, symlinks=True, ignore=_SKIP)
            target_path = src
        out.mkdir()
        scratch.mkdir()
        shutil.copytree(Path(_confine.__file__).parent, confine / "ohp_confine",
                        ignore=shutil.ignore_patterns("__pycache__"))
        if build_isolation:
            requires = static_build_requires(target_path)
            build_env = work / "env"
            create_env(build_env)
            if requires:
                _say(progress, f"build requirements (wheels only): {', '.join(requires)}")
                try:
                    install_requires(build_env, requires)
                except CommandError as exc:
                    raise CommandError(exc.cmd, exc.returncode, exc.stdout, exc.stderr,
                                       summary=f"the build requirements of {project} "
                                       f"({', '.join(requires)}) cannot be installed as "
                                       f"wheels: {exc.summary}") from None
            build_python = build_env / "bin" / "python"
        else:
            build_python = Path(python)
        cmd = [uv, "build", *(() if via_sdist else ("--wheel",)), *uv_args,
               "--no-build-isolation", "--offline", "--no-cache",
               "--python", str(build_python.absolute()), "--out-dir", str(out),
               str(target_path)]
        prefix, launch_env, layers = _launcher(info, work, build_python=build_python, uv=uv,
                                               env=env)
        _say(progress, "build sandbox: " + ", ".join(
            f"{name}{'' if ok else ' (missing)'}" for name, ok in layers.items()))
        full = [*prefix, *cmd] if prefix else cmd
        try:
            result = run(full, env=launch_env, cwd=src, progress=progress, timeout=timeout)
        except CommandError as exc:
            raise CommandError(cmd, exc.returncode, exc.stdout, exc.stderr,
                               summary=f"the build of {project} failed in its sandbox: "
                               f"{exc.summary}") from None
        wheels = sorted(out.glob("*.whl"))
        if len(wheels) != 1:
            raise CommandError(cmd, result.returncode, result.stdout, result.stderr,
                               summary=f"expected one wheel from {project}, found "
                               f"{len(wheels)}")
        out_dir.mkdir(parents=True, exist_ok=True)
        target = out_dir / wheels[0].name
        shutil.copyfile(wheels[0], target)
        return target
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _launcher(info: dict[str, Any], work: Path, *, build_python: Path, uv: str,
              env: dict[str, str]) -> tuple[list[str], dict[str, str], dict[str, bool]]:
    """The launcher command before uv, its environment, and which layers apply."""
    src, out, scratch, confine = (work / "src", work / "out", work / "tmp", work / "confine")
    linux = sys.platform.startswith("linux")
    layers: dict[str, bool] = {}
    if not linux:
        layers["sandbox"] = False
        return [], env, layers
    real_python = Path(os.path.realpath(build_python))
    prefixes = {real_python.parent.parent}
    if build_python.parent.parent != work / "env":  # a venv of the caller's (no isolation)
        prefixes.add(Path(os.path.realpath(build_python.parent.parent)))
    uv_real = Path(os.path.realpath(uv))
    read = sorted({str(work), *map(str, prefixes), str(uv_real), *SYSTEM_READ})
    write = [str(src), str(out), str(scratch), *SYSTEM_WRITE]
    config: dict[str, Any] = {}
    if info["landlock"]:
        config["landlock"] = {"read": read, "write": write, "hidden": list(HIDDEN),
                              "scope": True}
    if info["seccomp"]:
        config["seccomp"] = "none"
    layers.update(landlock=bool(info["landlock"]), seccomp=bool(info["seccomp"]))
    prefix: list[str] = list(_die_with_parent_prefix())
    if info["host_is_root"]:
        needed = [(work, False), *((p, True) for p in sorted(prefixes)), (uv_real.parent, True)]
        uses = [real_python, uv_real, src, out, scratch, confine]
        drop = drop_privileges(needed, uses, src, info, f"the build in {work}")
        if drop.user:  # Popen cannot switch here (run() takes no user): setpriv does
            setpriv = shutil.which("setpriv", path="/usr/bin:/bin") or "setpriv"
            prefix += [setpriv, f"--reuid={UNPRIVILEGED_UID}", f"--regid={UNPRIVILEGED_GID}",
                       "--clear-groups", "--pdeathsig", "KILL", "--"]
        else:
            prefix += drop.prefix
        for path in (src, out, scratch):
            for current, dirs, files in os.walk(path):
                for name in [current, *(os.path.join(current, n) for n in (*dirs, *files))]:
                    os.lchown(name, UNPRIVILEGED_UID, UNPRIVILEGED_GID)
        layers["unprivileged_uid"] = True
    if info["pid_namespace"]:
        prefix += [str(info["unshare"]), *UNSHARE]
        if info["host_proc_hidden"]:
            prefix.append(MOUNT_PROC)
        if info["net_namespace"]:
            prefix.append("--net")
    layers.update(pid_namespace=bool(info["pid_namespace"]),
                  net_namespace=bool(info["pid_namespace"] and info["net_namespace"]))
    prlimit = shutil.which("prlimit")
    if prlimit is not None:
        prefix += [prlimit, *_LIMITS, "--"]
    layers["rlimits"] = prlimit is not None
    prefix += [str(build_python), "-I", "-S", "-B", "-c", _EXEC_BOOT, str(confine),
               json.dumps(config)]
    launch_env = {"PATH": f"{build_python.parent}:/usr/bin:/bin", "HOME": str(scratch),
                  "TMPDIR": str(scratch), "LANG": env.get("LANG", "C.UTF-8")}
    for key in ("SOURCE_DATE_EPOCH", "LC_ALL", "LC_CTYPE"):
        if key in env:
            launch_env[key] = env[key]
    return prefix, launch_env, layers


def _say(progress: Callable[[str], None] | None, message: str) -> None:
    if progress is not None:
        progress(message)
