"""Quick CLI (#19): ``ohp --help``, ``ohp list`` and ``ohp show`` against ``python -c pass``.

Each command runs as a new process of the repository's ``.venv`` (the ``ohp`` console script,
``hostbridge.cli._cli:main``), its output thrown away; the floor is the same interpreter
running ``-c pass`` (with ``site``, as the console script has it). ``list`` and ``show`` read a
store of their own holding ``greetings`` and ``salute`` from the example wheelhouse. Bytecode is
written and an untimed run of each command goes first (``PYTHONDONTWRITEBYTECODE`` is dropped
from the environment: an installed ohp has its ``.pyc`` files). The runs are interleaved, one of
each command in turn, so other load on the machine falls on every side alike; the ratios are of
medians (the best's beside). Targets: ``--help`` and ``list`` at most 2x ``python -c pass``;
``show`` has none (it must read YAML frontmatter).

    python benchmarks/bench_cli.py [--repeat N] [--json FILE] [--strict]

Exit status 0; 1 with ``--strict`` when a target is not met.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "tests")]

from _measure import Side, finish, print_sides  # noqa: E402
from wheelhouse import example_wheelhouse  # noqa: E402

from isolator import PluginStore  # noqa: E402

RATIO_MAX = 2.0


def bench(repeat: int, results: dict[str, Any]) -> None:
    """Time the commands; add the figures to *results* (``summary``, ``cli``)."""
    python = Path(sys.executable)
    ohp = python.with_name("ohp")
    if not ohp.exists():
        raise RuntimeError(f"no ohp console script beside {python}")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as scratch:
        root = Path(scratch) / "store"
        store = PluginStore(root)
        wheels = example_wheelhouse()
        for package in ("openhands-plugin-greetings", "openhands-plugin-salute"):
            store.install(f"pypi:{package}", find_links=[wheels], no_index=True)
        commands = {
            "pass": [str(python), "-c", "pass"],
            "help": [str(ohp), "--help"],
            "list": [str(ohp), "list", "--root", str(root)],
            "show": [str(ohp), "show", "salute", "--root", str(root)],
        }
        sides = {key: Side(label) for key, label in (
            ("pass", "python -c pass"), ("help", "ohp --help"), ("list", "ohp list"),
            ("show", "ohp show salute"))}
        for cmd in commands.values():  # untimed: writes bytecode, warms the page cache
            subprocess.run(cmd, env=env, capture_output=True, check=True)
        for _ in range(repeat):
            for key, cmd in commands.items():
                started = time.perf_counter()
                subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, check=True)
                sides[key].times.append(time.perf_counter() - started)
    print_sides(f"ohp commands as new processes, {repeat} runs each, interleaved",
                list(sides.values()))
    floor = sides["pass"]
    for key, target in (("help", RATIO_MAX), ("list", RATIO_MAX), ("show", None)):
        ratio = statistics.median(sides[key].times) / floor.median
        best = sides[key].best / floor.best
        print(f"  ohp {key} / python -c pass: {ratio:.2f}x median, {best:.2f}x best")
        results["summary"].append((f"ohp {'--help' if key == 'help' else key} / python -c pass",
                                   f"{ratio:.2f}x", "none" if target is None else
                                   f"<= {target:g}x", None if target is None else
                                   ratio <= target))
    results["cli"] = {key: side.to_dict() for key, side in sides.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30, help="timed runs of each (30)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the result here")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is not met")
    args = parser.parse_args(argv)
    results: dict[str, Any] = {"summary": []}
    try:
        bench(args.repeat, results)
    except RuntimeError as exc:
        print(f"bench_cli: {exc}", file=sys.stderr)
        return 2
    return finish(results, args.json, args.strict)


if __name__ == "__main__":
    sys.exit(main())
