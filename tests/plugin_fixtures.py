"""Small plugin directories written by the tests, one per feature or oddity of the formats.

``write_tree(root, files)`` writes a dict of relative path -> text (or bytes); ``CASES`` holds
named plugin trees that both the unit tests and the oracle comparison use.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path


def write_tree(root: Path, files: dict[str, str | bytes]) -> Path:
    """Write ``files`` (relative path -> content) below ``root`` and return ``root``."""
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8", newline="")
    root.mkdir(parents=True, exist_ok=True)
    return root


def manifest(**fields: object) -> str:
    return json.dumps(fields)


CASES: dict[str, dict[str, str | bytes]] = {
    "full": {
        ".claude-plugin/plugin.json": manifest(
            name="full", version="2.0.1", description="All parts",
            author="Ada Lovelace <ada@example.org>", homepage="https://example.org",
            keywords=["a", "b"], entry_command="run"),
        "skills/alpha/SKILL.md": "---\nname: alpha\ndescription: First skill\n"
                                 "allowed-tools: Read Grep\nlicense: MIT\n"
                                 "metadata:\n  owner: me\n  level: 3\n---\n# Alpha\n\nBody.\n",
        "skills/alpha/scripts/run.sh": "echo hi\n",
        "skills/alpha/references/deep/notes.md": "notes\n",
        "skills/beta/skill.md": "---\ndescription: lower-case file name\ntriggers: [beta, b2]\n"
                                "---\nBeta body\n",
        "skills/legacy.md": "---\ntriggers:\n- legacy\n---\nLegacy body\n",
        "skills/README.md": "not a skill\n",
        "skills/task.md": "---\nname: task\ninputs:\n- name: repo\n  description: which repo\n"
                          "---\nWork on ${repo}.\n",
        "skills/rule.md": "---\npaths: 'src/**, tests/*'\ntriggers: [ignored]\n---\nRule\n",
        "commands/run.md": "---\ndescription: Run it\nargument-hint: [target, mode]\n"
                           "allowed-tools: Bash\nmodel: fast\n---\nRun $ARGUMENTS\n",
        "commands/plain.md": "No frontmatter here.\n",
        "commands/README.md": "ignored\n",
        "agents/helper.md": "---\nname: helper-agent\ndescription: Helps. <example>a</example> "
                            "and <EXAMPLE> b </EXAMPLE>\ntools: Read\nskills: alpha, beta\n"
                            "model: sonnet\ncolor: blue\npermission_mode: Never_Confirm\n"
                            "max_iteration_per_run: '5'\nextra_key: 1\n---\nYou help.\n",
        "agents/nameless.md": "---\ndescription: no name\n---\nPrompt\n",
        "hooks/hooks.json": json.dumps({"description": "x", "hooks": {
            "PreToolUse": [{"matcher": "Bash|Edit", "hooks": [
                {"type": "command", "command": "${CLAUDE_PLUGIN_ROOT}/check.sh",
                 "timeout": 10}]}],
            "session_start": [{"hooks": [{"command": "echo start"}]}]}}),
        ".mcp.json": json.dumps({"mcpServers": {
            "local": {"command": "${CLAUDE_PLUGIN_ROOT}/server", "args": ["--x"],
                      "env": {"TOKEN": "${TOKEN:-none}"}},
            "remote": {"type": "http", "url": "https://example.org/mcp",
                       "headers": {"Authorization": "Bearer ${API_KEY}"}}}}),
    },
    "no-manifest": {
        "commands/hello.md": "---\ndescription: hi\n---\nHello\n",
    },
    "root-skill": {
        "SKILL.md": "---\nname: solo\ndescription: A single-skill plugin\n---\nSolo body\n",
        "references/r.md": "r\n",
    },
    "third-party-and-dupes": {
        ".plugin/plugin.json": manifest(name="dupes"),
        ".claude-plugin/plugin.json": manifest(name="loses-to-dot-plugin"),
        "skills/AGENTS.md": "---\nname: ignored\n---\nThird-party file, kept whole.\n",
        "skills/one/SKILL.md": "---\nname: same\n---\nfirst\n",
        "skills/two/SKILL.md": "---\nname: same\n---\nsecond\n",
        "skills/long.md": "---\ndescription: " + "x" * 1500 + "\n---\nLong\n",
    },
    "crlf-and-unicode": {
        ".claude-plugin/plugin.json": manifest(name="crlf", description="日本語の説明"),
        "commands/日本語.md": "---\r\ndescription: コマンド\r\n---\r\n本文\r\nline 2\r\n",
        "skills/s/SKILL.md": "---\r\nname: s\r\ndescription: CRLF skill\r\n---\r\nBody\r\n",
    },
    "flat-hooks-and-mcp": {
        ".claude-plugin/plugin.json": manifest(name="flat", author={"name": "Bob",
                                                                    "url": "https://b"}),
        "hooks/hooks.json": json.dumps({"Stop": [{"matcher": "*", "hooks": [
            {"type": "prompt", "prompt": "Are you done?"}]}]}),
        ".mcp.json": json.dumps({"mcpServers": {"a": {"type": "sse", "url": "https://a/sse"}}}),
    },
    "agent-plugins": {
        "plugin.json": manifest(**{
            "$schema": "https://agent-plugins.org/schemas/1.0.0/plugin.schema.json",
            "name": "ap-plugin", "version": "0.3.0", "description": "Agent Plugins format",
            "extensions": {"dev.openhands": {"entry_command": "go"}}}),
        "skills/x/SKILL.md": "---\nname: x\ndescription: skill x\n---\nX\n",
        "dev.openhands/commands/go.md": "---\ndescription: go\n---\nGo!\n",
        "dev.openhands/agents/a.md": "---\nname: a\n---\nA\n",
        "dev.openhands/hooks/hooks.json": json.dumps({"hooks": {"Stop": [
            {"hooks": [{"command": "echo bye"}]}]}}),
        "commands/not-here.md": "---\ndescription: ignored in this format\n---\nNo\n",
    },
    "copilot-root-manifest": {
        "plugin.json": manifest(name="copilot-style"),
        "commands/c.md": "C\n",
    },
}
