"""PluginSource: every accepted form, every refusal at parse time, and the metadata round trip."""

from __future__ import annotations

import subprocess
from typing import TYPE_CHECKING

import pytest
from hypothesis import given
from hypothesis import strategies as st

from isolator._errors import IsolatorError, SourceError
from isolator.sources._sources import (
    ACCEPTED_FORMS,
    PluginSource,
    classify_directory,
    is_package_dir,
    resolve_repo_path,
)

if TYPE_CHECKING:
    from pathlib import Path

# ---- accepted forms ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "spec"),
    [
        (None, ""),
        ("1.0.0", "==1.0.0"),
        ("v1.2", "==1.2"),
        (">=1.0,<2", "<2,>=1.0"),
        ("~=1.4", "~=1.4"),
        ("1.*", "==1.*"),
        (" ==2.0 ", "==2.0"),
    ],
)
def test_pypi_versions(version: str | None, spec: str) -> None:
    source = PluginSource.parse("pypi:security-scanner", version=version)
    assert source.kind == "pypi"
    assert source.name == "security-scanner"
    assert str(source.specifier) == spec
    assert source.requirement() == f"security-scanner{spec}"
    assert source.is_remote and not source.requires_allow_build


def test_pypi_name_keeps_spelling_and_canonicalises() -> None:
    source = PluginSource.parse("PYPI:Security_Scanner.x")
    assert source.source == "pypi:Security_Scanner.x"
    assert source.canonical_name == "security-scanner-x"


def test_proposal_constructor_validates_too() -> None:
    # The proposal's API: PluginSource(source=..., version=...) directly.
    assert PluginSource(source="pypi:a", version="1.0").specifier.contains("1.0")
    with pytest.raises(SourceError, match="version"):
        PluginSource(source="pypi:a", version="not a version")


@pytest.mark.parametrize(
    ("text", "url", "ref", "repo_path"),
    [
        ("github:OpenHands/extensions", "https://github.com/OpenHands/extensions.git", None, None),
        ("github:o-1/r.x.git", "https://github.com/o-1/r.x.git", None, None),
        ("git+https://example.com/o/r.git", "https://example.com/o/r.git", None, None),
        ("git+https://example.com/o/r", "https://example.com/o/r", None, None),
        ("git+https://example.com/o/r.git@v1.2#subdirectory=plugins/a",
         "https://example.com/o/r.git", "v1.2", "plugins/a"),
        ("git+ssh://git@example.com/o/r.git@main", "ssh://git@example.com/o/r.git", "main", None),
        ("https://example.com/o/r.git", "https://example.com/o/r.git", None, None),
        ("ssh://git@example.com:2222/o/r.git", "ssh://git@example.com:2222/o/r.git", None, None),
        ("git@github.com:owner/repo.git", "git@github.com:owner/repo.git", None, None),
        ("file:///srv/repos/plugin", "file:///srv/repos/plugin", None, None),
        ("git+file:///srv/repos/plugin@abc123", "file:///srv/repos/plugin", "abc123", None),
    ],
)
def test_git_forms(text: str, url: str, ref: str | None, repo_path: str | None) -> None:
    source = PluginSource(text)
    assert source.kind == "git"
    assert source.url == url
    assert (source.ref, source.repo_path) == (ref, repo_path)
    assert source.requires_allow_build
    assert source.is_remote == (not url.startswith("file:"))


def test_git_options() -> None:
    source = PluginSource.parse("github:o/r", ref="v1.0.0", repo_path="./plugins//security/")
    assert source.ref == "v1.0.0"
    assert source.repo_path == "plugins/security"


def test_local_directory_wheel_sdist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plugin = tmp_path / "plugin"
    plugin.mkdir()
    wheel = tmp_path / "my_plugin-1.0-py3-none-any.whl"
    wheel.write_bytes(b"")
    sdist = tmp_path / "my_plugin-1.0.tar.gz"
    sdist.write_bytes(b"")
    zipped = tmp_path / "my_plugin-1.0.zip"
    zipped.write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    assert PluginSource.parse("plugin").kind == "directory"  # a bare existing name is a path
    assert PluginSource.parse("./plugin").source == str(plugin)
    assert PluginSource.parse(str(plugin / "..") + "/plugin").path == plugin
    assert PluginSource.parse("my_plugin-1.0-py3-none-any.whl").kind == "wheel"
    assert PluginSource.parse(str(sdist)).kind == "sdist"
    assert PluginSource.parse(str(zipped)).kind == "sdist"
    assert not PluginSource.parse(str(wheel)).requires_allow_build
    assert PluginSource.parse(str(sdist)).requires_allow_build
    assert not PluginSource.parse("plugin").is_remote


def test_home_is_expanded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "p").mkdir()
    assert PluginSource.parse("~/p").path == tmp_path / "p"


def test_index_options(tmp_path: Path) -> None:
    source = PluginSource.parse(
        "pypi:a", index_url="https://mirror.example/simple",
        find_links=[str(tmp_path), "https://example.com/wheels/"],
    )
    assert source.find_links == (str(tmp_path), "https://example.com/wheels/")
    offline = PluginSource.parse("pypi:a", find_links=str(tmp_path), no_index=True)
    assert offline.find_links == (str(tmp_path),) and offline.no_index


# ---- refusals ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kwargs", "fragment"),
    [
        ("", {}, "empty source"),
        ("security-scanner", {}, "did you mean 'pypi:security-scanner'"),
        ("pypi:", {}, "needs a package name"),
        ("pypi:foo>=1.0", {}, "version="),
        ("pypi:foo[extra]", {}, "version="),
        ("pypi:-foo", {}, "not a valid package name"),
        ("pypi:foo", {"ref": "main"}, "ref= applies only to git"),
        ("pypi:foo", {"repo_path": "a"}, "repo_path= applies only to git"),
        ("pypi:foo", {"version": "latest"}, "neither a PEP 440 version"),
        ("pypi:foo", {"version": ""}, "non-empty"),
        ("pypi:foo", {"no_index": True}, "needs find_links"),
        ("pypi:foo", {"no_index": True, "index_url": "https://x/simple",
                      "find_links": ["/w"]}, "contradicts"),
        ("pypi:foo", {"index_url": "ftp://x/simple"}, "http(s) or file"),
        ("pypi:foo", {"find_links": ["ftp://x/"]}, "http(s) or file"),
        ("github:owner", {}, "github:OWNER/REPO"),
        ("github:own er/repo", {}, "GitHub owner"),
        ("github:o/r/extra", {}, "github:OWNER/REPO"),
        ("github:o/..", {}, "GitHub repository"),
        ("github:o/r", {"version": "1.0"}, "takes ref="),
        ("github:o/r", {"repo_path": "../up"}, "'..'"),
        ("github:o/r", {"repo_path": "/abs"}, "relative"),
        ("github:o/r", {"repo_path": "a\\b"}, "'/'"),
        ("github:o/r", {"repo_path": "."}, "repository root"),
        ("github:o/r", {"ref": "--upload-pack=evil"}, "not a valid git"),
        ("github:o/r", {"ref": "a b"}, "not a valid git"),
        ("github:o/r", {"ref": "a..b"}, "not a valid git"),
        ("git+https://h/o/r.git@v1", {"ref": "v2"}, "both in the URL"),
        ("git+http://h/o/r.git", {}, "not accepted"),
        ("http://h/o/r.git", {}, "not accepted"),
        ("git://h/o/r.git", {}, "not accepted"),
        ("https://pypi.org/simple", {}, "must end in .git"),
        ("git+https:///o/r.git", {}, "no host"),
        ("git+https://h/o/r.git?x=1", {}, "no query"),
        ("git+https://h/o/r.git#egg=x&foo=1", {}, "fragment"),
        ("file://relative/repo", {}, "absolute"),
        ("npm:left-pad", {}, "unknown source scheme"),
        ("s3://bucket/x", {}, "unknown URL scheme"),
        ("/nope/x-1.whl", {}, None),
        ("./bad.whl", {}, "wheel file name"),
        ("./bad.tar.gz", {}, "sdist file name"),
        ("./plugin.tar.bz2", {}, "unsupported archive"),
    ],
)
def test_malformed_sources_fail_at_parse(text: str, kwargs: dict[str, object], fragment: str | None
                                         ) -> None:
    with pytest.raises(SourceError) as info:
        PluginSource.parse(text, **kwargs)  # type: ignore[arg-type]
    message = str(info.value)
    assert "\n" not in message
    assert repr(text.strip()) in message or text in message
    if fragment is not None:
        assert fragment in message
    assert isinstance(info.value, IsolatorError) and isinstance(info.value, ValueError)


def test_unknown_form_lists_accepted_forms() -> None:
    with pytest.raises(SourceError) as info:
        PluginSource.parse("whatever-this-is")
    for form in ACCEPTED_FORMS:
        assert form in str(info.value)
    assert info.value.source == "whatever-this-is"


@pytest.mark.parametrize("option", ["version", "ref", "repo_path"])
def test_directory_takes_no_version_ref_or_repo_path(tmp_path: Path, option: str) -> None:
    with pytest.raises(SourceError, match=f"{option}= applies only"):
        PluginSource.parse(str(tmp_path), **{option: "1.0"})  # type: ignore[arg-type]


def test_parse_checks_local_paths_but_construction_does_not(tmp_path: Path) -> None:
    gone = tmp_path / "gone"
    assert PluginSource(str(gone)).kind == "directory"  # metadata of a removed dir still loads
    with pytest.raises(SourceError, match="does not exist"):
        PluginSource.parse(str(gone))
    (tmp_path / "file").write_text("x")
    with pytest.raises(SourceError, match="not a directory"):
        PluginSource.parse(str(tmp_path / "file"))
    with pytest.raises(SourceError, match="wheel file does not exist"):
        PluginSource.parse(str(tmp_path / "a-1.0-py3-none-any.whl"))
    with pytest.raises(SourceError, match="git repository"):
        PluginSource.parse(f"file://{gone}")
    with pytest.raises(SourceError, match="find_links directory"):
        PluginSource.parse("pypi:a", find_links=[str(gone)])


def test_requirement_only_for_pypi(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no PEP 508 requirement"):
        PluginSource.parse(str(tmp_path)).requirement()


# ---- metadata round trip -------------------------------------------------------------------


def test_round_trip_every_kind(tmp_path: Path) -> None:
    (tmp_path / "a-1.0-py3-none-any.whl").write_bytes(b"")
    sources = [
        PluginSource.parse("pypi:a", version=">=1,<2", index_url="https://m.example/simple"),
        PluginSource.parse("pypi:a", find_links=[str(tmp_path)], no_index=True),
        PluginSource.parse("github:o/r", ref="v1", repo_path="p/q"),
        PluginSource.parse("git@h.example:o/r.git"),
        PluginSource.parse(str(tmp_path)),
        PluginSource.parse(str(tmp_path / "a-1.0-py3-none-any.whl")),
    ]
    for source in sources:
        data = source.to_dict()
        assert PluginSource.from_dict(data) == source
        assert data["kind"] == source.kind


def test_from_dict_refuses_unknown_keys_and_wrong_kind() -> None:
    data = PluginSource.parse("pypi:a").to_dict()
    with pytest.raises(SourceError, match="unknown keys"):
        PluginSource.from_dict({**data, "surprise": 1})
    with pytest.raises(SourceError, match="recorded kind"):
        PluginSource.from_dict({**data, "kind": "git"})
    with pytest.raises(SourceError):
        PluginSource.from_dict({"version": "1"})


_names = st.from_regex(r"\A[A-Za-z0-9]([A-Za-z0-9._-]{0,20}[A-Za-z0-9])?\Z")
_versions = st.one_of(
    st.none(),
    st.from_regex(r"\A[0-9]{1,3}(\.[0-9]{1,3}){0,2}\Z"),
    st.sampled_from([">=1.0,<2", "~=2.1", "!=1.5", "==1.*"]),
)


@given(name=_names, version=_versions)
def test_pypi_round_trip_property(name: str, version: str | None) -> None:
    source = PluginSource.parse(f"pypi:{name}", version=version)
    assert PluginSource.from_dict(source.to_dict()) == source
    assert source.requirement().startswith(name)


# ---- directories: package or content-only -------------------------------------------------


def test_classify_directory(tmp_path: Path) -> None:
    assert classify_directory(tmp_path) == "content-only"
    assert not is_package_dir(tmp_path)
    (tmp_path / "pyproject.toml").write_text("[project]\nname='x'\n")
    assert classify_directory(tmp_path) == "package"
    assert is_package_dir(tmp_path)
    with pytest.raises(SourceError, match="does not exist"):
        classify_directory(tmp_path / "missing")


def test_pyproject_must_be_a_file(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").mkdir()
    assert classify_directory(tmp_path) == "content-only"


def test_resolve_repo_path_in_a_real_checkout(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "plugins" / "sec").mkdir(parents=True)
    (repo / "plugins" / "sec" / "pyproject.toml").write_text("")
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    source = PluginSource.parse(f"file://{repo}", repo_path="plugins/sec")
    target = resolve_repo_path(repo, source.repo_path)
    assert target == (repo / "plugins" / "sec").resolve()
    assert classify_directory(target) == "package"
    assert resolve_repo_path(repo, None) == repo
    (repo / "escape").symlink_to(tmp_path)
    with pytest.raises(SourceError, match="outside the repository"):
        resolve_repo_path(repo, "escape")
    with pytest.raises(SourceError, match="not a directory"):
        resolve_repo_path(repo, "plugins/none")


@pytest.mark.parametrize(("source", "repo_path", "expected"), [
    ("github:acme/tools", None, "tools"),
    ("git+https://example.org/acme/tools.git", None, "tools"),
    ("git@example.org:acme/tools.git", None, "tools"),
    ("github:acme/tools", "plugins/scanner", "scanner"),
    ("pypi:openhands-plugin-x", None, None),
])
def test_default_name_is_what_a_plugin_without_manifest_is_named(
        source: str, repo_path: str | None, expected: str | None) -> None:
    assert PluginSource(source, repo_path=repo_path).default_name == expected


def test_default_name_of_a_directory_is_its_name(tmp_path: Path) -> None:
    (tmp_path / "my-tool").mkdir()
    assert PluginSource.parse(str(tmp_path / "my-tool")).default_name == "my-tool"
