"""Build tiny projects, wheels and sdists for tests, offline and in milliseconds.

Every project :func:`make_project` writes carries its own PEP 517 build backend (in-tree, via
``backend-path``), so ``uv build``, ``uv pip install DIR`` and a build from an sdist work with
``--no-index`` and no network: nothing has to fetch setuptools or hatchling. The store tests reuse
these helpers; keep them free of test-framework imports.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import subprocess
import tarfile
import zipfile
from typing import TYPE_CHECKING

from packaging.utils import canonicalize_name

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence
    from pathlib import Path

BACKEND_MODULE = "_tiny_backend"

# The in-tree backend. It is stdlib-only and avoids tomllib (absent on 3.10) by reading its
# configuration from a JSON file written next to it. When the project has a setup.py, the backend
# executes it first: that is how a test sees whether any build code ran (a marker file).
_BACKEND_SOURCE = r'''
"""A minimal in-tree PEP 517 backend for isolator's tests."""
import base64, hashlib, io, json, os, tarfile, zipfile

_HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(_HERE, "tiny_build.json"), encoding="utf-8") as _f:
    CONFIG = json.load(_f)
if os.path.exists(os.path.join(_HERE, "setup.py")):
    with open(os.path.join(_HERE, "setup.py"), encoding="utf-8") as _f:
        exec(compile(_f.read(), "setup.py", "exec"), {"__name__": "__main__"})

_NAME = CONFIG["name"]
_DIST = _NAME.replace("-", "_").replace(".", "_")
_VERSION = CONFIG["version"]
_DISTINFO = f"{_DIST}-{_VERSION}.dist-info"


def _metadata():
    lines = ["Metadata-Version: 2.1", f"Name: {_NAME}", f"Version: {_VERSION}"]
    lines += [f"Requires-Dist: {d}" for d in CONFIG["dependencies"]]
    return "\n".join(lines) + "\n\n"


def _entry_points():
    out = []
    for group, items in CONFIG["entry_points"].items():
        out.append(f"[{group}]")
        out += [f"{k} = {v}" for k, v in items.items()]
        out.append("")
    return "\n".join(out)


def _payload():
    skip = {"pyproject.toml", "setup.py", "tiny_build.json", "_tiny_backend.py"}
    for root, dirs, files in os.walk(_HERE):
        dirs[:] = sorted(d for d in dirs if d not in ("__pycache__", ".git"))
        for name in sorted(files):
            full = os.path.join(root, name)
            rel = os.path.relpath(full, _HERE).replace(os.sep, "/")
            if rel in skip or rel.endswith(".pyc"):
                continue
            with open(full, "rb") as f:
                yield rel, f.read()


def _hash(data):
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    filename = f"{_DIST}-{_VERSION}-py3-none-any.whl"
    files = list(_payload())
    files.append((f"{_DISTINFO}/METADATA", _metadata().encode()))
    files.append((f"{_DISTINFO}/WHEEL", b"Wheel-Version: 1.0\nGenerator: tiny\n"
                  b"Root-Is-Purelib: true\nTag: py3-none-any\n\n"))
    if CONFIG["entry_points"]:
        files.append((f"{_DISTINFO}/entry_points.txt", _entry_points().encode()))
    record = "".join(f"{p},{_hash(d)},{len(d)}\n" for p, d in files)
    record += f"{_DISTINFO}/RECORD,,\n"
    files.append((f"{_DISTINFO}/RECORD", record.encode()))
    with zipfile.ZipFile(os.path.join(wheel_directory, filename), "w") as zf:
        for path, data in files:
            zf.writestr(zipfile.ZipInfo(path, (2020, 1, 1, 0, 0, 0)), data)
    return filename


def build_sdist(sdist_directory, config_settings=None):
    base = f"{_DIST}-{_VERSION}"
    filename = base + ".tar.gz"
    with tarfile.open(os.path.join(sdist_directory, filename), "w:gz") as tf:
        for root, dirs, files in os.walk(_HERE):
            dirs[:] = sorted(d for d in dirs if d not in ("__pycache__", ".git"))
            for name in sorted(files):
                full = os.path.join(root, name)
                tf.add(full, base + "/" + os.path.relpath(full, _HERE))
        info = tarfile.TarInfo(base + "/PKG-INFO")
        data = _metadata().encode()
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    return filename
'''


def module_name(name: str) -> str:
    """The import name a project called *name* gets here: ``tiny-pkg`` -> ``tiny_pkg``."""
    return canonicalize_name(name).replace("-", "_")


def make_project(
    tmp: Path,
    name: str,
    version: str = "1.0.0",
    *,
    deps: Sequence[str] = (),
    files: Mapping[str, str] | None = None,
    entry_points: Mapping[str, Mapping[str, str]] | None = None,
    setup_py: str | None = None,
) -> Path:
    """Write a buildable project ``tmp/NAME-VERSION/`` and return its directory.

    *files* maps POSIX paths relative to the project root to text; by default the project holds
    one package ``<module>/__init__.py``. *setup_py*, when given, is the text of a ``setup.py``
    the in-tree backend executes at import: the hook for "did build code run?" tests.
    """
    project = tmp / f"{name}-{version}"
    project.mkdir(parents=True)
    if files is None:
        files = {f"{module_name(name)}/__init__.py": f'__version__ = "{version}"\n'}
    for rel, text in files.items():
        target = project / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    dep_list = ", ".join(json.dumps(d) for d in deps)
    (project / "pyproject.toml").write_text(
        "[build-system]\n"
        "requires = []\n"
        f'build-backend = "{BACKEND_MODULE}"\n'
        'backend-path = ["."]\n\n'
        "[project]\n"
        f'name = "{name}"\n'
        f'version = "{version}"\n'
        f"dependencies = [{dep_list}]\n",
        encoding="utf-8",
    )
    config = {
        "name": name,
        "version": version,
        "dependencies": list(deps),
        "entry_points": {g: dict(v) for g, v in (entry_points or {}).items()},
    }
    (project / "tiny_build.json").write_text(json.dumps(config), encoding="utf-8")
    (project / f"{BACKEND_MODULE}.py").write_text(_BACKEND_SOURCE, encoding="utf-8")
    if setup_py is not None:
        (project / "setup.py").write_text(setup_py, encoding="utf-8")
    return project


def marker_setup_py(marker: Path) -> str:
    """A ``setup.py`` body that proves it ran by creating *marker*. Builds run in a sandbox
    that writes only to its build directory: where the build is meant to run, use
    :func:`proof_setup_py`; this one suits tests that no build code runs at all."""
    return f"open({str(marker)!r}, 'w').close()\n"


PROOF = "BUILD_CODE_RAN"


def proof_setup_py(module: str) -> str:
    """A ``setup.py`` body that proves it ran from inside the build sandbox: it writes
    ``<module>/BUILD_CODE_RAN`` into the project being built, so the wheel carries it."""
    return (f"import os\nopen(os.path.join(os.getcwd(), {module!r}, {PROOF!r}), 'w')"
            ".close()\n")


def _uv() -> str:
    from uv import find_uv_bin

    return find_uv_bin()


def build_wheel(
    project_dir: Path,
    out_dir: Path,
    *,
    find_links: Iterable[Path] = (),
    no_index: bool = True,
) -> Path:
    """Build *project_dir* into a wheel in *out_dir* with ``uv build --wheel``; return its path.

    Offline by default, which suffices for :func:`make_project` projects; pass
    ``no_index=False`` (network) or *find_links* for projects whose backend must be fetched.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    before = set(out_dir.glob("*.whl"))
    cmd = [
        _uv(),
        "build",
        "--wheel",
        "--no-config",
        "--no-python-downloads",
        "--quiet",
        "--no-create-gitignore",
        "--out-dir",
        str(out_dir),
    ]
    if no_index:
        cmd.append("--no-index")
    for link in find_links:
        cmd += ["--find-links", str(link)]
    cmd.append(str(project_dir))
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    (built,) = set(out_dir.glob("*.whl")) - before
    return built


def build_sdist(project_dir: Path, out_dir: Path) -> Path:
    """Pack a :func:`make_project` project into ``NAME-VERSION.tar.gz`` in *out_dir*, directly."""
    config = json.loads((project_dir / "tiny_build.json").read_text(encoding="utf-8"))
    base = f"{module_name(config['name'])}-{config['version']}"
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{base}.tar.gz"
    with tarfile.open(target, "w:gz") as tf:
        for path in sorted(project_dir.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                tf.add(path, f"{base}/{path.relative_to(project_dir).as_posix()}")
        pkg_info = (
            f"Metadata-Version: 2.1\nName: {config['name']}\nVersion: {config['version']}\n\n"
        ).encode()
        info = tarfile.TarInfo(f"{base}/PKG-INFO")
        info.size = len(pkg_info)
        tf.addfile(info, io.BytesIO(pkg_info))
    return target


def _record_hash(data: bytes) -> str:
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def make_wheel(
    out_dir: Path,
    name: str,
    version: str = "1.0.0",
    *,
    deps: Sequence[str] = (),
    files: Mapping[str, str] | None = None,
    entry_points: Mapping[str, Mapping[str, str]] | None = None,
) -> Path:
    """Write a pure-Python wheel straight into *out_dir* (no build step at all); return its path."""
    dist = module_name(name)
    distinfo = f"{dist}-{version}.dist-info"
    if files is None:
        files = {f"{dist}/__init__.py": f'__version__ = "{version}"\n'}
    payload: list[tuple[str, bytes]] = [(p, t.encode()) for p, t in files.items()]
    meta = [f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"]
    meta += [f"Requires-Dist: {d}\n" for d in deps]
    payload.append((f"{distinfo}/METADATA", ("".join(meta) + "\n").encode()))
    payload.append(
        (
            f"{distinfo}/WHEEL",
            b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n\n",
        )
    )
    if entry_points:
        text = "".join(
            f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in items.items()) + "\n"
            for group, items in entry_points.items()
        )
        payload.append((f"{distinfo}/entry_points.txt", text.encode()))
    record = "".join(f"{p},{_record_hash(d)},{len(d)}\n" for p, d in payload)
    payload.append((f"{distinfo}/RECORD", (record + f"{distinfo}/RECORD,,\n").encode()))
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for path, data in payload:
            zf.writestr(zipfile.ZipInfo(path, (2020, 1, 1, 0, 0, 0)), data)
    return target
