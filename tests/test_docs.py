"""The documentation: links and anchors resolve, the mkdocs site builds strictly, and every
``ohp`` command the guides mention exists.

The pages are read on GitHub and in a clone as well as on the site built from ``docs/``, so a
link may point at any file of the repository (a benchmark script, for instance), never outside
it; mkdocs' strict build checks the site's own links and anchors again.
"""

from __future__ import annotations

import re
import subprocess
import sys
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
PAGES = sorted(DOCS.glob("*.md"))
MARKDOWN = [REPO / "README.md", *PAGES]
# The guides whose `ohp COMMAND` mentions are checked against `ohp --help`.
GUIDES = ["user-guide.md", "getting-started.md", "embedding.md", "operator.md", "index.md"]

_FENCE = re.compile(r"^(\s*)(```|~~~)")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.S)
_INLINE_LINK = re.compile(
    r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$", re.M)
_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def _split_code(text: str) -> tuple[str, list[str]]:
    """*text* with fenced code blocks blanked out, and the code blocks themselves."""
    prose: list[str] = []
    blocks: list[str] = []
    fence: str | None = None
    current: list[str] = []
    for line in text.splitlines():
        match = _FENCE.match(line)
        if fence is None and match:
            fence = match.group(2)
            current = []
            prose.append("")
        elif fence is not None and line.strip().startswith(fence):
            fence = None
            blocks.append("\n".join(current))
            prose.append("")
        elif fence is not None:
            current.append(line)
            prose.append("")
        else:
            prose.append(line)
    return "\n".join(prose), blocks


def _without_code_spans(prose: str) -> str:
    return _CODE_SPAN.sub(lambda m: " " * len(m.group(0)), prose)


def slug(heading: str) -> str:
    """A heading's anchor as GitHub and mkdocs' toc make it: the text without Markdown
    (code marks, links, emphasis), lowercased, punctuation but '-' and '_' dropped, each space
    a '-'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # [text](url) -> text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = unicodedata.normalize("NFKC", text).replace("`", "").lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of the Markdown file *path* (repeats get -1, -2, ...)."""
    prose, _ = _split_code(path.read_text(encoding="utf-8"))
    seen: dict[str, int] = {}
    found: set[str] = set()
    for line in prose.splitlines():
        match = _HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(path: Path) -> Iterator[tuple[int, str]]:
    """``(line, target)`` of every link in *path*, outside code."""
    prose, _ = _split_code(path.read_text(encoding="utf-8"))
    prose = _without_code_spans(prose)
    for pattern in (_INLINE_LINK, _REFERENCE_LINK):
        for match in pattern.finditer(prose):
            yield prose.count("\n", 0, match.start()) + 1, match.group(1)


def test_slug_rules() -> None:
    assert slug("Lock, sync, verify") == "lock-sync-verify"
    assert slug("Corpus round trip (`bench_roundtrip.py`)") == "corpus-round-trip-bench_roundtrippy"
    assert slug("`ohp configure NAME`") == "ohp-configure-name"
    assert slug("Plugin programs: hooks and MCP servers") == "plugin-programs-hooks-and-mcp-servers"


@pytest.mark.parametrize("path", MARKDOWN, ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve(path: Path) -> None:
    problems = []
    for line, target in links(path):
        if _SCHEME.match(target) or target.startswith("//"):
            continue  # http:, https:, mailto: are not checked here
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        where = f"{path.relative_to(REPO)}:{line}: {target}"
        if not dest.exists():
            problems.append(f"{where}: no such file")
            continue
        if not dest.is_relative_to(REPO):
            problems.append(f"{where}: leaves the repository")
            continue
        if anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            problems.append(f"{where}: no heading with the anchor #{anchor} in "
                            f"{dest.relative_to(REPO)}")
    assert not problems, "\n".join(problems)


def test_mkdocs_builds_strictly(tmp_path: Path) -> None:
    site = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file",
         str(REPO / "mkdocs.yml"), "--site-dir", str(site)],
        capture_output=True, text=True, timeout=300, check=False, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert not [line for line in result.stderr.splitlines() if "WARNING" in line]
    built = {p.stem for p in site.glob("*.html")}
    assert {p.stem for p in PAGES} <= built, "every page in docs/ is built"


def _ohp_commands() -> set[str]:
    result = subprocess.run([sys.executable, "-m", "hostbridge.cli", "--help"],
                            capture_output=True, text=True, timeout=60, check=True)
    section = result.stdout.split("positional arguments:", 1)[1].split("options:", 1)[0]
    return set(re.findall(r"^ {4}([a-z][a-z-]*)(?: |$)", section, re.M))


def _mentioned_commands(path: Path) -> set[str]:
    """Commands of every ``ohp COMMAND`` in *path*'s code blocks and code spans."""
    prose, blocks = _split_code(path.read_text(encoding="utf-8"))
    code = blocks + [m.group(2) for m in _CODE_SPAN.finditer(prose)]
    pattern = re.compile(r"(?<![\w.-])ohp(?:\s+-[\w-]+)*\s+([a-z][a-z-]*)")
    return {m.group(1) for text in code for m in pattern.finditer(text)}


@pytest.mark.parametrize("name", GUIDES)
def test_guides_mention_only_existing_commands(name: str) -> None:
    known = _ohp_commands()
    assert {"install", "call", "doctor"} <= known
    mentioned = _mentioned_commands(DOCS / name)
    if name == "user-guide.md":
        assert known <= mentioned, f"commands the user guide does not cover: {known - mentioned}"
    assert mentioned <= known, f"{name} mentions commands ohp does not have: " \
        f"{sorted(mentioned - known)}"
