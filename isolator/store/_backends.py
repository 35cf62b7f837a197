"""Installer backends: create a venv, install into it. uv by default; virtualenv + pip as fallback.

Both run their tools through :func:`isolator.store._commands.run_command`, which gives every
child a scrubbed environment (the machine's pip.conf, ``PIP_*``, ``UV_*``, ``VIRTUAL_ENV``,
``PYTHONPATH`` must not steer an install; certificates and proxies must still reach it), its own
process group (killed whole when the caller is interrupted), and captured output for the error.
"""

from __future__ import annotations

import abc
import os
import re
import shutil
import sys
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from uv import find_uv_bin

from isolator._errors import BackendUnavailableError, CommandError
from isolator.store._buildbox import run_confined, sandboxed_build
from isolator.store._commands import CommandResult, run_command, scrubbed_env
from isolator.store._interpreters import Interpreter
from isolator.store._resolve import Pin, parse_pip_report, parse_pylock

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

MIN_UV_VERSION = (0, 8, 0)
"""The oldest uv we run: ``--no-config``, ``--no-python-downloads``, ``uv build`` and
``uv pip compile --format pylock.toml`` (added in 0.6.15) are all there."""

UV_BUILD_NO_BUILD = (0, 13, 0)
"""The first uv whose ``uv build --no-build`` builds the project and refuses only sdist deps."""

def _python_path(interpreter: Interpreter | str | os.PathLike[str]) -> str:
    path = interpreter.path if isinstance(interpreter, Interpreter) else Path(interpreter)
    # Tools must get absolute paths: a relative one would be looked up (uv) or meant elsewhere.
    return str(path.absolute())


def venv_python(venv: Path) -> Path:
    """The interpreter of a venv (``bin/python``; ``Scripts/python.exe`` on Windows)."""
    if sys.platform == "win32":  # pragma: no cover
        return venv / "Scripts" / "python.exe"
    return venv / "bin" / "python"


def _is_local_project(requirement: str) -> bool:
    return Path(requirement).is_dir()


class Backend(abc.ABC):
    """Creates plugin venvs and installs into them; one implementation per installer."""

    name: ClassVar[str]
    """Short name recorded in the store's metadata: ``uv``, ``virtualenv``."""

    @abc.abstractmethod
    def version(self) -> str:
        """The installer's version (``0.4.20``), after checking it can be used at all."""

    @abc.abstractmethod
    def create_venv(
        self,
        path: Path,
        interpreter: Interpreter | str | os.PathLike[str],
        *,
        progress: Callable[[str], None] | None = None,
        timeout: float | None = None,
    ) -> None:
        """Create a venv at *path* (which should not exist yet) for *interpreter*."""

    @abc.abstractmethod
    def install(
        self,
        venv: Path,
        requirements: Sequence[str],
        *,
        index_url: str | None = None,
        find_links: Sequence[str | os.PathLike[str]] = (),
        no_index: bool = False,
        require_hashes: bool = False,
        allow_build: bool = False,
        constraints: Sequence[Path] = (),
        requirement_files: Sequence[Path] = (),
        compile_bytecode: bool = True,
        refresh: bool | None = None,
        progress: Callable[[str], None] | None = None,
        timeout: float | None = None,
    ) -> None:
        """Install *requirements* (PEP 508 strings, wheel/sdist paths, project directories).

        *refresh* (default: as *require_hashes*) makes the installer read every file again
        instead of trusting what its cache knows; a caller that has just verified the files
        itself passes ``False``.

        With ``allow_build=False`` only wheels are installed from indexes and find-links; a
        local project directory among *requirements* is still built (it is the user's code).
        """

    def build_wheel(
        self,
        project_dir: Path,
        out_dir: Path,
        interpreter: Interpreter | str | os.PathLike[str],
        *,
        index_url: str | None = None,
        find_links: Sequence[str | os.PathLike[str]] = (),
        no_index: bool = False,
        allow_build: bool = False,
        progress: Callable[[str], None] | None = None,
        timeout: float | None = None,
        via_sdist: bool = False,
        build_isolation: bool = True,
    ) -> Path:
        """Build a local project into a wheel in *out_dir*; return the wheel's path.

        *allow_build* governs the project's build dependencies only. *via_sdist* builds the
        wheel from an sdist of the project, as publishing does (a backend that cannot builds
        it from the directory). Without *build_isolation* the build backend runs in
        *interpreter*'s own environment, which must hold the project's build requirements:
        nothing is installed for the build, so it needs no index at all.

        The project's build code never runs on the host (:mod:`isolator.store._buildbox`): this
        backend makes a build venv and installs the static build requirements into it
        (wheels only, whatever *allow_build* says: building one would run its build code
        here); then ``uv build --no-build-isolation --offline`` (uv is a dependency of
        isolator) runs the backend under the sandbox launcher, an sdist first with
        *via_sdist*.
        """
        del allow_build  # the project's build dependencies are wheels, always

        def create_env(path: Path) -> None:
            self.create_venv(path, interpreter, progress=progress, timeout=timeout)

        def install_requires(venv: Path, requires: list[str]) -> None:
            self.install(venv, requires, index_url=index_url, find_links=find_links,
                         no_index=no_index, allow_build=False, compile_bytecode=False,
                         progress=progress, timeout=timeout)

        return sandboxed_build(
            self.build_frontend(), ["--no-config", "--no-python-downloads", "--color", "never"],
            project_dir.absolute(), out_dir, _python_path(interpreter), via_sdist=via_sdist,
            build_isolation=build_isolation, env=self._env(),
            install_requires=install_requires, create_env=create_env, run=run_command,
            progress=progress, timeout=timeout)

    def build_frontend(self) -> str:
        """The uv that runs a project's build backend in the build sandbox."""
        return find_uv()

    def _env(self) -> dict[str, str]:
        """The environment of this backend's tools."""
        return scrubbed_env()


    @abc.abstractmethod
    def resolve(
        self,
        requirements: Sequence[str],
        interpreter: Interpreter | str | os.PathLike[str],
        workdir: Path,
        *,
        index_url: str | None = None,
        find_links: Sequence[str | os.PathLike[str]] = (),
        no_index: bool = False,
        allow_build: bool = False,
        progress: Callable[[str], None] | None = None,
        timeout: float | None = None,
    ) -> list[Pin]:
        """Pin *requirements* and everything they need, for *interpreter*, without installing.

        Each :class:`Pin` names exact versions and the artifacts (with sha256) that may provide
        them. With ``allow_build=False`` a distribution with no wheel fails the resolution.
        *workdir* is an empty directory the backend may use.
        """

    @staticmethod
    def venv_python(venv: Path) -> Path:
        """The interpreter of *venv*."""
        return venv_python(venv)

    def _prebuild_local(
        self,
        venv: Path,
        requirements: Sequence[str],
        tmp: Path,
        *,
        index_url: str | None,
        find_links: Sequence[str | os.PathLike[str]],
        no_index: bool,
        progress: Callable[[str], None] | None,
        timeout: float | None,
    ) -> list[str]:
        """Replace local project directories by wheels built from them (when builds are off)."""
        out: list[str] = []
        for requirement in requirements:
            if _is_local_project(requirement):
                wheel = self.build_wheel(
                    Path(requirement), tmp, venv_python(venv), index_url=index_url,
                    find_links=find_links, no_index=no_index, allow_build=False,
                    progress=progress, timeout=timeout,
                )
                out.append(str(wheel))
            else:
                out.append(requirement)
        return out


def _index_args(
    index_url: str | None, find_links: Sequence[str | os.PathLike[str]], no_index: bool
) -> list[str]:
    args: list[str] = []
    if index_url is not None:
        args += ["--index-url", index_url]
    for link in find_links:
        args += ["--find-links", os.fspath(link)]
    if no_index:
        args.append("--no-index")
    return args


def _file_args(constraints: Sequence[Path], requirement_files: Sequence[Path]) -> list[str]:
    args: list[str] = []
    for path in constraints:
        args += ["--constraint", os.fspath(path)]
    for path in requirement_files:
        args += ["--requirement", os.fspath(path)]
    return args


def _single_new_wheel(directory: Path, cmd: list[str], result: CommandResult) -> Path:
    wheels = sorted(directory.glob("*.whl"))
    if len(wheels) != 1:
        raise CommandError(
            cmd, result.returncode, result.stdout, result.stderr,
            summary=f"expected one wheel in {directory}, found {len(wheels)}",
        )
    return wheels[0]


_UV_VERSIONS: dict[tuple[str, int, int, int, int], str] = {}
"""Checked uv versions by binary (path, device, inode, size, mtime): a process asks each once."""


class UvBackend(Backend):
    """uv: ``uv venv`` and ``uv pip install``, config files ignored, no Python downloads.

    uv hardlinks installed files from its cache (its default link mode, kept: it is what makes
    a venv per plugin cheap). *cache_dir* lets a store keep its own cache (hardlinks need the
    cache and the venvs on one filesystem).
    """

    name: ClassVar[str] = "uv"

    def __init__(
        self,
        uv: str | os.PathLike[str] | None = None,
        *,
        cache_dir: Path | None = None,
        link_mode: str | None = None,
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        self._uv = os.fspath(uv) if uv is not None else None
        self.cache_dir = cache_dir
        self.link_mode = link_mode
        self.extra_env = dict(extra_env or {})
        self._version: str | None = None

    @property
    def uv(self) -> str:
        """Absolute path of the uv binary (from the ``uv`` package, else ``PATH``)."""
        if self._uv is None:
            self._uv = find_uv()
        return self._uv

    def version(self) -> str:
        """uv's version, checked against :data:`MIN_UV_VERSION` once per uv binary in this
        process (a new store, or backend, on the same unchanged file asks it no more)."""
        if self._version is None:
            uv = self.uv
            try:
                info = os.stat(uv)
                ident: tuple[str, int, int, int, int] | None = (
                    uv, info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
            except OSError:
                ident = None
            known = _UV_VERSIONS.get(ident) if ident is not None else None
            if known is None:
                try:
                    result = run_command([uv, "--version"], env=self._env(), timeout=30)
                except CommandError as exc:
                    raise BackendUnavailableError(self.name, f"`uv --version` failed: {exc}") \
                        from None
                known = check_uv_version(result.stdout)
                if ident is not None:
                    _UV_VERSIONS[ident] = known
            self._version = known
        return self._version

    def _env(self) -> dict[str, str]:
        return scrubbed_env(self.extra_env)

    def build_frontend(self) -> str:
        return self.uv

    def _common(self) -> list[str]:
        args = ["--no-config", "--no-python-downloads", "--color", "never"]
        if self.cache_dir is not None:
            args += ["--cache-dir", os.fspath(self.cache_dir)]
        return args

    def create_venv(
        self,
        path: Path,
        interpreter: Interpreter | str | os.PathLike[str],
        *,
        progress: Callable[[str], None] | None = None,
        timeout: float | None = None,
    ) -> None:
        """``uv venv --python /abs/python PATH`` (no project discovery, no seed packages)."""
        self.version()
        cmd = [self.uv, "venv", *self._common(), "--no-project", "--python",
               _python_path(interpreter), str(path.absolute())]
        run_command(cmd, env=self._env(), progress=progress, timeout=timeout)

    def install(
        self,
        venv: Path,
        requirements: Sequence[str],
        *,
        index_url: str | None = None,
        find_links: Sequence[str | os.PathLike[str]] = (),
        no_index: bool = False,
        require_hashes: bool = False,
        allow_build: bool = False,
        constraints: Sequence[Path] = (),
        requirement_files: Sequence[Path] = (),
        compile_bytecode: bool = True,
        refresh: bool | None = None,
        progress: Callable[[str], None] | None = None,
        timeout: float | None = None,
    ) -> None:
        """``uv pip install --python VENV/bin/python ...``; see :meth:`Backend.install`."""
        self.version()
        if not requirements and not requirement_files:
            return
        with tempfile.TemporaryDirectory(prefix="isolator-build-") as tmp:
            if not allow_build:
                # uv's --no-build refuses local directories too: build those first, alone.
                requirements = self._prebuild_local(
                    venv, requirements, Path(tmp), index_url=index_url, find_links=find_links,
                    no_index=no_index, progress=progress, timeout=timeout,
                )
            cmd = [self.uv, "pip", "install", *self._common(),
                   "--python", str(venv_python(venv).absolute())]
            if compile_bytecode:
                cmd.append("--compile-bytecode")
            if self.link_mode is not None:
                cmd += ["--link-mode", self.link_mode]
            if not allow_build:
                cmd.append("--no-build")
            if require_hashes:
                cmd.append("--require-hashes")
            if require_hashes if refresh is None else refresh:
                # uv serves a wheel whose hash it has cached without reading the file again, so
                # a tampered wheelhouse would go unnoticed (checked with uv 0.13): --refresh
                # makes it hash the files that are there now.
                cmd.append("--refresh")
            cmd += _index_args(index_url, find_links, no_index)
            cmd += _file_args(constraints, requirement_files)
            cmd += ["--", *requirements] if requirements else []
            run_command(cmd, env=self._env(), progress=progress, timeout=timeout)

    def resolve(
        self,
        requirements: Sequence[str],
        interpreter: Interpreter | str | os.PathLike[str],
        workdir: Path,
        *,
        index_url: str | None = None,
        find_links: Sequence[str | os.PathLike[str]] = (),
        no_index: bool = False,
        allow_build: bool = False,
        progress: Callable[[str], None] | None = None,
        timeout: float | None = None,
    ) -> list[Pin]:
        """``uv pip compile --format pylock.toml``: the wheels that fit, each with its sha256."""
        self.version()
        infile = workdir / "requirements.in"
        outfile = workdir / "pylock.toml"
        infile.write_text("".join(f"{line}\n" for line in requirements), encoding="utf-8")
        if allow_build:
            # uv may build an sdist to learn its metadata: build code, run confined (its own
            # cache, not the store's; the network only to reach the index).
            def make(io: Path, links: list[str], index: str | None) -> list[str]:
                return [self.uv, "pip", "compile", "--no-config", "--no-python-downloads",
                        "--color", "never", "--cache-dir", str(io.parent / "tmp" / "uv-cache"),
                        "--format", "pylock.toml", "--python", _python_path(interpreter),
                        "--no-header", "--no-annotate", "--output-file",
                        str(io / outfile.name), *_index_args(index, links, no_index),
                        str(io / infile.name)]

            run_confined(make, python=Path(_python_path(interpreter)),
                         inputs={infile.name: infile}, outputs=[outfile.name], dest=workdir,
                         find_links=find_links, index_url=index_url, network=not no_index,
                         env=self._env(), run=run_command, what="the resolution",
                         progress=progress, timeout=timeout)
        else:
            cmd = [self.uv, "pip", "compile", *self._common(), "--format", "pylock.toml",
                   "--python", _python_path(interpreter), "--no-header", "--no-annotate",
                   "--output-file", os.fspath(outfile), "--no-build"]
            cmd += _index_args(index_url, find_links, no_index)
            cmd.append(os.fspath(infile))
            run_command(cmd, env=self._env(), cwd=workdir, progress=progress, timeout=timeout)
        return parse_pylock(outfile.read_text(encoding="utf-8"), " ".join(requirements))

class VirtualenvPipBackend(Backend):
    """The fallback: the ``virtualenv`` package creates the venv, the venv's own pip installs.

    Every pip configuration source is cut: ``PIP_CONFIG_FILE=/dev/null`` (pip then skips all
    its config files, this machine's pip.conf with its constraints and extra indexes included),
    no ``PIP_*`` variables, and ``--isolated``.
    """

    name: ClassVar[str] = "virtualenv"

    def __init__(
        self,
        python: str | os.PathLike[str] | None = None,
        *,
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        # virtualenv runs from the host's environment, where isolator's dependencies live.
        self.python = os.fspath(python) if python is not None else sys.executable
        self.extra_env = dict(extra_env or {})
        self._version: str | None = None

    def _env(self) -> dict[str, str]:
        return scrubbed_env({
            "PIP_CONFIG_FILE": os.devnull,
            "VIRTUALENV_CONFIG_FILE": os.devnull,
            **self.extra_env,
        })

    def version(self) -> str:
        """virtualenv's version (the seeded pip is the one virtualenv embeds)."""
        if self._version is None:
            cmd = [self.python, "-I", "-m", "virtualenv", "--version"]
            try:
                result = run_command(cmd, env=self._env(), timeout=60)
            except CommandError as exc:
                raise BackendUnavailableError(self.name, f"virtualenv does not run: {exc}") \
                    from None
            match = re.search(r"virtualenv\s+(\S+)", result.stdout)
            if match is None:
                raise BackendUnavailableError(self.name, f"odd --version: {result.stdout!r}")
            self._version = match.group(1)
        return self._version

    def create_venv(
        self,
        path: Path,
        interpreter: Interpreter | str | os.PathLike[str],
        *,
        progress: Callable[[str], None] | None = None,
        timeout: float | None = None,
    ) -> None:
        """``python -m virtualenv --no-download -p /abs/python PATH``, seeding pip only."""
        self.version()
        cmd = [self.python, "-I", "-m", "virtualenv", "--no-download", "--no-periodic-update",
               "--no-setuptools", "--quiet", "-p", _python_path(interpreter),
               str(path.absolute())]
        run_command(cmd, env=self._env(), progress=progress, timeout=timeout)

    def _pip(self, venv: Path, *args: str) -> list[str]:
        return [str(venv_python(venv).absolute()), "-I", "-m", "pip", *args, "--isolated",
                "--disable-pip-version-check", "--no-input"]

    def install(
        self,
        venv: Path,
        requirements: Sequence[str],
        *,
        index_url: str | None = None,
        find_links: Sequence[str | os.PathLike[str]] = (),
        no_index: bool = False,
        require_hashes: bool = False,
        allow_build: bool = False,
        constraints: Sequence[Path] = (),
        requirement_files: Sequence[Path] = (),
        compile_bytecode: bool = True,
        refresh: bool | None = None,
        progress: Callable[[str], None] | None = None,
        timeout: float | None = None,
    ) -> None:
        """``VENV/bin/python -m pip install --isolated ...``; see :meth:`Backend.install`."""
        if not requirements and not requirement_files:
            return
        # pip's --only-binary does not stop it from building a local directory (checked), so
        # local projects need no separate build step here.
        cmd = self._pip(venv, "install", "--no-warn-script-location")
        if not compile_bytecode:
            cmd.append("--no-compile")
        if not allow_build:
            cmd += ["--only-binary", ":all:"]
        if require_hashes:
            cmd.append("--require-hashes")
        cmd += _index_args(index_url, find_links, no_index)
        cmd += _file_args(constraints, requirement_files)
        cmd += ["--", *requirements] if requirements else []
        run_command(cmd, env=self._env(), progress=progress, timeout=timeout)

    def resolve(
        self,
        requirements: Sequence[str],
        interpreter: Interpreter | str | os.PathLike[str],
        workdir: Path,
        *,
        index_url: str | None = None,
        find_links: Sequence[str | os.PathLike[str]] = (),
        no_index: bool = False,
        allow_build: bool = False,
        progress: Callable[[str], None] | None = None,
        timeout: float | None = None,
    ) -> list[Pin]:
        """``pip install --dry-run --report`` from a scratch venv of *interpreter*.

        pip chooses the one artifact per distribution itself (by the interpreter's tags).
        """
        scratch = workdir / "resolver-venv"
        self.create_venv(scratch, interpreter, progress=progress, timeout=timeout)
        report = workdir / "report.json"
        if allow_build:
            # pip may build an sdist to learn its metadata: build code, run confined.
            def make(io: Path, links: list[str], index: str | None) -> list[str]:
                return [*self._pip(scratch, "install", "--dry-run", "--ignore-installed",
                                   "--quiet", "--report", str(io / report.name)),
                        *_index_args(index, links, no_index), "--", *requirements]

            run_confined(make, python=venv_python(scratch).absolute(), inputs={},
                         outputs=[report.name], dest=workdir, find_links=find_links,
                         index_url=index_url, read=[scratch], network=not no_index,
                         env=self._env(), run=run_command, what="the resolution",
                         progress=progress, timeout=timeout)
        else:
            cmd = self._pip(scratch, "install", "--dry-run", "--ignore-installed", "--quiet",
                            "--report", os.fspath(report), "--only-binary", ":all:")
            cmd += _index_args(index_url, find_links, no_index)
            cmd += ["--", *requirements]
            run_command(cmd, env=self._env(), cwd=workdir, progress=progress, timeout=timeout)
        return parse_pip_report(report.read_text(encoding="utf-8"), " ".join(requirements))

BACKENDS: dict[str, type[Backend]] = {"uv": UvBackend, "virtualenv": VirtualenvPipBackend}
"""Backends by name; ``uv`` is the default."""


def get_backend(name: str = "uv") -> Backend:
    """A backend by name (``uv`` or ``virtualenv``) with default settings."""
    try:
        backend_class = BACKENDS[name]
    except KeyError:
        raise BackendUnavailableError(name, f"unknown backend; choose from {sorted(BACKENDS)}") \
            from None
    return backend_class()


_FIND_UV_LOCK = threading.Lock()


def find_uv() -> str:
    """The uv binary shipped by the ``uv`` package, else ``uv`` on ``PATH``."""
    found: str | None
    # find_uv_bin reads sysconfig, whose first use is not thread-safe (a concurrent first
    # call can see a half-built config: "can only concatenate str (not NoneType)").
    with _FIND_UV_LOCK:
        try:
            found = find_uv_bin()
        except FileNotFoundError:
            found = shutil.which("uv")
    if found is None:
        raise BackendUnavailableError("uv", "no uv binary (install the 'uv' package)")
    return str(Path(found).absolute())


def parse_uv_version(output: str) -> tuple[int, ...]:
    """``uv 0.4.20 (abc 2024-10-01)`` -> ``(0, 4, 20)``."""
    match = re.match(r"\s*uv\s+(\d+(?:\.\d+)*)", output)
    if match is None:
        raise ValueError(f"not a uv version line: {output.strip()[:80]!r}")
    return tuple(int(part) for part in match.group(1).split("."))


def check_uv_version(output: str, minimum: tuple[int, ...] = MIN_UV_VERSION) -> str:
    """Return the version in *output* (``uv --version``) if at least *minimum*, else raise."""
    try:
        found = parse_uv_version(output)
    except ValueError as exc:
        raise BackendUnavailableError("uv", str(exc)) from None
    text = ".".join(map(str, found))
    if found < minimum:
        wanted = ".".join(map(str, minimum))
        raise BackendUnavailableError("uv", f"uv {text} is older than the required {wanted}")
    return text
