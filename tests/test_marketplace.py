"""Marketplaces: registered by name, plugins installed from them by name (issue #18, part 3).

On a copy of a real layout (OpenHands/extensions, from ``../shared/layouts``: its marketplaces
and the symlinks its plugins use for their skills) made a git repository, on small marketplace
repositories built here, and against the OpenHands SDK's own resolution (the oracle venv).
Real git, real uv; nothing is mocked.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from typing import TYPE_CHECKING, Any

import oracle
import pytest
from plugin_fixtures import write_tree

from isolator import (
    MarketplaceError,
    MarketplaceLookupError,
    PluginSource,
    PluginStore,
    SourceError,
    StoreError,
)

if TYPE_CHECKING:
    from pathlib import Path

OHP = [sys.executable, "-m", "isolator.cli"]


def _git(cwd: Path, *args: str) -> str:
    env = {"PATH": os.environ["PATH"], "HOME": str(cwd), "GIT_AUTHOR_NAME": "t",
           "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@e"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          check=True).stdout.strip()


def git_repo(path: Path) -> str:
    """Make *path* a git repository with everything in it committed; returns the commit."""
    _git(path, "init", "-q", "-b", "main")
    return commit_all(path, "one")


def commit_all(path: Path, message: str) -> str:
    _git(path, "add", "-A")
    _git(path, "commit", "-q", "-m", message)
    return _git(path, "rev-parse", "HEAD")


def ohp(*args: str, root: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    argv = [*OHP, *args, "--root", str(root)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"{argv} exited {result.returncode}: {result.stderr}")
    return result


def registry(root: Path) -> dict[str, Any] | None:
    path = root / "marketplaces.json"
    return json.loads(path.read_text()) if path.exists() else None


@pytest.fixture
def extensions(shared_dir: Path, tmp_path: Path) -> Path:
    """OpenHands/extensions as the archive keeps it (symlinks included), a git repository."""
    archive = shared_dir / "layouts" / "OpenHands__extensions.tar.gz"
    if not archive.exists():
        pytest.skip(f"{archive} is missing") if not oracle.in_ci() else \
            pytest.fail(f"{archive} is missing")
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path / "x", filter="tar")
    repo = tmp_path / "x" / "OpenHands__extensions"
    git_repo(repo)
    return repo


def market_file(name: str, plugins: list[Any], **extra: Any) -> str:
    return json.dumps({"name": name, "owner": {"name": "Tests"}, "plugins": plugins, **extra})


def skill(name: str) -> str:
    return f"---\nname: {name}\ndescription: the {name} skill\n---\nDo {name}.\n"


def small_market(tmp_path: Path, plugins: list[Any] | None = None,
                 manifest_dir: str = ".plugin") -> Path:
    """A marketplace repository of our own: two content-only plugins, one whose skill is a
    symlink into the repository's shared skills/ (as OpenHands/extensions does)."""
    repo = tmp_path / "market"
    write_tree(repo, {
        "plugins/alpha/.plugin/plugin.json": json.dumps({"name": "alpha", "version": "1.2.0"}),
        "plugins/alpha/skills/a/SKILL.md": skill("a"),
        "plugins/beta/.plugin/plugin.json": json.dumps({"name": "beta"}),
        "skills/shared/SKILL.md": skill("shared"),
        f"{manifest_dir}/marketplace.json": market_file("small", plugins if plugins is not None
                                                        else [
            {"name": "alpha", "source": "./plugins/alpha", "description": "Alpha"},
            {"name": "beta", "source": "plugins/beta", "version": "0.1"}]),
    })
    (repo / "plugins/beta/skills").mkdir()
    (repo / "plugins/beta/skills/shared").symlink_to("../../../skills/shared")
    git_repo(repo)
    return repo


# ---- the real layout -----------------------------------------------------------------------


def test_pr_review_installs_by_name_from_a_repository_laid_out_like_openhands_extensions(
        extensions: Path, tmp_path: Path) -> None:
    store = PluginStore(tmp_path / "store")
    head = _git(extensions, "rev-parse", "HEAD")
    market = store.add_marketplace("extensions", f"file://{extensions}")
    assert market.commit == head and market.manifest == ".plugin/marketplace.json"
    assert market.title == "openhands-extensions" and market.owner == "OpenHands"
    assert len(market.plugins) == 63 and all(e.error is None for e in market.plugins)

    installed = store.install("pr-review@extensions")  # the same rule as `ohp install`
    assert installed.name == "pr-review" and installed.kind == "content-only"
    assert installed.git_commit == head
    assert installed.source.repo_path == "plugins/pr-review" and installed.source.ref == head
    # Its skills are symlinks to the repository's top-level skills/ (outside the plugin).
    assert sorted(s.name for s in store.load("pr-review").skills) == [
        "code-review", "github-pr-review"]
    origin = store.marketplace_origin("pr-review")
    assert origin is not None and origin.reference == "pr-review@extensions"
    assert origin.commit == head


def test_the_cli_installs_a_bare_name_from_the_one_marketplace_that_has_it(
        extensions: Path, tmp_path: Path) -> None:
    root = tmp_path / "store"
    added = ohp("marketplace", "add", "extensions", f"file://{extensions}", root=root)
    assert added.stdout.startswith("added marketplace extensions (file://")
    assert "63 plugins" in added.stdout
    listed = ohp("marketplace", "list", root=root).stdout.splitlines()
    assert listed[0].split() == ["NAME", "PLUGINS", "COMMIT", "SOURCE"]
    assert listed[1].split()[:2] == ["extensions", "63"]
    plugins = ohp("marketplace", "list", "extensions", root=root).stdout
    assert "pr-review" in plugins and "Automated PR code review" in plugins

    done = ohp("install", "pr-review", root=root)
    assert done.stdout.startswith("installed pr-review 0.1.0 (content only) from "
                                  "pr-review@extensions (file://")
    table = ohp("list", root=root).stdout
    assert "pr-review@extensions" in table
    shown = json.loads(ohp("show", "pr-review", "--json", root=root).stdout)
    assert shown["installed"]["marketplace"]["reference"] == "pr-review@extensions"
    assert {s["name"] for s in shown["skills"]} == {"code-review", "github-pr-review"}
    assert "marketplace   pr-review@extensions" in ohp("show", "pr-review", root=root).stdout
    as_json = json.loads(ohp("marketplace", "list", "--json", root=root).stdout)
    assert [m["name"] for m in as_json] == ["extensions"]
    assert {"name", "source", "ref", "repo_path", "commit", "plugins"} <= set(as_json[0])

    missing = ohp("install", "pr-reviews", root=root, check=False)
    assert missing.returncode == 1
    assert "pr-reviews" in missing.stderr and "pr-review@extensions" in missing.stderr

    removed = ohp("marketplace", "remove", "extensions", root=root)
    assert removed.stdout.strip() == "removed marketplace extensions"
    assert "no marketplaces registered" in ohp("marketplace", "list", root=root).stdout
    assert "pr-review" in ohp("list", root=root).stdout  # installed plugins stay


def test_our_resolution_is_the_sdks(extensions: Path, tmp_path: Path,
                                    oracle_python: Path) -> None:
    """Every entry of the real marketplace, bare names, an ambiguous one, unknown ones, and
    remote sources of our own marketplace: resolved by the SDK 1.58 and by us, the same."""
    own = small_market(tmp_path, [
        {"name": "alpha", "source": "./plugins/alpha"},
        {"name": "pr-review", "source": "./plugins/beta"},
        {"name": "gh", "source": {"source": "github", "repo": "acme/tools", "ref": "v1",
                                  "path": "plugins/gh"}},
        {"name": "url", "source": {"source": "url", "url": "https://git.example/x.git"}},
    ])
    store = PluginStore(tmp_path / "store")
    store.add_marketplace("ext", f"file://{extensions}")
    store.add_marketplace("own", f"file://{own}")
    names = [e.name for e in store.get_marketplace("ext").plugins]
    refs = ([f"{n}@ext" for n in names] + ["alpha", "gh@own", "url@own", "pr-review",
                                            "pr-review@own", "nope@ext", "x@nope", "nope"])
    script = (
        "import json, sys\n"
        "from openhands.sdk.marketplace.registry import MarketplaceRegistry\n"
        "from openhands.sdk.marketplace.registration import MarketplaceRegistration\n"
        "reg = MarketplaceRegistry([MarketplaceRegistration(name=n, source=s)\n"
        "                           for n, s in json.loads(sys.argv[1])])\n"
        "out = {}\n"
        "for ref in json.loads(sys.argv[2]):\n"
        "    try:\n"
        "        s = reg.resolve_plugin(ref)\n"
        "        out[ref] = [s.source, s.ref, s.repo_path]\n"
        "    except Exception as e:\n"
        "        out[ref] = type(e).__name__\n"
        "print(json.dumps(out))\n")
    result = subprocess.run(
        [str(oracle_python), "-c", script,
         json.dumps([["ext", str(extensions)], ["own", str(own)]]), json.dumps(refs)],
        capture_output=True, text=True, env=oracle.oracle_env(), timeout=300, check=True)
    sdk = json.loads(result.stdout.strip().splitlines()[-1])
    errors = {"ambiguous": "AmbiguousPluginError", "unknown-plugin": "PluginNotFoundError",
              "unknown-marketplace": "MarketplaceNotFoundError"}
    bases = {"ext": extensions, "own": own}
    for ref in refs:
        try:
            ours = store.resolve_plugin(ref)
        except MarketplaceLookupError as exc:
            assert sdk[ref] == errors[exc.problem], ref
            continue
        expected = sdk[ref]
        assert isinstance(expected, list), (ref, expected)
        src = ours.source
        if src.source.startswith("file:"):  # a relative entry: the SDK gives the path in it
            base = bases[ours.marketplace.name]
            assert expected[0] == str(base / (src.repo_path or "")), ref
            assert src.ref == ours.marketplace.commit
        else:
            assert [src.source.removeprefix("git+"), src.ref, src.repo_path] == expected, ref


# ---- our own marketplaces --------------------------------------------------------------------


def test_both_marketplace_file_places_are_read_and_plugin_wins(tmp_path: Path) -> None:
    repo = small_market(tmp_path, manifest_dir=".claude-plugin")
    store = PluginStore(tmp_path / "store")
    market = store.add_marketplace("m", f"git+{repo.as_uri()}")
    assert market.manifest == ".claude-plugin/marketplace.json"
    assert [e.name for e in market.plugins] == ["alpha", "beta"]
    write_tree(repo, {".plugin/marketplace.json": market_file("other", [
        {"name": "gamma", "source": "./plugins/alpha"}])})
    commit_all(repo, "two")
    market = store.update_marketplace("m")
    assert market.manifest == ".plugin/marketplace.json"  # the SDK's order: .plugin first
    assert [e.name for e in market.plugins] == ["gamma"] and market.title == "other"


def test_relative_entries_install_from_the_recorded_commit_until_updated(
        tmp_path: Path) -> None:
    repo = small_market(tmp_path)
    first = _git(repo, "rev-parse", "HEAD")
    store = PluginStore(tmp_path / "store")
    store.add_marketplace("m", f"git+{repo.as_uri()}")
    write_tree(repo, {"plugins/alpha/skills/later/SKILL.md": skill("later")})
    second = commit_all(repo, "two")

    alpha = store.install_from_marketplace("alpha@m")
    assert alpha.git_commit == first and alpha.version == "1.2.0"
    assert [s.name for s in store.load("alpha").skills] == ["a"]
    beta = store.install("beta")  # bare: the only marketplace has it
    assert beta.source.repo_path == "plugins/beta"
    assert [s.name for s in store.load("beta").skills] == ["shared"]  # a symlink in the repo

    assert store.update_marketplace("m").commit == second
    store.install("alpha@m", upgrade=True)
    assert sorted(s.name for s in store.load("alpha").skills) == ["a", "later"]
    assert store.get("alpha").git_commit == second
    origins = store.marketplace_origins()
    assert {n: o.reference for n, o in origins.items()} == {"alpha": "alpha@m",
                                                            "beta": "beta@m"}
    assert origins["alpha"].commit == second and origins["beta"].commit == first
    # Installed again from elsewhere, it no longer says it came from the marketplace.
    store.uninstall("alpha")
    store.install(str(repo / "plugins" / "alpha"))
    assert store.marketplace_origin("alpha") is None
    assert set(store.marketplace_origins()) == {"beta"}


def test_a_marketplace_in_a_subdirectory_of_its_repository(tmp_path: Path) -> None:
    repo = tmp_path / "mono"
    write_tree(repo, {
        "tools/catalogue/.claude-plugin/marketplace.json": market_file("sub", [
            {"name": "alpha", "source": "./plugins/alpha"}]),
        "tools/catalogue/plugins/alpha/skills/a/SKILL.md": skill("a"),
        "README.md": "a monorepo\n",
    })
    git_repo(repo)
    store = PluginStore(tmp_path / "store")
    with pytest.raises(MarketplaceError, match=r"has no \.plugin/marketplace\.json"):
        store.add_marketplace("m", repo.as_uri())  # the marketplace is not at the root
    market = store.add_marketplace("m", repo.as_uri(), repo_path="tools/catalogue")
    assert market.source.repo_path == "tools/catalogue"
    installed = store.install("alpha@m")
    assert installed.source.repo_path == "tools/catalogue/plugins/alpha"
    assert [s.name for s in store.load("alpha").skills] == ["a"]


def test_a_pip_entry_installs_through_the_normal_pipeline(
        tmp_path: Path, example_wheelhouse: Path) -> None:
    repo = small_market(tmp_path, [
        {"name": "shout", "source": {"source": "pip", "package": "openhands-plugin-shout"}}])
    store = PluginStore(tmp_path / "store")
    store.add_marketplace("m", repo.as_uri())
    installed = store.install_from_marketplace("shout@m", find_links=[example_wheelhouse],
                                               no_index=True)
    assert installed.kind == "package" and installed.package == "openhands-plugin-shout"
    assert installed.source.source == "pypi:openhands-plugin-shout"
    assert store.marketplace_origin("shout") is not None


def test_a_local_directory_marketplace(tmp_path: Path) -> None:
    repo = small_market(tmp_path)
    store = PluginStore(tmp_path / "store")
    market = store.add_marketplace("local", str(repo))
    assert market.commit is None and market.source.kind == "directory"
    resolved = store.resolve_plugin("alpha@local")
    assert resolved.source == PluginSource(str(repo / "plugins" / "alpha"))
    assert store.install("alpha@local").kind == "content-only"


def test_remote_entries_map_to_ordinary_sources(tmp_path: Path) -> None:
    repo = small_market(tmp_path, [
        {"name": "gh", "source": {"source": "github", "repo": "acme/tools", "ref": "main",
                                  "sha": "a" * 40, "path": "plugins/gh"}},
        {"name": "url", "source": {"source": "url", "url": "https://git.example/team/p"}},
        {"name": "sub", "source": {"source": "git-subdir", "url": "ssh://git.example/r.git",
                                   "path": "x/y", "ref": "v2"}},
        {"name": "pypi", "source": {"source": "pypi", "package": "some-plugin",
                                    "version": ">=1,<2"}},
        {"name": "str-gh", "source": "github:acme/other"},
        {"name": "str-pypi", "source": "pypi:other-plugin"},
        {"name": "str-url", "source": "https://git.example/team/q.git"},
        {"name": "root", "source": "./"},
    ])
    store = PluginStore(tmp_path / "store")
    market = store.add_marketplace("m", f"git+{repo.as_uri()}", ref="main")
    assert all(e.error is None for e in market.plugins), market.plugins
    got = {e.name: store.resolve_plugin(f"{e.name}@m").source for e in market.plugins}
    assert got["gh"] == PluginSource("github:acme/tools", ref="a" * 40, repo_path="plugins/gh")
    assert got["url"] == PluginSource("git+https://git.example/team/p")
    assert got["sub"] == PluginSource("ssh://git.example/r.git", ref="v2", repo_path="x/y")
    assert got["pypi"] == PluginSource("pypi:some-plugin", version=">=1,<2")
    assert got["str-gh"] == PluginSource("github:acme/other")
    assert got["str-pypi"] == PluginSource("pypi:other-plugin")
    assert got["str-url"] == PluginSource("https://git.example/team/q.git")
    assert got["root"] == PluginSource(f"git+{repo.as_uri()}", ref=market.commit)
    with_index = store.resolve_plugin("pypi@m", find_links=[tmp_path], no_index=True).source
    assert with_index.find_links == (str(tmp_path),) and with_index.no_index


# ---- hostile marketplace files ---------------------------------------------------------------


BAD_ENTRIES: list[tuple[Any, str]] = [
    ("../../etc", "'..'"),
    ("./plugins/../../x", "'..'"),
    ("/etc", "absolute path"),
    ("~/plugins/x", "absolute path"),
    ("./plugins/missing", "not a directory"),
    ("./escape", "outside the repository"),
    ("svn:foo", "no known source kind"),
    ("http://git.example/x.git", "not accepted"),
    ("file:///etc", "file: URL"),
    ({"source": "url", "url": "file:///srv/repo"}, "file: URL"),
    ("./a\x1b]0;x\x07", "control characters"),
    ("x" * 5000, "longer than"),
    ({"source": "npm", "package": "x"}, "npm"),
    ({"source": "svn", "url": "x"}, "unknown source kind"),
    ({"source": "github"}, "needs 'repo'"),
    ({"source": "github", "repo": "../../etc"}, "github"),
    ({"source": "github", "repo": "a/b", "path": "../up"}, "'..'"),
    ({"source": "pip", "package": "x", "registry": "https://evil.example/"}, "registry"),
    ({"source": "url", "url": 5}, "'url' must be a string"),
    ({"url": "https://x/y.git"}, "'source' kind"),
    (["./plugins/alpha"], "string or an object"),
    (7, "string or an object"),
]


def test_bad_entry_sources_are_recorded_and_refused_by_name(tmp_path: Path) -> None:
    plugins = [{"name": "alpha", "source": "./plugins/alpha"}] + [
        {"name": f"bad{i}", "source": source} for i, (source, _) in enumerate(BAD_ENTRIES)]
    repo = small_market(tmp_path, plugins)
    (repo / "escape").symlink_to(tmp_path)  # a directory outside the repository
    commit_all(repo, "escape")
    store = PluginStore(tmp_path / "store")
    market = store.add_marketplace("m", repo.as_uri())
    alpha = market.plugin("alpha")
    assert alpha is not None and alpha.error is None
    for i, (_source, reason) in enumerate(BAD_ENTRIES):
        entry = market.plugin(f"bad{i}")
        assert entry is not None and entry.error is not None and reason in entry.error, \
            (i, entry)
        with pytest.raises(MarketplaceError, match=rf"plugin 'bad{i}' of marketplace 'm'"):
            store.install(f"bad{i}@m")
    assert store.list_installed() == []
    shown = ohp("marketplace", "add", "n", repo.as_uri(), root=tmp_path / "store")
    assert "not installable: bad0: " in shown.stdout and "\x1b" not in shown.stdout


def _hostile(tmp_path: Path, text: str | bytes) -> Path:
    repo = tmp_path / "hostile"
    write_tree(repo, {".plugin/marketplace.json": text})
    return repo


@pytest.mark.parametrize(("text", "reason"), [
    ("{not json", "not valid JSON"),
    (b"\xff\xfe{}", "not UTF-8"),
    ("[]", "expected a JSON object"),
    (json.dumps({"plugins": {"a": 1}}), "'plugins' must be a list"),
    (json.dumps({"plugins": ["x"]}), "plugins[0]: expected an object"),
    (json.dumps({"plugins": [{"source": "./x"}]}), "plugins[0]: has no 'name'"),
    (json.dumps({"plugins": [{"name": "../x", "source": "./x"}]}), "expected letters"),
    (json.dumps({"plugins": [{"name": "a b", "source": "./x"}]}), "expected letters"),
    (json.dumps({"plugins": [{"name": "a\x1b[2J", "source": "./x"}]}), "expected letters"),
    (json.dumps({"plugins": [{"name": "a"}]}), "has no 'source'"),
    (json.dumps({"plugins": [{"name": "a", "source": "./a"}, {"name": "a", "source": "./b"}]}),
     "listed twice"),
    (json.dumps({"plugins": [{"name": "a", "source": "./a", "description": 3}]}),
     "'description' must be a string"),
    (json.dumps({"name": 5, "plugins": []}), "'name' must be a string"),
    (json.dumps({"plugins": [{"name": f"p{i}", "source": "./x"} for i in range(10_001)]}),
     "at most 10000"),
    ("[" * 100_000 + "]" * 100_000, "nests too deeply"),
    (" " * (4 << 20) + "{}", "larger than 4 MiB"),
])
def test_a_hostile_marketplace_file_is_refused_and_nothing_is_registered(
        tmp_path: Path, text: str | bytes, reason: str) -> None:
    repo = _hostile(tmp_path, text)
    store = PluginStore(tmp_path / "store")
    with pytest.raises(MarketplaceError, match="marketplace 'm'") as caught:
        store.add_marketplace("m", str(repo))
    assert reason in str(caught.value)
    assert registry(tmp_path / "store") is None and store.marketplaces() == []


def test_a_marketplace_file_may_not_lead_outside_the_repository(tmp_path: Path) -> None:
    secret = tmp_path / "secret.json"
    secret.write_text(market_file("s", [{"name": "a", "source": "./a"}]))
    repo = tmp_path / "r"
    (repo / ".plugin").mkdir(parents=True)
    (repo / ".plugin" / "marketplace.json").symlink_to(secret)
    store = PluginStore(tmp_path / "store")
    with pytest.raises(MarketplaceError, match="leads outside the repository"):
        store.add_marketplace("m", str(repo))
    (repo / ".plugin" / "marketplace.json").unlink()
    (repo / ".plugin" / "marketplace.json").symlink_to("/dev/zero")
    with pytest.raises(MarketplaceError, match="outside"):
        store.add_marketplace("m", str(repo))
    shutil.rmtree(repo / ".plugin")
    (repo / ".plugin").mkdir()
    os.mkfifo(repo / ".plugin" / "marketplace.json")
    with pytest.raises(MarketplaceError, match="not a regular file"):
        store.add_marketplace("m", str(repo))
    shutil.rmtree(repo / ".plugin")
    with pytest.raises(MarketplaceError, match=r"has no \.plugin/marketplace\.json nor "
                       r"\.claude-plugin/marketplace\.json"):
        store.add_marketplace("m", str(repo))
    assert store.marketplaces() == []


@pytest.mark.parametrize(("name", "source", "error"), [
    ("bad name", "DIR", StoreError),
    ("../m", "DIR", StoreError),
    ("m", "pypi:some-plugin", SourceError),
    ("m", "./nowhere", SourceError),
])
def test_bad_registrations_are_refused(tmp_path: Path, name: str, source: str,
                                       error: type[Exception]) -> None:
    repo = small_market(tmp_path)
    store = PluginStore(tmp_path / "store")
    with pytest.raises(error):
        store.add_marketplace(name, str(repo) if source == "DIR" else source)
    with pytest.raises(SourceError, match="repo_path"):
        store.add_marketplace("m", str(repo), repo_path="sub")  # only for git sources
    with pytest.raises(SourceError, match=r"'\.\.'"):
        store.add_marketplace("m", repo.as_uri(), repo_path="../x")
    assert store.marketplaces() == []


# ---- names -----------------------------------------------------------------------------------


def test_unknown_and_ambiguous_names_list_the_candidates(tmp_path: Path) -> None:
    one = small_market(tmp_path / "1")
    two = small_market(tmp_path / "2", [{"name": "alpha", "source": "./plugins/alpha"},
                                        {"name": "alpine", "source": "./plugins/beta"}])
    store = PluginStore(tmp_path / "store")
    with pytest.raises(MarketplaceLookupError, match="none is") as caught:
        store.install("alpha@m1")
    assert caught.value.problem == "unknown-marketplace"
    store.add_marketplace("m1", one.as_uri())
    store.add_marketplace("m2", two.as_uri())
    with pytest.raises(MarketplaceError, match="registered already"):
        store.add_marketplace("m1", two.as_uri())

    with pytest.raises(MarketplaceLookupError) as caught:
        store.install("alpha@mm1")
    assert caught.value.problem == "unknown-marketplace"
    assert caught.value.candidates == ("m1", "m2")
    with pytest.raises(MarketplaceLookupError) as caught:
        store.install("alpah@m2")
    assert caught.value.problem == "unknown-plugin"
    assert caught.value.candidates[0] == "alpha" and set(caught.value.candidates) == {
        "alpha", "alpine"}
    assert "not in marketplace 'm2'; its plugins are: alpha, alpine" in str(caught.value)
    with pytest.raises(MarketplaceLookupError) as caught:
        store.install("alpha")
    assert caught.value.problem == "ambiguous"
    assert caught.value.candidates == ("alpha@m1", "alpha@m2")
    with pytest.raises(MarketplaceLookupError) as caught:
        store.install("alpin")
    assert caught.value.candidates[0] == "alpine@m2"  # the closest first
    with pytest.raises(MarketplaceLookupError, match="pypi:requests") as caught:
        store.install("requests@2.0")
    assert store.install("beta").name == "beta"
    assert store.list_installed()[0].name == "beta"
    assert [m.name for m in store.marketplaces()] == ["m1", "m2"]
    assert store.remove_marketplace("m1").name == "m1"
    with pytest.raises(MarketplaceLookupError, match="registered marketplaces are: m2"):
        store.remove_marketplace("m1")
    assert store.install("alpha").source.source == two.as_uri()


def test_which_strings_are_marketplace_references(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    store = PluginStore(tmp_path / "store")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dir@with-at").mkdir()
    (tmp_path / "plain-dir").mkdir()
    never = ["pypi:foo", "pypi:foo@1.0", "github:o/r", "git+https://h/r.git@v1",
             "https://h/r.git@main", "git@github.com:o/r.git", "./x@y", "a/b@c", "dir@with-at",
             "plain-dir", "x.whl", ".hidden", "", "a@b@c", "a@", "@b"]
    for text in never:
        assert not store.is_marketplace_reference(text), text
    assert store.is_marketplace_reference("pr-review@extensions")
    assert store.is_marketplace_reference("a.b_c-d@M.1")
    assert not store.is_marketplace_reference("pr-review")  # no marketplace registered yet
    with pytest.raises(SourceError, match="pypi:pr-review"):  # as before marketplaces
        store.install("pr-review")
    store.add_marketplace("m", small_market(tmp_path).as_uri())
    assert store.is_marketplace_reference("pr-review")
    for text in never:
        assert not store.is_marketplace_reference(text), text
    with pytest.raises(SourceError, match="version"):
        store.install("alpha@m", version="1.0")
    # An existing directory is always a path, even with an '@' in its name.
    assert store.install("plain-dir").source.kind == "directory"


def test_the_registry_is_written_atomically_and_a_damaged_one_is_named(tmp_path: Path) -> None:
    store = PluginStore(tmp_path / "store")
    store.add_marketplace("m", small_market(tmp_path).as_uri())
    leftovers = [p.name for p in (tmp_path / "store").iterdir()
                 if p.name.startswith(".marketplaces.json.")]
    assert leftovers == []
    (tmp_path / "store" / "marketplaces.json").write_text("{")
    with pytest.raises(StoreError, match=r"marketplaces\.json: cannot be read as JSON"):
        store.marketplaces()
    with pytest.raises(StoreError, match=r"marketplaces\.json"):
        store.install("alpha@m")
