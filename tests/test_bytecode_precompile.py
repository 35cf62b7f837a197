"""The wheels' bytecode compiles while the venv is made (#19: an install within the floor that
compiles): keyed as the installed files will be, so the venv links it; nothing a wheel names is
written."""

from __future__ import annotations

import os
import zipfile
from typing import TYPE_CHECKING

from isolator.store._bytecode import BytecodePool, _site_path
from isolator.store._interpreters import base_interpreter, find_python

if TYPE_CHECKING:
    from pathlib import Path


def test_wheel_members_map_to_site_packages_as_an_installer_puts_them() -> None:
    assert _site_path("pkg/mod.py") == os.path.join("pkg", "mod.py")
    assert _site_path("pkg-1.0.data/purelib/extra/x.py") == os.path.join("extra", "x.py")
    assert _site_path("pkg-1.0.data/platlib/y.py") == "y.py"
    for name in ("pkg-1.0.data/scripts/run.py", "../escape.py", "/abs.py", "pkg/../x.py",
                 "pkg/__pycache__/m.py", "pkg\\win.py", "pkg//m.py", "pkg/data.txt"):
        assert _site_path(name) is None, name


def test_precompiled_bytecode_is_what_the_installed_venv_links(tmp_path: Path) -> None:
    interpreter = base_interpreter(find_python(None))
    wheel = tmp_path / "pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("pkg/__init__.py", "")
        archive.writestr("pkg/mod.py", "VALUE = 42\n")
        archive.writestr("../escape.py", "X = 1\n")  # a hostile name: never written
        archive.writestr("pkg-1.0.data/purelib/extra.py", "Y = 2\n")
    pool = BytecodePool(tmp_path / "bytecode")
    work = tmp_path / "op"
    work.mkdir()
    added = pool.precompile([wheel], interpreter, work)()
    assert len(added) == 3 and all(p.is_file() for p in added)
    assert not (tmp_path / "escape.py").exists() and not (work.parent / "escape.py").exists()
    # The venv as the installer makes it: the same bytes at the same relative paths.
    site = tmp_path / "site"
    (site / "pkg").mkdir(parents=True)
    (site / "pkg" / "__init__.py").write_text("")
    (site / "pkg" / "mod.py").write_text("VALUE = 42\n")
    (site / "extra.py").write_text("Y = 2\n")
    (site / "pkg" / "local.py").write_text("Z = 3\n")  # not from the wheel: compiled now
    report = pool.compile_site(site, interpreter, work, precompiled=added)
    assert (report.linked, report.compiled) == (0, 4)
    tag = interpreter.cache_tag
    linked = site / "pkg" / "__pycache__" / f"mod.{tag}.pyc"
    assert any(os.path.samefile(linked, p) for p in added)
    # A second venv with the same files compiles nothing.
    again = pool.compile_site(site, interpreter, work)
    assert (again.linked, again.compiled) == (4, 0)


def test_a_precompile_that_fails_is_left_to_compile_site(tmp_path: Path) -> None:
    interpreter = base_interpreter(find_python(None))
    pool = BytecodePool(tmp_path / "bytecode")
    work = tmp_path / "op"
    work.mkdir()
    missing = tmp_path / "gone.whl"  # not a file: the thread's error is no install error
    assert pool.precompile([missing], interpreter, work)() == set()
    site = tmp_path / "site"
    site.mkdir()
    (site / "m.py").write_text("A = 1\n")
    assert pool.compile_site(site, interpreter, work).compiled == 1
