"""dist-info reading without imports: hand-made site-packages, a real uv venv, and the host's own
site-packages checked against importlib.metadata."""

from __future__ import annotations

import importlib.metadata
import os
import sysconfig
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from helpers_build import make_wheel

from isolator._errors import DistributionError, IsolatorError
from isolator.metadata._distinfo import (
    Distribution,
    EntryPoint,
    dist_info_cap,
    find_distribution,
    find_module_dir,
    find_site_packages,
    iter_distributions,
    parse_entry_points,
    read_dist_info_file,
    read_distribution,
    read_record,
    read_wheel_dist_info_file,
    record_hashes,
)
from isolator.store._backends import UvBackend
from isolator.store._interpreters import find_python

if TYPE_CHECKING:
    from collections.abc import Mapping


def write_dist(
    site: Path,
    name: str,
    version: str,
    *,
    metadata: str | None = None,
    entry_points: str | None = None,
    record: str | None = None,
    files: Mapping[str, str] | None = None,
    extra: Mapping[str, str] | None = None,
) -> Path:
    """A dist-info directory written by hand, as an installer would leave it."""
    dist_info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    dist_info.mkdir(parents=True)
    if metadata is None:
        metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\nBody\n"
    (dist_info / "METADATA").write_text(metadata)
    if entry_points is not None:
        (dist_info / "entry_points.txt").write_text(entry_points)
    for rel, text in (files or {}).items():
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_text(text)
    if record is None:
        record = "".join(f"{rel},sha256=x,1\n" for rel in (files or {}))
    (dist_info / "RECORD").write_text(record)
    for filename, text in (extra or {}).items():
        (dist_info / filename).write_text(text)
    return dist_info


# ---- the entry_points.txt parser -----------------------------------------------------------


def test_parse_entry_points() -> None:
    text = """
# a comment
[openhands.plugins]
security = openhands_plugin_security
[openhands.tools]
scan=openhands_plugin_security.tools:scan
 report = pkg.mod : Report.run  [fast, pretty]
garbage line without equals
empty =
[console_scripts]
ohp-sec = pkg.cli:main
"""
    groups = parse_entry_points(text)
    assert list(groups) == ["openhands.plugins", "openhands.tools", "console_scripts"]
    (plugin,) = groups["openhands.plugins"]
    assert plugin == EntryPoint("security", "openhands.plugins", "openhands_plugin_security")
    assert plugin.attr is None and plugin.value == "openhands_plugin_security"
    scan, report = groups["openhands.tools"]
    assert (scan.module, scan.attr) == ("openhands_plugin_security.tools", "scan")
    assert (report.module, report.attr, report.extras) == ("pkg.mod", "Report.run",
                                                           ("fast", "pretty"))
    assert report.value == "pkg.mod:Report.run [fast,pretty]"


def test_entries_before_any_section_are_ignored() -> None:
    assert parse_entry_points("a = b\n[g]\nc = d:e\n") == {
        "g": (EntryPoint("c", "g", "d", "e"),)
    }


# ---- hand-made site-packages ---------------------------------------------------------------


def test_iter_distributions_reads_name_version_lazily(tmp_path: Path) -> None:
    write_dist(tmp_path, "Zeta_Pkg", "2.0", entry_points="[g]\nz = zeta:main\n")
    write_dist(tmp_path, "alpha", "1.0rc1")
    (tmp_path / "not-a-dist").mkdir()
    (tmp_path / "stray.dist-info").write_text("a file, not a directory")
    dists = list(iter_distributions(tmp_path))
    # Sorted by directory name (bytewise: "Z" < "a"), so listings are stable.
    assert [(d.name, d.canonical_name, d.version) for d in dists] == [
        ("Zeta_Pkg", "zeta-pkg", "2.0"),
        ("alpha", "alpha", "1.0rc1"),
    ]
    zeta = next(d for d in dists if d.name == "Zeta_Pkg")
    # Entry points are read on first use, not when listing: remove the file, then ask.
    (zeta.path / "entry_points.txt").unlink()
    assert zeta.entry_points == {}
    again = read_distribution(zeta.path)
    assert again.entry_points_in("g") == ()


def test_entry_points_are_read_once(tmp_path: Path) -> None:
    path = write_dist(tmp_path, "a", "1", entry_points="[g]\nx = m:f\n")
    dist = read_distribution(path)
    assert dist.entry_points_in("g")[0].attr == "f"
    (path / "entry_points.txt").write_text("[g]\nx = m:changed\n")
    assert dist.entry_points_in("g")[0].attr == "f"


def test_metadata_header_variants(tmp_path: Path) -> None:
    long_header = "Metadata-Version: 2.1\n" + "".join(
        f"Classifier: Topic :: Thing {i}\n" for i in range(300)
    ) + "Name: late-name\nVersion: 3.1\n\nName: body-name\n"
    assert read_distribution(write_dist(tmp_path, "late", "3.1", metadata=long_header)).name \
        == "late-name"
    crlf = "Metadata-Version: 2.1\r\nName: crlf\r\nVersion: 1.0\r\n\r\n"
    dist = read_distribution(write_dist(tmp_path, "crlf", "1.0", metadata=crlf))
    assert (dist.name, dist.version) == ("crlf", "1.0")
    lower = "metadata-version: 2.1\nname: lower\nversion: 0.1\n"
    assert read_distribution(write_dist(tmp_path, "lower", "0.1", metadata=lower)).version == "0.1"
    # A body line that looks like a header does not count.
    body_only = "Metadata-Version: 2.1\nName: nov\n\nVersion: 9\n"
    with pytest.raises(DistributionError, match="no Version header"):
        read_distribution(write_dist(tmp_path, "nov", "9", metadata=body_only))


def test_broken_dist_info_is_skipped_or_strict(tmp_path: Path) -> None:
    write_dist(tmp_path, "good", "1.0")
    (tmp_path / "broken-1.0.dist-info").mkdir()  # an install killed before METADATA
    assert [d.name for d in iter_distributions(tmp_path)] == ["good"]
    with pytest.raises(DistributionError, match="no METADATA") as info:
        list(iter_distributions(tmp_path, strict=True))
    assert isinstance(info.value, IsolatorError)
    assert "broken-1.0.dist-info" in str(info.value)


def test_missing_site_packages(tmp_path: Path) -> None:
    with pytest.raises(DistributionError, match="cannot list site-packages"):
        list(iter_distributions(tmp_path / "nope"))


def test_requires_installer_direct_url(tmp_path: Path) -> None:
    metadata = (
        "Metadata-Version: 2.1\nName: r\nVersion: 1\nRequires-Dist: a>=1\n"
        "Requires-Dist: b ; python_version < '3.11'\nRequires-Dist: c\n  [x]\n\n"
        "Requires-Dist: not-a-header\n"
    )
    path = write_dist(tmp_path, "r", "1", metadata=metadata, extra={
        "INSTALLER": "uv\n",
        "direct_url.json": '{"url": "file:///w/r-1-py3-none-any.whl", "archive_info": {}}',
    })
    dist = read_distribution(path)
    assert dist.requires == ("a>=1", "b ; python_version < '3.11'", "c [x]")
    assert dist.installer == "uv"
    assert dist.direct_url == {"url": "file:///w/r-1-py3-none-any.whl", "archive_info": {}}
    bare = read_distribution(write_dist(tmp_path, "bare", "1"))
    assert bare.installer is None and bare.direct_url is None and bare.requires == ()
    bad = read_distribution(write_dist(tmp_path, "bad", "1", extra={"direct_url.json": "[1"}))
    with pytest.raises(DistributionError, match="bad JSON"):
        _ = bad.direct_url


def test_record_and_hashes(tmp_path: Path) -> None:
    record = (
        "pkg/__init__.py,sha256=abc,12\n"
        '"pkg/a,b.md",sha256=def,3\n'
        "pkg-1.dist-info/RECORD,,\n"
        "../../bin/tool,sha256=ghi,40\n"
    )
    dist = read_distribution(write_dist(tmp_path, "pkg", "1", record=record))
    entries = read_record(dist)
    assert [e.path for e in entries] == ["pkg/__init__.py", "pkg/a,b.md", "pkg-1.dist-info/RECORD",
                                         "../../bin/tool"]
    assert entries[2].hash is None and entries[2].size is None
    assert record_hashes(dist) == {
        "pkg/__init__.py": "sha256=abc", "pkg/a,b.md": "sha256=def", "../../bin/tool": "sha256=ghi"
    }
    broken = read_distribution(write_dist(tmp_path, "broken", "1", record="x,sha256=a,big\n"))
    with pytest.raises(DistributionError, match="bad size"):
        read_record(broken)


def test_find_module_dir(tmp_path: Path) -> None:
    files = {
        "plug/__init__.py": "",
        "plug/skills/s/SKILL.md": "",
        "plug/sub/__init__.py": "",
        "single.py": "",
        "other/__init__.py": "",
    }
    dist = read_distribution(write_dist(tmp_path, "plug", "1", files={
        k: v for k, v in files.items() if not k.startswith("other/")
    }))
    (tmp_path / "other").mkdir()
    assert find_module_dir(dist, "plug") == tmp_path / "plug"
    assert find_module_dir(dist, "plug.sub") == tmp_path / "plug" / "sub"
    with pytest.raises(DistributionError, match="single-file module"):
        find_module_dir(dist, "single")
    # Another distribution's directory is not this one's, even though it exists.
    with pytest.raises(DistributionError, match="not installed"):
        find_module_dir(dist, "other")
    for bad in ("", "../x", "a..b", "plug/skills", "1abc"):
        with pytest.raises(DistributionError, match="not a module name"):
            find_module_dir(dist, bad)


def test_find_module_dir_quoted_record_rows(tmp_path: Path) -> None:
    (tmp_path / "qp").mkdir()
    record = '"qp/a,b.md",sha256=x,1\n'
    dist = read_distribution(write_dist(tmp_path, "qp", "1", record=record))
    assert find_module_dir(dist, "qp") == tmp_path / "qp"


def test_find_module_dir_refuses_a_symlink_out(tmp_path: Path) -> None:
    site = tmp_path / "site"
    outside = tmp_path / "outside"
    outside.mkdir()
    site.mkdir()
    (site / "evil").symlink_to(outside)
    dist = read_distribution(write_dist(site, "evil", "1", record="evil/__init__.py,,\n"))
    with pytest.raises(DistributionError, match="outside site-packages"):
        find_module_dir(dist, "evil")


def test_find_distribution(tmp_path: Path) -> None:
    write_dist(tmp_path, "My.Plugin", "1.0")
    write_dist(tmp_path, "my-plugin-extra", "2.0")
    found = find_distribution(tmp_path, "my_plugin")
    assert found is not None and found.version == "1.0"
    assert find_distribution(tmp_path, "MY-PLUGIN-EXTRA") is not None
    assert find_distribution(tmp_path, "absent") is None


def test_find_site_packages(tmp_path: Path) -> None:
    with pytest.raises(DistributionError, match="not a virtual environment"):
        find_site_packages(tmp_path)
    (tmp_path / "lib" / "python3.12" / "site-packages").mkdir(parents=True)
    assert find_site_packages(tmp_path) == tmp_path / "lib" / "python3.12" / "site-packages"
    (tmp_path / "lib" / "python3.13" / "site-packages").mkdir(parents=True)
    with pytest.raises(DistributionError, match="more than one"):
        find_site_packages(tmp_path)


# ---- real installs -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def uv_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv made by uv with a plugin wheel (entry points, nested content) and a dependency."""
    root = tmp_path_factory.mktemp("distinfo")
    wheels = root / "wheels"
    make_wheel(wheels, "tiny-dep", "0.3")
    make_wheel(
        wheels, "openhands-plugin-demo", "1.2.0",
        deps=["tiny-dep>=0.1"],
        files={
            "openhands_plugin_demo/__init__.py": "",
            "openhands_plugin_demo/skills/demo/SKILL.md": "---\nname: demo\n---\nHi\n",
            "openhands_plugin_demo/tools.py": "def scan(path: str) -> str:\n    return path\n",
        },
        entry_points={
            "openhands.plugins": {"demo": "openhands_plugin_demo"},
            "openhands.tools": {"scan": "openhands_plugin_demo.tools:scan"},
        },
    )
    venv = root / "venv"
    backend = UvBackend()
    backend.create_venv(venv, find_python(None))
    backend.install(venv, ["openhands-plugin-demo"], find_links=[str(wheels)], no_index=True)
    return venv


def test_real_venv(uv_venv: Path) -> None:
    site = find_site_packages(uv_venv)
    dists = {d.canonical_name: d for d in iter_distributions(site)}
    assert set(dists) == {"openhands-plugin-demo", "tiny-dep"}
    demo = dists["openhands-plugin-demo"]
    assert demo.version == "1.2.0" and demo.installer == "uv"
    assert demo.requires == ("tiny-dep>=0.1",)
    (plugin,) = demo.entry_points_in("openhands.plugins")
    root = find_module_dir(demo, plugin.module)
    assert (root / "skills" / "demo" / "SKILL.md").is_file()
    hashes = record_hashes(demo)
    assert hashes["openhands_plugin_demo/tools.py"].startswith("sha256=")


def _importlib_view(site: Path) -> dict[str, tuple[str, dict[str, list[tuple[str, str]]]]]:
    view: dict[str, tuple[str, dict[str, list[tuple[str, str]]]]] = {}
    for dist in importlib.metadata.distributions(path=[str(site)]):
        groups: dict[str, list[tuple[str, str]]] = {}
        for ep in dist.entry_points:
            groups.setdefault(ep.group, []).append((ep.name, ep.value))
        view[dist.metadata["Name"]] = (dist.version, groups)
    return view


def _our_view(site: Path) -> dict[str, tuple[str, dict[str, list[tuple[str, str]]]]]:
    view: dict[str, tuple[str, dict[str, list[tuple[str, str]]]]] = {}
    for dist in iter_distributions(site):
        groups = {
            group: [(ep.name, ep.value) for ep in eps]
            for group, eps in dist.entry_points.items() if eps
        }
        view[dist.name] = (dist.version, groups)
    return view


def _normalise(view: dict[str, tuple[str, dict[str, list[tuple[str, str]]]]]
               ) -> dict[str, tuple[str, dict[str, list[tuple[str, str]]]]]:
    # Whitespace inside a value ("m:f [x]" vs "m:f  [x]") is not a difference that matters.
    return {
        name: (version, {g: sorted((n, "".join(v.split())) for n, v in eps)
                         for g, eps in groups.items()})
        for name, (version, groups) in view.items()
    }


def test_agrees_with_importlib_metadata_on_a_uv_venv(uv_venv: Path) -> None:
    site = find_site_packages(uv_venv)
    assert _normalise(_our_view(site)) == _normalise(_importlib_view(site))


def test_agrees_with_importlib_metadata_on_the_test_environment() -> None:
    # The site-packages running these tests: dozens of real distributions installed by pip.
    site = Path(sysconfig.get_paths()["purelib"])
    ours = _normalise(_our_view(site))
    theirs = _normalise(_importlib_view(site))
    assert len(ours) > 10
    assert ours == theirs


def test_distribution_is_plain_data(tmp_path: Path) -> None:
    dist = read_distribution(write_dist(tmp_path, "d", "1"))
    assert dist == Distribution("d", "d", "1", dist.path)
    assert dist.site_packages == tmp_path


# ---- every dist-info file is read with a size cap --------------------------------------------


def _grow(path: Path, size: int) -> None:
    """Make *path* *size* bytes long, sparse (no disk, no time)."""
    with open(path, "r+b") as handle:
        handle.truncate(size)


def _fill(path: Path, size: int) -> None:
    """Make *path* *size* bytes long with newlines (blank lines: the same content)."""
    with open(path, "ab") as handle:
        handle.write(b"\n" * (size - path.stat().st_size))


def test_the_caps_are_the_documented_ones() -> None:
    assert dist_info_cap("entry_points.txt") == 1 << 20
    assert dist_info_cap("RECORD") == 32 << 20
    assert dist_info_cap("METADATA") == 16 << 20
    for other in ("INSTALLER", "direct_url.json", "top_level.txt", "WHEEL", "anything"):
        assert dist_info_cap(other) == 1 << 20


@pytest.mark.parametrize("filename", ["entry_points.txt", "INSTALLER", "direct_url.json",
                                      "RECORD", "METADATA"])
def test_every_dist_info_read_refuses_a_file_over_its_cap(tmp_path: Path, filename: str) -> None:
    """Each accessor reads through the capped reader: one byte over is refused, naming the
    file and the cap; at the cap it is read."""
    path = write_dist(tmp_path, "big", "1", entry_points="[g]\nx = m:f\n", extra={
        "INSTALLER": "uv\n", "direct_url.json": "{}"}, files={"big/__init__.py": ""})
    cap = dist_info_cap(filename)
    read = {"entry_points.txt": lambda d: d.entry_points, "INSTALLER": lambda d: d.installer,
            "direct_url.json": lambda d: d.direct_url, "RECORD": read_record,
            "METADATA": lambda d: d.requires}[filename]
    _fill(path / filename, cap)
    read(read_distribution(path))
    over = read_distribution(path)
    _grow(path / filename, cap + 1)
    with pytest.raises(DistributionError) as caught:
        read(over)
    message = str(caught.value)
    assert str(path / filename) in message and f"{cap >> 20} MiB cap" in message
    assert f"({cap + 1} bytes)" in message
    if filename == "RECORD":
        with pytest.raises(DistributionError, match="cap"):
            find_module_dir(read_distribution(path), "big")


def test_a_huge_entry_points_file_is_refused_from_its_size_alone(tmp_path: Path) -> None:
    path = write_dist(tmp_path, "huge", "1", entry_points="[g]\n")
    _grow(path / "entry_points.txt", 384 << 20)  # sparse: read whole, 1.2 GiB of host memory
    with pytest.raises(DistributionError, match=r"entry_points\.txt is over the 1 MiB cap"):
        _ = read_distribution(path).entry_points


def test_a_dist_info_file_that_is_not_a_regular_file_is_refused(tmp_path: Path) -> None:
    path = write_dist(tmp_path, "odd", "1")
    os.mkfifo(path / "entry_points.txt")  # would block a plain open() forever
    with pytest.raises(DistributionError, match="not a regular file"):
        _ = read_distribution(path).entry_points
    assert read_dist_info_file(path / "INSTALLER") is None  # absent: None, as before
    with pytest.raises(DistributionError, match="8 bytes cap"):
        read_dist_info_file(path / "METADATA", cap=8)


def test_a_wheel_member_over_its_cap_is_refused_before_decompressing(tmp_path: Path) -> None:
    wheel = tmp_path / "w-1-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("w-1.dist-info/entry_points.txt", "#" * ((1 << 20) + 1))
        archive.writestr("w-1.dist-info/INSTALLER", "uv\n")
    with zipfile.ZipFile(wheel) as archive:
        assert read_wheel_dist_info_file(archive, "w-1.dist-info/INSTALLER", str(wheel)) == "uv\n"
        with pytest.raises(DistributionError) as caught:
            read_wheel_dist_info_file(archive, "w-1.dist-info/entry_points.txt", str(wheel))
    assert "w-1.dist-info/entry_points.txt" in str(caught.value)
    assert "1 MiB cap" in str(caught.value)


def test_a_record_csv_cannot_parse_is_a_distribution_error(tmp_path: Path) -> None:
    dist = read_distribution(write_dist(tmp_path, "wide", "1",
                                        record="a" * 200_000 + ",sha256=x,1\n"))
    with pytest.raises(DistributionError, match="not a CSV file"):
        read_record(dist)
