"""Find Python interpreters for plugin venvs, by path: every candidate is run once to be believed.

pyenv shims for versions that are not global fail when run, and a name on ``PATH`` says little
about what it starts, so a candidate counts only after ``python -I -S -c`` reports its version,
implementation and ABI. Candidates are ``pythonX.Y`` names in every ``PATH`` directory and
``$(pyenv root)/versions/*/bin/pythonX.Y``; the host's own interpreter comes first.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from isolator._errors import CommandError, InterpreterNotFoundError

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

# Run with -I -S: no user site, no PYTHON* variables, no site-packages: only what the binary is.
_PROBE = r"""
import json, os, sys, sysconfig
impl = sys.implementation.name
v = sys.version_info
if impl == "cpython":
    abi = "cp%d%d" % (v[0], v[1]) + ("t" if sysconfig.get_config_var("Py_GIL_DISABLED") else "")
else:
    abi = (sys.implementation.cache_tag or impl).replace("-", "_")
# Under -S site.py does not read pyvenv.cfg, so sys.prefix cannot tell a venv: look for the file.
venv = os.path.isfile(os.path.join(os.path.dirname(os.path.dirname(sys.executable)), "pyvenv.cfg"))
print(json.dumps({"executable": sys.executable, "version": list(v[:3]), "implementation": impl,
                  "abi": abi, "venv": venv, "cache_tag": sys.implementation.cache_tag}))
"""

_VERSION_SPEC_RE = re.compile(r"^(?:python|py|cpython)?(\d+)(?:\.(\d+))?(?:\.(\d+))?\Z")
_NAME_RE = re.compile(r"^python3\.\d+t?\Z")
_PROBE_TIMEOUT = 15.0


@dataclass(frozen=True)
class Interpreter:
    """A Python interpreter that was run and answered."""

    path: Path
    """Absolute path of the executable, as the interpreter reports itself (shims bypassed)."""
    version: tuple[int, int, int]
    implementation: str
    """``sys.implementation.name``: ``cpython``, ``pypy``, ..."""
    abi_tag: str
    """``cp312``, ``cp313t``, ...: what a runtime directory per ABI is keyed by."""
    is_venv: bool = False
    """True when the interpreter is itself inside a virtual environment."""
    cache_tag: str | None = None
    """``sys.implementation.cache_tag`` (``cpython-312``): names its bytecode files."""

    @property
    def version_str(self) -> str:
        """``3.12.1``."""
        return ".".join(map(str, self.version))

    @property
    def minor(self) -> str:
        """``3.12``."""
        return f"{self.version[0]}.{self.version[1]}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data (for metadata and ``ohp doctor --json``)."""
        return {
            "path": str(self.path),
            "version": self.version_str,
            "implementation": self.implementation,
            "abi_tag": self.abi_tag,
            "is_venv": self.is_venv,
        }


def probe_interpreter(executable: str | os.PathLike[str]) -> Interpreter:
    """Run *executable* once and describe it; raises :class:`CommandError` if it does not answer.

    Answers are remembered per process, keyed by the file's identity (real path, size, mtime),
    so a store that installs many plugins probes each interpreter once.
    """
    path = os.fspath(executable)
    try:
        real = os.path.realpath(path)
        info = os.stat(real)
        key: tuple[str, str, int, int] | None = (path, real, info.st_size, info.st_mtime_ns)
    except OSError:
        key = None
    if key is not None and key in _probe_cache:
        return _probe_cache[key]
    interpreter = _probe(path)
    if key is not None:
        _probe_cache[key] = interpreter
    return interpreter


_probe_cache: dict[tuple[str, str, int, int], Interpreter] = {}


def _probe(executable: str) -> Interpreter:
    cmd = [executable, "-I", "-S", "-c", _PROBE]
    try:
        # A neutral environment: PYTHONHOME or a venv's variables must not change the answer.
        result = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=_PROBE_TIMEOUT,
            env=_probe_env(),
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise CommandError(cmd, None, "", "", summary=f"no answer in {exc.timeout:g} s") from None
    except OSError as exc:
        raise CommandError(cmd, None, "", "", summary=exc.strerror or str(exc)) from None
    if result.returncode != 0:
        raise CommandError(cmd, result.returncode, result.stdout, result.stderr)
    try:
        data = json.loads(result.stdout.strip().splitlines()[-1])
        version = tuple(int(part) for part in data["version"])
        reported = Path(data["executable"])
    except (ValueError, KeyError, IndexError, TypeError):
        raise CommandError(
            cmd, result.returncode, result.stdout, result.stderr, summary="unreadable answer"
        ) from None
    if not reported.is_absolute() or not reported.exists():
        # Embedded or odd builds may leave sys.executable empty: fall back to what we ran.
        reported = Path(executable).absolute()
    return Interpreter(
        path=_stable_path(reported),
        version=(version[0], version[1], version[2]),
        implementation=str(data["implementation"]),
        abi_tag=str(data["abi"]),
        is_venv=bool(data["venv"]),
        cache_tag=data.get("cache_tag") or None,
    )


def find_python(spec: str | os.PathLike[str] | None = None) -> Interpreter:
    """The interpreter for *spec*: ``None`` (the host's), a version (``3.12``, ``3.12.1``, ``3``),
    a path, or a command name found on ``PATH`` (``python3.12``).

    Raises :class:`InterpreterNotFoundError` naming the spec and what was found instead.
    """
    if spec is None:
        return _host_interpreter()
    text = os.fspath(spec).strip()
    if not text:
        raise InterpreterNotFoundError(text, "empty interpreter spec")
    match = _VERSION_SPEC_RE.match(text)
    if match and os.sep not in text:
        wanted = tuple(int(group) for group in match.groups() if group is not None)
        found: list[Interpreter] = []
        for interpreter in _iter_candidates():
            if interpreter.implementation == "cpython" and interpreter.version[: len(wanted)] \
                    == wanted:
                return interpreter
            found.append(interpreter)
        seen = tuple(f"{i.version_str} at {i.path}" for i in found)
        raise InterpreterNotFoundError(
            text, "no CPython of that version on PATH or under pyenv", seen
        )
    if os.sep in text or text.startswith((".", "~")) or (os.altsep and os.altsep in text):
        path = Path(text).expanduser()
        if not path.exists():
            raise InterpreterNotFoundError(text, "no such file")
        if path.is_dir():
            # A venv or an installation prefix: take its bin/python.
            for candidate in (path / "bin" / "python3", path / "bin" / "python",
                              path / "Scripts" / "python.exe"):
                if candidate.exists():
                    path = candidate
                    break
            else:
                raise InterpreterNotFoundError(text, "a directory without bin/python")
        return _probe_for(text, path.absolute())
    located = shutil.which(text)
    if located is None:
        raise InterpreterNotFoundError(text, "not a version, not a path, and not on PATH")
    return _probe_for(text, Path(located))


def base_interpreter(interpreter: Interpreter) -> Interpreter:
    """The interpreter a venv's *interpreter* was made from (``home`` in ``pyvenv.cfg``).

    A plugin venv must not depend on the host's venv, which may be deleted or rebuilt: the store
    builds from the base. Returns *interpreter* itself when it is no venv or no base is found.
    """
    if not interpreter.is_venv:
        return interpreter
    cfg = interpreter.path.parent.parent / "pyvenv.cfg"
    try:
        lines = cfg.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return interpreter
    home = next((line.split("=", 1)[1].strip() for line in lines
                 if line.split("=", 1)[0].strip() == "home" and "=" in line), None)
    if not home:
        return interpreter
    major, minor = interpreter.version[0], interpreter.version[1]
    for name in (f"python{major}.{minor}", f"python{major}", "python"):
        candidate = Path(home) / name
        if not candidate.exists():
            continue
        try:
            base = probe_interpreter(candidate)
        except CommandError:
            continue
        if base.version == interpreter.version and not base.is_venv:
            return base
    return interpreter


def list_interpreters() -> list[Interpreter]:
    """Every working interpreter found (host first, then newest version first), deduplicated."""
    found = list(_iter_candidates())
    host, rest = found[:1], found[1:]
    rest.sort(key=lambda i: (i.version, str(i.path)), reverse=True)
    return host + rest


def candidate_paths() -> list[Path]:
    """Executables that may be interpreters: ``python3.N`` on ``PATH``, then pyenv versions."""
    seen: set[Path] = set()
    out: list[Path] = []
    for directory in _search_dirs():
        try:
            with os.scandir(directory) as entries:
                names = sorted(entry.name for entry in entries)
        except OSError:
            continue
        for name in names:
            if not _NAME_RE.match(name):
                continue
            path = Path(directory) / name
            if path in seen or not os.access(path, os.X_OK) or path.is_dir():
                continue
            seen.add(path)
            out.append(path)
    return out


# ---- internals -------------------------------------------------------------------------------


def _host_interpreter() -> Interpreter:
    if not sys.executable:
        raise InterpreterNotFoundError("<host>", "sys.executable is empty (embedded Python?)")
    return _probe_for("<host>", Path(sys.executable))


def _probe_for(spec: str, path: Path) -> Interpreter:
    try:
        return probe_interpreter(path)
    except CommandError as exc:
        raise InterpreterNotFoundError(spec, f"{path} does not run: {exc.summary}") from None


def _iter_candidates() -> Iterator[Interpreter]:
    """Working interpreters: host first, then the candidates, each real executable once."""
    seen: set[str] = set()
    paths: Iterable[Path] = [Path(sys.executable)] if sys.executable else []
    for path in [*paths, *candidate_paths()]:
        try:
            key = os.path.realpath(path)
        except OSError:
            continue
        if key in seen:
            continue
        seen.add(key)
        try:
            interpreter = probe_interpreter(path)
        except CommandError:
            continue  # a failing pyenv shim, a broken install: not an interpreter
        real = os.path.realpath(interpreter.path)
        if real != key and real in seen:
            continue
        seen.add(real)
        yield interpreter


def _search_dirs() -> list[str]:
    dirs = [d for d in os.environ.get("PATH", "").split(os.pathsep) if d]
    root = _pyenv_root()
    if root is not None:
        # pyenv's shims (its own and its plugins') only ever start one of root/versions/*,
        # which are scanned directly; probing a shim costs a bash + pyenv run, and fails for
        # every version that is not global.
        prefix = os.path.join(os.path.realpath(root), "")
        dirs = [
            d for d in dirs
            if not (Path(d).name == "shims" and os.path.realpath(d).startswith(prefix))
        ]
        versions = root / "versions"
        try:
            with os.scandir(versions) as found:
                entries = sorted(entry.name for entry in found)
        except OSError:
            entries = []
        dirs += [str(versions / entry / "bin") for entry in entries]
    return dirs


def _pyenv_root() -> Path | None:
    env_root = os.environ.get("PYENV_ROOT")
    if env_root:
        return Path(env_root)
    pyenv = shutil.which("pyenv")
    if pyenv is None:
        return None
    try:
        result = subprocess.run(
            [pyenv, "root"], capture_output=True, text=True, timeout=_PROBE_TIMEOUT,
            stdin=subprocess.DEVNULL, check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = result.stdout.strip()
    return Path(text) if result.returncode == 0 and text else None


def _stable_path(path: Path) -> Path:
    """Follow ``python3`` -> ``python3.12`` links within one directory, but no further.

    A versioned name in the same directory survives a change of the default ``python3``, while
    resolving all the way would turn a venv's interpreter into its base interpreter.
    """
    current = path.absolute()
    for _ in range(8):  # a bounded walk: link loops exist
        try:
            if not current.is_symlink():
                break
            target = Path(os.path.normpath(current.parent / current.readlink()))
        except OSError:
            break
        if target.parent != current.parent or not target.name.startswith(("python", "pypy")):
            break
        current = target
    return current


def _probe_env() -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "SYSTEMROOT", "TMPDIR", "TEMP", "TMP")
    return {key: os.environ[key] for key in keep if key in os.environ}
