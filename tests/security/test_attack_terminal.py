"""A plugin that goes after the terminal of the person running ``ohp`` (#15, class 5).

Every string the escapes plugin gives the host carries escape sequences: ESC ] 0 ; ... BEL
(the terminal's title), ESC [ 2 J (clear the screen), CR (overwrite the line), 0x9b (the C1
CSI), U+202E (reverse what follows), DEL and NUL. They are in its plugin.json (description,
author, a command path that becomes a diagnostic), in skill, command and agent frontmatter,
in hooks.json and .mcp.json, in a tool's name (an entry point name) and description, in tool
results and raised errors, and in what its worker writes to stderr before it dies.

The real ``ohp`` runs as a subprocess; whatever it prints for a person must hold none of them:
no byte 0x00-0x1f but newline and tab, no DEL, no C1 control, no bidi control, and valid
UTF-8. The text is still there, made visible (``\\x1b]0;pwned\\x07``). ``--json`` output is
valid JSON that decodes to the plugin's exact strings. What ``ohp`` writes on purpose (bold on
a terminal, the progress line's CR) still reaches a terminal.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest
from secsupport import make_store

if TYPE_CHECKING:
    from pathlib import Path

    from isolator import PluginStore

SOURCE = "pypi:openhands-plugin-escapes"
EVIL_TOOL = "evil\x1b]0;pwned\x07\x1b[2J\x9b31m\u202e"
DESCRIPTION = ("Harmless\x1b]0;pwned-title\x07\x1b[2J\x1b[H\rFAKE: all checks passed\x9b31m"
               "\u202edesrever\x7f")
# What may not reach a terminal: C0 controls but newline and tab, DEL, C1 controls, the bidi
# controls (embeddings, overrides, isolates, marks), line and paragraph separators, and lone
# surrogates (not UTF-8 at all).
UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029"
                    "\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def inert(data: bytes, what: str) -> str:
    """*data* decoded, asserting it is UTF-8 that holds no control character but \\n and \\t."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise AssertionError(f"{what}: not UTF-8 ({exc}): {data[:400]!r}") from None
    found = UNSAFE.search(text)
    assert found is None, (f"{what}: {found.group()!r} at {found.start()} reaches the terminal:"
                           f" {text[max(0, found.start() - 200):found.start() + 200]!r}")
    return text


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONUTF8": "1", "COLUMNS": "200"}


def ohp(store_root: Path, *args: str, code: int | None = 0,
        timeout: float = 180) -> tuple[str, str]:
    """Run ``ohp ARGS --root STORE``; its stdout and stderr, each checked inert."""
    argv = [sys.executable, "-m", "hostbridge.cli", *args, "--root", str(store_root)]
    if "--" in args:  # ohp exec: --root goes before the program's argv
        split = args.index("--")
        argv = [sys.executable, "-m", "hostbridge.cli", *args[:split], "--root",
                str(store_root), *args[split:]]
    result = subprocess.run(argv, capture_output=True, timeout=timeout, check=False, env=env())
    where = f"ohp {' '.join(args)!r}"
    out = inert(result.stdout, f"{where}: stdout")
    err = inert(result.stderr, f"{where}: stderr")
    if code is not None:
        assert result.returncode == code, f"{where}: exit {result.returncode}\n{out}\n{err}"
    return out, err


def on_a_terminal(argv: list[str], timeout: float = 180) -> bytes:
    """Run *argv* with stdout and stderr on one pseudo-terminal; everything it wrote there."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=follower, stderr=follower,
                            env={k: v for k, v in env().items() if k != "NO_COLOR"})
    os.close(follower)
    chunks = []
    try:
        while True:
            ready, _, _ = select.select([leader], [], [], timeout)
            if not ready:
                raise AssertionError(f"{argv}: no output for {timeout} s")
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: every writer closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(leader)
        proc.wait(timeout=60)
    return b"".join(chunks)


@pytest.fixture(scope="module")
def escapes_store(sec_root: Path, attack_wheelhouse: Path, plugin_python: str) -> PluginStore:
    return make_store(sec_root / "terminal", attack_wheelhouse, plugin_python, sources=(SOURCE,))


@pytest.fixture(autouse=True)
def _forget_crashes(request: pytest.FixtureRequest) -> None:
    """The crash test kills the worker: each test starts with no crash remembered."""
    if "escapes_store" in request.fixturenames:
        state = request.getfixturevalue("escapes_store").root / "state"
        for record in state.glob("*.json") if state.is_dir() else ():
            record.unlink(missing_ok=True)


def test_install_output_is_inert(sec_tmp: Path, attack_wheelhouse: Path,
                                 plugin_python: str) -> None:
    out, _ = ohp(sec_tmp / "store", "install", SOURCE, "--find-links", str(attack_wheelhouse),
                 "--no-index", "--python", plugin_python)
    assert out.startswith("installed escapes 1.0.0")
    assert "escapes asks for:" in out  # the permissions, with the plugin's name


def test_show_makes_every_control_character_visible(escapes_store: PluginStore) -> None:
    out, _ = ohp(escapes_store.root, "show", "escapes")
    assert r"Harmless\x1b]0;pwned-title\x07\x1b[2J\x1b[H" in out  # the description, shown
    assert r"\u202e" in out and r"\x9b" in out and r"\x7f" in out
    for seen in ("Mallory", "skill-title", "command-title", "agent-title", "hook-title",
                 "mcp-title", "diagnostic-title", "tool evil"):
        assert seen in out, seen


def test_show_json_is_exact_and_inert(escapes_store: PluginStore) -> None:
    out, _ = ohp(escapes_store.root, "show", "escapes", "--json")
    data = json.loads(out)
    assert data["manifest"]["description"] == DESCRIPTION
    assert EVIL_TOOL in data["installed"]["entry_points"]["openhands.tools"]


def test_show_of_a_directory_is_inert(escapes_store: PluginStore) -> None:
    content = escapes_store.get("escapes").content_dir
    out, _ = ohp(escapes_store.root, "show", str(content))
    assert "diagnostic-title" in out


def test_list_is_inert(escapes_store: PluginStore) -> None:
    out, _ = ohp(escapes_store.root, "list")
    assert "escapes" in out
    assert json.loads(ohp(escapes_store.root, "list", "--json")[0])[0]["name"] == "escapes"


def test_tools_are_inert(escapes_store: PluginStore) -> None:
    out, _ = ohp(escapes_store.root, "tools", "escapes")
    assert "tool-title" in out and r"evil\x1b]0;pwned\x07" in out
    specs = json.loads(ohp(escapes_store.root, "tools", "escapes", "--json")[0])
    assert EVIL_TOOL in [spec["name"] for spec in specs]


def test_call_results_and_errors_are_inert(escapes_store: PluginStore) -> None:
    out, _ = ohp(escapes_store.root, "call", "escapes", "shout", "--args",
                 json.dumps({"text": "hi\x1b]0;from-the-user\x07"}))
    assert out.startswith(r"hi\x1b]0;from-the-user\x07\x1b]0;pwned\x07")
    out, _ = ohp(escapes_store.root, "call", "escapes", EVIL_TOOL, "--args", '{"text": "x"}')
    assert r"\x1b[2J" in out
    out, _ = ohp(escapes_store.root, "call", "escapes", "structured")
    assert "pwned" in out
    data = json.loads(ohp(escapes_store.root, "call", "escapes", "structured", "--json")[0])
    assert data["content"]["key\x1b]0;pwned\x07\x1b[2J\x1b[H\rFAKE\x9b31m\u202eesrever\x7f\x00"]
    _, err = ohp(escapes_store.root, "call", "escapes", "fail", code=1)
    assert "pwned" in err
    data = json.loads(ohp(escapes_store.root, "call", "escapes", "fail", "--json", code=1)[0])
    assert data["is_error"] and "\x1b]0;pwned" in data["content"] and data["traceback"]


def test_a_worker_that_dies_writing_escapes_is_reported_inert(
        escapes_store: PluginStore) -> None:
    _, err = ohp(escapes_store.root, "call", "escapes", "crash", code=1)
    assert r"worker log line\x1b]0;pwned\x07" in err  # the worker's stderr, quoted inert
    ohp(escapes_store.root, "-v", "call", "escapes", "crash", code=1)  # with the traceback
    ohp(escapes_store.root, "doctor", code=None)


def test_errors_naming_plugin_text_are_inert(escapes_store: PluginStore) -> None:
    _, err = ohp(escapes_store.root, "call", "escapes", "nope\x1b]0;x\x07", code=1)
    assert err.startswith("ohp: error: ")
    _, err = ohp(escapes_store.root, "-v", "show", "no-such\x1b[2J", code=1)
    assert r"\x1b[2J" in err


def test_configure_is_inert(escapes_store: PluginStore) -> None:
    out, _ = ohp(escapes_store.root, "configure", "escapes")
    assert "escapes asks for:" in out


def test_exec_output_on_a_terminal_is_made_visible(escapes_store: PluginStore) -> None:
    program = ["python3", "-c", "import sys; sys.stdout.write('out\\x1b]0;pwned\\x07\\x9b2J"
               "\\u202e\\n'); sys.stderr.write('err\\x1b[2J\\r\\n')"]
    shown = on_a_terminal([sys.executable, "-m", "hostbridge.cli", "exec", "escapes", "--root",
                           str(escapes_store.root), "--", *program])
    # A terminal turns "\n" into "\r\n" (its own, not the program's): drop those first.
    text = inert(shown.replace(b"\r\n", b"\n"), "ohp exec on a terminal")
    assert r"out\x1b]0;pwned\x07\x9b2J\u202e" in text and r"err\x1b[2J\r" in text
    # Into a pipe or a file the program's bytes pass unchanged (an MCP server's JSON-RPC).
    piped = subprocess.run([sys.executable, "-m", "hostbridge.cli", "exec", "escapes",
                            "--root", str(escapes_store.root), "--", *program],
                           capture_output=True, timeout=120, check=True, env=env())
    assert piped.stdout == "out\x1b]0;pwned\x07\x9b2J\u202e\n".encode()
    assert piped.stderr == b"err\x1b[2J\r\n"


def test_what_ohp_writes_on_purpose_still_reaches_a_terminal(
        escapes_store: PluginStore) -> None:
    shown = on_a_terminal([sys.executable, "-m", "hostbridge.cli", "show", "escapes",
                           "--root", str(escapes_store.root)])
    shown = shown.replace(b"\r\n", b"\n")
    assert shown.startswith(b"\x1b[1mescapes\x1b[0m 1.0.0\n")  # bold, ohp's own
    inert(shown.replace(b"\x1b[1m", b"").replace(b"\x1b[0m", b""), "ohp show on a terminal")


def test_the_progress_line_still_rewrites_itself_on_a_terminal(
        sec_tmp: Path, attack_wheelhouse: Path, plugin_python: str) -> None:
    shown = on_a_terminal([sys.executable, "-m", "hostbridge.cli", "install", SOURCE,
                           "--find-links", str(attack_wheelhouse), "--no-index", "--python",
                           plugin_python, "--root", str(sec_tmp / "store")])
    shown = shown.replace(b"\r\n", b"\n")
    assert b"\r" in shown  # the progress line, rewritten in place
    text = inert(shown.replace(b"\r", b""), "ohp install on a terminal")
    assert "installed escapes 1.0.0" in text
