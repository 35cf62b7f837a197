"""The reference loader ("oracle"): openhands-sdk 1.58.0 in its own venv, built and cached.

The oracle lives in ``../shared`` (``oracle/setup.sh`` builds its venv, ``oracle/oh_dump.py`` dumps
plugin directories as the SDK loads them) next to the plugin corpus (``corpus/INDEX.tsv``). Tests
and benchmarks find that directory through one setting, the environment variable
``ISOLATOR_SHARED`` (default: ``shared`` beside the repository root).

Everything slow is cached under :func:`cache_dir` and shared by every pytest-xdist worker and
every run: the venv is keyed by a hash of ``setup.sh``, the corpus dump by a hash of the oracle
scripts, the corpus content and the oracle's environment. Builds run under a file lock, so
concurrent workers build once and the others wait.

This module imports pytest only inside :func:`require_shared`, so benchmarks can use it too.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_ENV = "ISOLATOR_SHARED"
CACHE_ENV = "ISOLATOR_TEST_CACHE"
SDK_VERSION = "1.58.0"
# Bump when the layout or content of the cached corpus dump changes.
_DUMP_FORMAT = 1
_BUILD_TIMEOUT = 900.0
_DUMP_TIMEOUT = 600.0
# The oracle's PATH is fixed rather than inherited: the SDK may expand ${PATH} from os.environ.
_ORACLE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


class OracleError(RuntimeError):
    """The oracle could not be found, built or run; ``cmd``, ``code``, ``out``, ``err`` say why."""

    def __init__(
        self,
        message: str,
        *,
        cmd: list[str] | None = None,
        code: int | None = None,
        out: str = "",
        err: str = "",
    ) -> None:
        details = [message]
        if cmd is not None:
            details.append(f"command: {' '.join(cmd)} (exit {code})")
        if out.strip():
            details.append(f"stdout (tail):\n{out[-3000:]}")
        if err.strip():
            details.append(f"stderr (tail):\n{err[-3000:]}")
        super().__init__("\n".join(details))
        self.cmd, self.code, self.out, self.err = cmd, code, out, err


# -- where things are ------------------------------------------------------------------------


def configured_shared_path() -> Path:
    """Where ``ISOLATOR_SHARED`` (default ``<repo root>/../shared``) points, present or not."""
    value = os.environ.get(SHARED_ENV)
    return Path(value).expanduser().absolute() if value else REPO_ROOT.parent / "shared"


def shared_problem(path: Path | None = None) -> str | None:
    """Why ``path`` (default: the configured one) is not a usable shared directory, or None."""
    path = configured_shared_path() if path is None else path
    for needed in ("oracle/setup.sh", "oracle/oh_dump.py", "corpus/INDEX.tsv"):
        if not (path / needed).is_file():
            return f"{path / needed} not found (set {SHARED_ENV} to the shared directory)"
    return None


def shared_dir() -> Path | None:
    """The shared directory (oracle + corpus), or None when it is absent or incomplete."""
    path = configured_shared_path()
    return None if shared_problem(path) else path


def in_ci() -> bool:
    """True under CI (``CI=true``), where a missing shared directory is a failure, not a skip."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def require_shared() -> Path:
    """The shared directory; otherwise skip the test, or fail it under ``CI=true``.

    For fixtures and tests: calls ``pytest.skip`` / ``pytest.fail``, which raise.
    """
    import pytest

    path = configured_shared_path()
    problem = shared_problem(path)
    if problem is None:
        return path
    if in_ci():
        pytest.fail(f"CI=true and the shared directory is unusable: {problem}", pytrace=False)
    pytest.skip(f"needs ../shared: {problem}")


def _shared_or_raise(shared: Path | None) -> Path:
    if shared is not None:
        return shared
    path = configured_shared_path()
    problem = shared_problem(path)
    if problem is not None:
        raise OracleError(f"no shared directory: {problem}")
    return path


def cache_dir() -> Path:
    """Cache root: ``$ISOLATOR_TEST_CACHE``, else ``$XDG_CACHE_HOME/isolator-tests``, else
    ``~/.cache/isolator-tests``."""
    value = os.environ.get(CACHE_ENV)
    if value:
        return Path(value).expanduser().absolute()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base.absolute() / "isolator-tests"


def corpus_root(shared: Path | None = None) -> Path:
    """The corpus directory inside the shared directory."""
    return _shared_or_raise(shared) / "corpus"


def corpus_dirs(shared: Path | None = None) -> list[Path]:
    """Every plugin directory of the corpus, absolute, in ``INDEX.tsv`` order (its column 1)."""
    root = corpus_root(shared)
    lines = (root / "INDEX.tsv").read_text(encoding="utf-8").splitlines()
    dirs = []
    for line in lines[1:]:  # the first line is the header
        column = line.split("\t", 1)[0].strip()
        if column:
            dirs.append(root / column.rstrip("/"))
    return dirs


# -- hashing ---------------------------------------------------------------------------------


def tree_digest(root: Path) -> str:
    """SHA-256 over a file tree: relative paths, file contents, symlink targets, empty dirs.

    Independent of mtimes, ownership and where the tree lives, so equal trees in two clones hash
    equal. Symlinks are hashed as links, never followed.
    """
    digest = hashlib.sha256()
    for current, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        base = Path(current)
        rel_dir = base.relative_to(root).as_posix()
        digest.update(b"D\0" + rel_dir.encode() + b"\0")
        # os.walk lists symlinks to directories among dirnames and does not descend into them.
        for name in sorted(filenames + [d for d in dirnames if (base / d).is_symlink()]):
            path = base / name
            rel = path.relative_to(root).as_posix().encode()
            if path.is_symlink():
                digest.update(b"L\0" + rel + b"\0" + str(path.readlink()).encode() + b"\0")
            else:
                digest.update(b"F\0" + rel + b"\0" + _file_sha256(path).encode() + b"\0")
    return digest.hexdigest()


def _file_sha256(path: Path) -> str:
    # Corpus files are small; hashlib.file_digest would need Python 3.11.
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _bytes_sha256(*parts: bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(len(part).to_bytes(8, "big") + part)
    return digest.hexdigest()


def venv_key(shared: Path | None = None) -> str:
    """Cache key of the oracle venv: a hash of ``setup.sh``."""
    setup = _shared_or_raise(shared) / "oracle" / "setup.sh"
    return _bytes_sha256(setup.read_bytes())[:16]


def corpus_oracle_key(shared: Path | None = None) -> str:
    """Cache key of the corpus dump: oracle scripts, corpus tree and oracle environment."""
    shared = _shared_or_raise(shared)
    return _bytes_sha256(
        str(_DUMP_FORMAT).encode(),
        (shared / "oracle" / "setup.sh").read_bytes(),
        (shared / "oracle" / "oh_dump.py").read_bytes(),
        tree_digest(shared / "corpus").encode(),
        json.dumps(oracle_env(), sort_keys=True).encode(),
    )


# -- building the oracle ---------------------------------------------------------------------


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    """An exclusive ``flock`` on ``lock_path``, across processes (xdist workers, parallel runs)."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def uv_binary() -> Path:
    """Our own uv (the ``uv`` package is a dependency), else one on PATH."""
    try:
        from uv import find_uv_bin

        return Path(find_uv_bin())
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv")
        if found:
            return Path(found)
    # Never let setup.sh fall back to pip-installing uv into the global Python.
    raise OracleError("uv not found: install the project with its test extras (.[test])")


def installer_env(uv_dir: Path | None = None) -> dict[str, str]:
    """The environment for setup.sh and uv: ours minus venv leakage; ``uv_dir`` first on PATH.

    Keeps proxies and SSL_CERT_FILE (uv fails with UnknownIssuer here without it), and ignores
    uv config files (``UV_NO_CONFIG``), so a user's uv.toml cannot change the reference.
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "CONDA_PREFIX"}
    }
    if uv_dir is not None:
        env["PATH"] = os.pathsep.join([str(uv_dir), env.get("PATH", _ORACLE_PATH)])
    env["UV_NO_CONFIG"] = "1"
    if not env.get("SSL_CERT_FILE") and Path(_CA_BUNDLE).is_file():
        env["SSL_CERT_FILE"] = _CA_BUNDLE
    return env


def run_checked(
    cmd: list[str],
    *,
    env: dict[str, str],
    timeout: float,
    what: str,
    stdin: str | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` capturing UTF-8 text; raise :class:`OracleError` on failure or timeout."""
    try:
        proc = subprocess.run(
            cmd,
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            timeout=timeout,
            check=False,
            cwd=cwd,
        )
    except subprocess.TimeoutExpired as exc:
        raise OracleError(f"{what}: timed out after {timeout:.0f} s", cmd=cmd) from exc
    except OSError as exc:
        raise OracleError(f"{what}: {exc}", cmd=cmd) from exc
    if proc.returncode != 0:
        raise OracleError(
            f"{what} failed", cmd=cmd, code=proc.returncode, out=proc.stdout, err=proc.stderr
        )
    return proc


def oracle_python(shared: Path | None = None, *, name: str = "oracle") -> Path:
    """The python of the oracle venv (openhands-sdk 1.58.0), built on first use and cached.

    The venv is ``<cache_dir>/<name>-venv-<hash of setup.sh>``; ``name`` gives a separate copy
    for callers that install more into it (the benchmark installs isolator), so the oracle
    itself stays exactly what setup.sh makes. Built under a file lock; a half-built venv (a
    killed build) is removed and rebuilt. Raises :class:`OracleError` when the build fails.
    """
    shared = _shared_or_raise(shared)
    venv = cache_dir() / f"{name}-venv-{venv_key(shared)}"
    python = venv / "bin" / "python"
    ready = venv / ".isolator-ready"
    if ready.is_file():
        return python
    with _locked(venv.with_name(venv.name + ".lock")):
        if ready.is_file():  # another process built it while we waited
            return python
        if venv.exists():
            shutil.rmtree(venv)
        with tempfile.TemporaryDirectory(prefix="oracle-uv-") as uv_dir:
            # A directory holding only uv: the test venv's bin/ also holds python3*, which
            # setup.sh would otherwise take for the base interpreter.
            (Path(uv_dir) / "uv").symlink_to(uv_binary())
            run_checked(
                ["bash", str(shared / "oracle" / "setup.sh"), str(venv)],
                env=installer_env(Path(uv_dir)),
                timeout=_BUILD_TIMEOUT,
                what="oracle setup.sh",
            )
        probe = run_checked(
            [
                str(python),
                "-I",
                "-c",
                "import importlib.metadata as m; print(m.version('openhands-sdk'))",
            ],
            env=oracle_env(),
            timeout=60,
            what="oracle version check",
        )
        if probe.stdout.strip() != SDK_VERSION:
            raise OracleError(
                f"oracle venv has openhands-sdk {probe.stdout.strip()!r}, expected {SDK_VERSION}"
            )
        ready.write_text(SDK_VERSION + "\n", encoding="utf-8")
    return python


def sdk_python(shared: Path | None = None, *, name: str = "openhands") -> Path:
    """A copy of the oracle venv (:func:`oracle_python` with *name*) with this project
    installed in it, editable: the SDK and isolator in one Python >= 3.12 venv.

    The install is redone when pyproject.toml changes (a marker in the venv keeps its hash),
    under the venv's lock; raises :class:`OracleError` when it fails.
    """
    python = oracle_python(shared, name=name)
    venv = python.parent.parent
    key = _bytes_sha256((REPO_ROOT / "pyproject.toml").read_bytes(), str(REPO_ROOT).encode())
    marker = venv / ".isolator-installed"
    if marker.is_file() and marker.read_text(encoding="utf-8").strip() == key:
        return python
    with _locked(venv.with_name(venv.name + ".lock")):
        if marker.is_file() and marker.read_text(encoding="utf-8").strip() == key:
            return python
        run_checked(
            [str(uv_binary()), "pip", "install", "--quiet", "--python", str(python),
             "--editable", str(REPO_ROOT)],
            env=installer_env(),
            timeout=_BUILD_TIMEOUT,
            what=f"installing isolator into the {name} venv",
        )
        marker.write_text(key + "\n", encoding="utf-8")
    return python


def oracle_env() -> dict[str, str]:
    """The fixed environment every oracle process runs with.

    The SDK reads os.environ when it loads MCP configs (``${VAR}`` expansion), so a test that
    compares against the oracle must know exactly this dict. PATH is a constant; HOME and
    OH_PERSISTENCE_DIR are empty directories under :func:`cache_dir`, so no user configuration
    reaches the SDK.
    """
    base = cache_dir()
    home = base / "oracle-home"
    persistence = base / "oracle-persistence"
    for path in (home, persistence):
        path.mkdir(parents=True, exist_ok=True)
    return {
        "PATH": _ORACLE_PATH,
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "SSL_CERT_FILE": os.environ.get("SSL_CERT_FILE") or _CA_BUNDLE,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "OPENHANDS_SUPPRESS_BANNER": "1",
        "OH_PERSISTENCE_DIR": str(persistence),
    }


# -- dumping ---------------------------------------------------------------------------------


def oracle_dump(dirs: Iterable[Path], shared: Path | None = None) -> dict[str, dict[str, Any]]:
    """What the SDK's ``Plugin.load`` makes of each directory, keyed by ``str(dir)`` as given.

    Each value is oh_dump.py's record: ``{"dir", "ok": True, "plugin": {...}}`` (paths under the
    plugin rewritten to ``${PLUGIN_DIR}``, skills/agents/commands sorted by name) or
    ``{"dir", "ok": False, "error": "ValueError: ..."}``. Runs one process in the oracle venv
    with :func:`oracle_env`; raises :class:`OracleError` when it cannot.
    """
    shared = _shared_or_raise(shared)
    dirs = [Path(d) for d in dirs]
    if not dirs:
        return {}
    python = oracle_python(shared)
    with tempfile.TemporaryDirectory(prefix="oracle-cwd-") as cwd:
        proc = run_checked(
            [str(python), "-I", str(shared / "oracle" / "oh_dump.py"), *map(str, dirs)],
            env=oracle_env(),
            timeout=_DUMP_TIMEOUT,
            what="oh_dump.py",
            cwd=Path(cwd),
        )
    records: dict[str, dict[str, Any]] = {}
    for line in proc.stdout.splitlines():
        if line.strip():
            record = json.loads(line)
            records[record["dir"]] = record
    missing = [str(d) for d in dirs if str(d) not in records]
    if missing:
        raise OracleError(
            f"oh_dump.py gave no record for {missing[:5]}", out=proc.stdout, err=proc.stderr
        )
    return records


def corpus_oracle_path(shared: Path | None = None) -> Path:
    """Where the corpus dump for the current corpus, oracle and environment is cached."""
    return cache_dir() / f"corpus-oracle-{corpus_oracle_key(shared)[:16]}.json"


def corpus_oracle(shared: Path | None = None) -> dict[str, dict[str, Any]]:
    """The oracle's record for every corpus plugin, keyed by its path relative to the corpus.

    Keys are INDEX.tsv's column 1 without the trailing slash (``obra__superpowers``...); each
    record's ``"dir"`` is that same relative path. Cached in :func:`corpus_oracle_path`, written
    atomically under a lock, recomputed whenever the key (:func:`corpus_oracle_key`) changes.
    """
    shared = _shared_or_raise(shared)
    key = corpus_oracle_key(shared)
    path = cache_dir() / f"corpus-oracle-{key[:16]}.json"
    cached = _read_cached_dump(path, key)
    if cached is not None:
        return cached
    with _locked(path.with_name(path.name + ".lock")):
        cached = _read_cached_dump(path, key)
        if cached is not None:
            return cached
        root = corpus_root(shared)
        dirs = corpus_dirs(shared)
        missing = [d for d in dirs if not d.is_dir()]
        if missing:
            raise OracleError(f"INDEX.tsv lists directories that do not exist: {missing[:5]}")
        raw = oracle_dump(dirs, shared)
        plugins = {}
        for d in dirs:
            rel = d.relative_to(root).as_posix()
            plugins[rel] = {**raw[str(d)], "dir": rel}
        data = {"key": key, "sdk": SDK_VERSION, "env": oracle_env(), "plugins": plugins}
        _write_atomically(path, json.dumps(data, sort_keys=True, ensure_ascii=False))
    return plugins


def _read_cached_dump(path: Path, key: str) -> dict[str, dict[str, Any]] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("key") != key:
        return None
    plugins: dict[str, dict[str, Any]] = data["plugins"]
    return plugins


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        Path(tmp).chmod(0o644)  # mkstemp makes it 0600; the cache may be shared
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _main(argv: list[str]) -> NoReturn:
    """``python tests/oracle.py [DIR...]``: build the oracle, dump DIRs (default: the corpus)."""
    try:
        if argv:
            result: dict[str, dict[str, Any]] = oracle_dump([Path(a) for a in argv])
        else:
            result = corpus_oracle()
    except OracleError as exc:
        print(f"oracle: {exc}", file=sys.stderr)
        sys.exit(1)
    for record in result.values():
        print(json.dumps(record, sort_keys=True, ensure_ascii=False))
    sys.exit(0)


if __name__ == "__main__":
    _main(sys.argv[1:])
