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
   ``execve``s uv (``isolator.sandbox.confine.sandbox.exec_main``).

With ``allow_build``, a resolution that may build an sdist to learn its metadata runs under
the same launcher (:func:`run_confined`): with the network, but a cache of its own and copies
of the local files it reads, writing only its own directory.

The difference to a plain ``uv build``: build requirements come only from the project's static
``[build-system] requires`` (a backend's ``get_requires_for_build_*`` hook is not consulted, so a
requirement only that hook names is missing: declare it statically), and they must be wheels.
Layers this machine lacks are left out and reported through *progress*; where none works at
all (not Linux) the build runs as a plain subprocess, as before, and says so.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from isolator._errors import CommandError, SandboxError
from isolator.sandbox import confine as _confine
from isolator.sandbox._launcher import (
    HIDDEN,
    MOUNT_PROC,
    SYSTEM_READ,
    SYSTEM_WRITE,
    UNPRIVILEGED_GID,
    UNPRIVILEGED_UID,
    UNSHARE,
    die_with_parent_prefix,
    drop_privileges,
    launcher_info,
    setpriv_switch,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from isolator.store._commands import CommandResult

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

_EXEC_BOOT = ("import sys; sys.path.insert(0, sys.argv[1]); "
              "from ohp_confine.sandbox import exec_main; exec_main(sys.argv[2], sys.argv[3:])")
_DEFAULT_REQUIRES = ("setuptools>=40.8.0",)
"""PEP 517's fallback for a project without ``[build-system]``."""
_LIMITS = ("--nofile=1024", "--nproc=512", f"--fsize={4 << 30}")
_NETWORK_ENV = ("SSL_CERT_FILE", "SSL_CERT_DIR", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY",
                "http_proxy", "https_proxy", "no_proxy", "ALL_PROXY", "all_proxy")
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
    work = Path(tempfile.mkdtemp(prefix="ohp-build-"))
    try:
        work.chmod(0o755)
        src, out = work / "src", work / "out"
        if project.is_file():  # an sdist: uv unpacks it in the scratch directory
            src.mkdir()
            shutil.copyfile(project, src / project.name)
            target_path = src / project.name
        else:
            shutil.copytree(project, src, symlinks=True, ignore=_SKIP)
            target_path = src
        out.mkdir()
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
        confined = confine(cmd, python=build_python, work=work, write=[src, out], env=env,
                           cwd=src, what=f"the build of {project}")
        _say(progress, f"build sandbox: {confined.describe()}")
        try:
            result = run(confined.cmd, env=confined.env, cwd=src, progress=progress,
                         timeout=timeout)
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
        _take_back(wheels[0], target, _MAX_WHEEL, f"the build of {project}")
        return target
    finally:
        shutil.rmtree(work, ignore_errors=True)


@dataclass
class Confined:
    """A command of build code made ready to run under the launcher (:func:`confine`)."""

    cmd: list[str]
    env: dict[str, str]
    layers: dict[str, bool]

    def describe(self) -> str:
        return ", ".join(f"{name}{'' if ok else ' (missing)'}"
                         for name, ok in self.layers.items())


def confine(cmd: Sequence[str], *, python: Path, work: Path, read: Sequence[Path] = (),
            write: Sequence[Path] = (), network: bool = False, env: dict[str, str],
            cwd: Path, what: str) -> Confined:
    """*cmd* (uv running build code) under the sandbox launcher, from *work* (a fresh 0755
    directory this function fills with the in-process layers): run by *python* (which applies
    Landlock and the seccomp filter, then ``execve``s *cmd*), as uid 65534 when the host is
    root, in a user, PID and (unless *network*) network namespace, with rlimits. It reads only
    *work*, *read*, *python*'s prefixes, the program and the system's libraries, and writes
    only *write* (which the unprivileged uid is given) and ``work/tmp`` (its ``HOME`` and
    ``TMPDIR``). With *network* (uv must reach an index) the environment keeps the
    certificate and proxy variables of *env*."""
    info = launcher_info()
    scratch = work / "tmp"
    scratch.mkdir(exist_ok=True)
    layers: dict[str, bool] = {}
    launch_env = {"PATH": f"{python.parent}:/usr/bin:/bin", "HOME": str(scratch),
                  "TMPDIR": str(scratch), "LANG": env.get("LANG", "C.UTF-8")}
    for key in ("SOURCE_DATE_EPOCH", "LC_ALL", "LC_CTYPE", *(_NETWORK_ENV if network else ())):
        if key in env:
            launch_env[key] = env[key]
    if not sys.platform.startswith("linux"):
        layers["sandbox"] = False
        return Confined(list(cmd), launch_env, layers)
    confine_dir = work / "confine"
    shutil.copytree(Path(_confine.__file__).parent, confine_dir / "ohp_confine",
                    ignore=shutil.ignore_patterns("__pycache__"))
    real_python = Path(os.path.realpath(python))
    prefixes = {real_python.parent.parent, Path(os.path.realpath(python.parent.parent))}
    program = Path(os.path.realpath(shutil.which(cmd[0]) or cmd[0]))
    writable = [scratch, *write]
    readable = sorted({str(work), *map(str, prefixes), str(program), *map(str, read),
                       *SYSTEM_READ})
    config: dict[str, Any] = {}
    if info["landlock"]:
        config["landlock"] = {"read": readable, "hidden": list(HIDDEN), "scope": True,
                              "write": [*map(str, writable), *SYSTEM_WRITE]}
    if info["seccomp"]:
        config["seccomp"] = "any" if network else "none"
    layers.update(landlock=bool(info["landlock"]), seccomp=bool(info["seccomp"]))
    prefix: list[str] = list(die_with_parent_prefix())
    if info["host_is_root"]:
        needed = [(work, False), *((p, True) for p in sorted(prefixes)),
                  (program.parent, True), *((p, True) for p in read if p.is_dir()),
                  *((p, False) for p in write)]
        uses = [real_python, program, confine_dir, *writable]
        drop = drop_privileges(needed, uses, cwd, info, what)
        # run() takes no user: setpriv switches where Popen(user=) would.
        prefix += setpriv_switch() if drop.user else drop.prefix
        for path in writable:
            for current, dirs, files in os.walk(path):
                for name in [current, *(os.path.join(current, n) for n in (*dirs, *files))]:
                    os.lchown(name, UNPRIVILEGED_UID, UNPRIVILEGED_GID)
        layers["unprivileged_uid"] = True
    if info["pid_namespace"]:
        prefix += [str(info["unshare"]), *UNSHARE]
        if info["host_proc_hidden"]:
            prefix.append(MOUNT_PROC)
        if info["net_namespace"] and not network:
            prefix.append("--net")
    layers.update(pid_namespace=bool(info["pid_namespace"]),
                  net_namespace=bool(info["pid_namespace"] and info["net_namespace"]
                                     and not network))
    if network:
        layers["net_namespace"] = False  # lifted: it must reach the index
    prlimit = shutil.which("prlimit")
    if prlimit is not None:
        prefix += [prlimit, *_LIMITS, "--"]
    layers["rlimits"] = prlimit is not None
    prefix += [str(python), "-I", "-S", "-B", "-c", _EXEC_BOOT, str(confine_dir),
               json.dumps(config)]
    return Confined([*prefix, *cmd], launch_env, layers)


_MAX_OUTPUT = 64 << 20
_MAX_WHEEL = 2 << 30  # as the wheelhouse's cap on one file


def _take_back(produced: Path, target: Path, limit: int, what: str) -> None:
    """Copy a file the confined process made to *target*, as a regular file of at most
    *limit* bytes: the process wrote its directory, so a symlink there (to a host file, to
    ``/dev/zero``), a FIFO or a device is refused, not followed or read without end."""
    try:
        fd = os.open(produced, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise SandboxError(what, f"{produced.name} is not a regular file it made "
                           f"({exc.strerror}): refused") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SandboxError(what, f"{produced.name} is not a regular file: refused")
        if info.st_size > limit:
            raise SandboxError(what, f"{produced.name} is over {limit >> 20} MiB: refused")
        copied = 0
        with open(target, "wb") as out:
            while chunk := os.read(fd, 1 << 20):
                copied += len(chunk)
                if copied > limit:  # it grew after the check
                    raise SandboxError(what, f"{produced.name} is over {limit >> 20} MiB: "
                                       "refused")
                out.write(chunk)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    finally:
        os.close(fd)


def run_confined(
    make_cmd: Callable[[Path, list[str], str | None], list[str]],
    *,
    python: Path,
    inputs: Mapping[str, Path],
    outputs: Sequence[str],
    dest: Path,
    find_links: Sequence[str | os.PathLike[str]] = (),
    index_url: str | None = None,
    read: Sequence[Path] = (),
    network: bool,
    env: dict[str, str],
    run: Callable[..., CommandResult],
    what: str,
    progress: Callable[[str], None] | None = None,
    timeout: float | None = None,
) -> None:
    """Run the command ``make_cmd(io, find_links, index_url)`` (uv or pip, about to run build
    code: a resolution that may build an sdist's metadata) under :func:`confine`, in a fresh
    directory ``io`` holding copies of *inputs* (name -> file); then copy its *outputs* (names
    in ``io``, at most 64 MiB each) to *dest*. Local *find_links* directories and a ``file:``
    *index_url* are copied in too (the unprivileged uid may not be able to read the
    originals) and given to ``make_cmd`` as their copies. With *network* the process may reach
    the index; it writes only ``io`` and its scratch directory (a cache of its own, never the
    store's)."""
    work = Path(tempfile.mkdtemp(prefix="ohp-confined-"))
    try:
        work.chmod(0o755)
        io = work / "io"
        io.mkdir()
        staged: list[tuple[str, str]] = []  # (original, copy)
        for name, source in inputs.items():
            text = _stage_files(work, source.read_text(encoding="utf-8"), staged)
            (io / name).write_text(text, encoding="utf-8")
        links, index = _stage_sources(work, find_links, index_url, staged)
        cmd = make_cmd(io, links, index)
        confined = confine(cmd, python=python, work=work, read=read, write=[io],
                           network=network, env=env, cwd=io, what=what)
        _say(progress, f"sandbox: {confined.describe()}")
        run(confined.cmd, env=confined.env, cwd=io, progress=progress, timeout=timeout)
        for name in outputs:
            produced = io / name
            if not produced.exists() and not produced.is_symlink():
                continue
            taken = work / f"taken-{name}"
            _take_back(produced, taken, _MAX_OUTPUT, what)
            try:
                text = taken.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                raise SandboxError(what, f"{name} is not UTF-8 text: refused") from None
            # What it says of the copies, it says of the originals.
            for original, copy in sorted(staged, key=lambda pair: -len(pair[1])):
                text = text.replace(Path(copy).as_uri(), Path(original).as_uri())
                text = text.replace(copy, original)
            (dest / name).write_text(text, encoding="utf-8")
    finally:
        shutil.rmtree(work, ignore_errors=True)


_FILE_URL = re.compile(r"file://[^\s'\"<>#]+")


def _stage_files(work: Path, text: str, staged: list[tuple[str, str]]) -> str:
    """*text* (requirements) with each ``file:`` URL of a local file replaced by a copy's in
    *work* (the unprivileged uid may not read the original where it is)."""
    from urllib.parse import unquote, urlsplit  # noqa: PLC0415

    def copy(path: str) -> Path:
        target = work / "files" / str(len(staged)) / os.path.basename(path)
        target.parent.mkdir(parents=True)
        shutil.copyfile(path, target)
        staged.append((path, str(target)))
        return target

    def one(match: re.Match[str]) -> str:
        path = unquote(urlsplit(match.group(0)).path)
        return copy(path).as_uri() if os.path.isfile(path) else match.group(0)

    lines = []
    for line in text.splitlines():
        bare = line.strip()
        if os.path.isabs(bare) and os.path.isfile(bare):  # a requirement that is a file
            lines.append(str(copy(bare)))
        else:
            lines.append(_FILE_URL.sub(one, line))
    return "".join(f"{line}\n" for line in lines)


def _stage_sources(work: Path, find_links: Sequence[str | os.PathLike[str]],
                   index_url: str | None,
                   staged: list[tuple[str, str]]) -> tuple[list[str], str | None]:
    """Copies of the local *find_links* directories (their files: uv and pip read no deeper)
    and of a ``file:`` *index_url* tree in *work*, readable by the unprivileged uid; remote
    ones as they are."""
    from urllib.parse import unquote, urlsplit  # noqa: PLC0415

    def local(link: str) -> str | None:
        path = unquote(urlsplit(link).path) if link.startswith("file:") else link
        return path if "://" not in path and os.path.isdir(path) else None

    links = []
    for number, link in enumerate(str(os.fspath(item)) for item in find_links):
        path = local(link)
        if path is None:
            links.append(link)
            continue
        target = work / "links" / str(number)
        target.mkdir(parents=True)
        for entry in os.scandir(path):
            if entry.is_file(follow_symlinks=False):
                shutil.copyfile(entry.path, target / entry.name)
        staged.append((os.path.realpath(path), str(target)))
        links.append(str(target))
    index = index_url
    if index_url is not None and (path := local(index_url)) is not None:
        target = work / "index"
        shutil.copytree(path, target, symlinks=False)
        staged.append((os.path.realpath(path), str(target)))
        index = target.as_uri()
    return links, index


def _say(progress: Callable[[str], None] | None, message: str) -> None:
    if progress is not None:
        progress(message)
