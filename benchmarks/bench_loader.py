"""Content loader: openhands-sdk 1.58.0 ``Plugin.load`` against ``isolator.load_plugin``.

Both run in ONE process of the oracle's Python (a copy of the oracle venv with this project
installed into it, so the oracle itself stays untouched), over every plugin directory of the
corpus, after both are imported (import time is reported, not counted) and after one untimed
warm-up pass each. The passes alternate between the two loaders, with the garbage collector
paused as timeit does. The best and the median of ``--repeat`` passes are reported; the ratio
that is judged is the best's (as timeit advises: the least disturbed by other load).

    python benchmarks/bench_loader.py [--repeat N] [--json FILE] [--min-ratio X]

Needs ../shared (or ``$ISOLATOR_SHARED``). Exit status: 0, or 1 when ``--min-ratio`` is given and
not met (or isolator could not be measured), 2 when the benchmark could not run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
SDK_NAME = "openhands-sdk"
OURS_NAME = "isolator"
TARGET_RATIO = 2.0

# Runs inside the bench venv; reads {"dirs": [...], "repeat": N} on stdin, prints one JSON line.
_TIMER = r"""
import gc, json, logging, sys, time
from pathlib import Path

logging.disable(logging.CRITICAL)  # the SDK logs every skipped file; logging is not loading
started = time.perf_counter()
from openhands.sdk.plugin import Plugin
imports = {"openhands-sdk": time.perf_counter() - started}
loaders = {"openhands-sdk": Plugin.load}
ours_error = None
started = time.perf_counter()
try:
    from isolator import load_plugin
except Exception as exc:  # not written yet, or broken mid-edit: measure the SDK alone
    ours_error = f"{type(exc).__name__}: {exc}"
else:
    imports["isolator"] = time.perf_counter() - started
    loaders["isolator"] = load_plugin

config = json.load(sys.stdin)
dirs = [Path(d) for d in config["dirs"]]


def one_pass(load):
    failures = []
    gc.collect()
    gc.disable()
    try:
        started = time.perf_counter()
        for d in dirs:
            try:
                load(d)
            except Exception as exc:
                failures.append(f"{d}: {type(exc).__name__}: {exc}")
        return time.perf_counter() - started, failures
    finally:
        gc.enable()


sides = {}
for name, load in loaders.items():
    first, failures = one_pass(load)
    sides[name] = {"first_s": first, "times_s": [], "failures": failures}
for _ in range(config["repeat"]):
    for name, load in loaders.items():
        sides[name]["times_s"].append(one_pass(load)[0])

from importlib.metadata import version
versions = {name: version(name) for name in loaders}
print(json.dumps({
    "python": sys.version.split()[0], "imports_s": imports, "versions": versions,
    "sides": sides, "isolator_error": ours_error,
}))
"""


def _fail(message: str) -> int:
    print(f"bench_loader: {message}", file=sys.stderr)
    return 2


def _summarise(raw: dict[str, Any], n_dirs: int, repeat: int) -> dict[str, Any]:
    sides: dict[str, Any] = {}
    for name, side in raw["sides"].items():
        times = side["times_s"]
        sides[name] = {
            **side,
            "best_s": min(times),
            "median_s": statistics.median(times),
            "import_s": raw["imports_s"].get(name),
            "version": raw["versions"].get(name),
        }
    result: dict[str, Any] = {
        "benchmark": "loader",
        "corpus_dirs": n_dirs,
        "repeat": repeat,
        "python": raw["python"],
        "sides": sides,
        "isolator_error": raw["isolator_error"],
        "ratio_best": None,
        "ratio_median": None,
        "target_ratio": TARGET_RATIO,
    }
    if OURS_NAME in sides:
        sdk, ours = sides[SDK_NAME], sides[OURS_NAME]
        result["ratio_best"] = sdk["best_s"] / ours["best_s"]
        result["ratio_median"] = sdk["median_s"] / ours["median_s"]
    return result


def _print_table(result: dict[str, Any]) -> None:
    n = result["corpus_dirs"]
    print(
        f"loader benchmark: {n} corpus plugin dirs, {result['repeat']} timed passes each, "
        f"Python {result['python']}"
    )
    header = (
        f"{'loader':<24}{'import ms':>10}{'first ms':>10}{'best ms':>10}{'median ms':>11}"
        f"{'us/dir':>9}{'failed':>8}"
    )
    print(header)
    for name, side in result["sides"].items():
        label = f"{name} {side['version'] or ''}".strip()
        print(
            f"{label:<24}{side['import_s'] * 1e3:>10.0f}{side['first_s'] * 1e3:>10.1f}"
            f"{side['best_s'] * 1e3:>10.1f}{side['median_s'] * 1e3:>11.1f}"
            f"{side['median_s'] / n * 1e6:>9.0f}{len(side['failures']):>8}"
        )
    if result["ratio_best"] is None:
        print(f"isolator: not measured ({result['isolator_error']})")
        return
    verdict = "met" if result["ratio_best"] >= TARGET_RATIO else "NOT met"
    print(
        f"SDK/isolator: {result['ratio_best']:.2f}x best, {result['ratio_median']:.2f}x median "
        f"(target >= {TARGET_RATIO:g}x: {verdict})"
    )


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed passes per loader (5)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the result here")
    parser.add_argument(
        "--min-ratio", type=float, metavar="X", help="exit 1 unless SDK/isolator (best) >= X"
    )
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    sys.path.insert(0, str(REPO_ROOT / "tests"))
    import oracle  # the oracle helpers live with the tests; one copy of the build logic

    problem = oracle.shared_problem()
    if problem is not None:
        return _fail(f"needs the plugin corpus and the oracle: {problem}")
    try:
        dirs = oracle.corpus_dirs()
        missing = [d for d in dirs if not d.is_dir()]
        if missing:
            return _fail(
                f"corpus incomplete: {len(missing)} listed dirs missing, e.g. {missing[0]}"
            )
        python = oracle.oracle_python(name="bench")
        print(f"installing {REPO_ROOT} into {python.parent.parent} ...", file=sys.stderr)
        oracle.run_checked(
            [
                *(str(oracle.uv_binary()), "pip", "install", "--quiet", "--python", str(python)),
                *("--editable", str(REPO_ROOT)),
            ],
            env=oracle.installer_env(),
            timeout=600,
            what="installing isolator into the bench venv",
        )
        proc = oracle.run_checked(
            [str(python), "-I", "-c", _TIMER],
            env=oracle.oracle_env(),
            timeout=3600,
            what="the timing process",
            stdin=json.dumps({"dirs": [str(d) for d in dirs], "repeat": args.repeat}),
        )
    except oracle.OracleError as exc:
        return _fail(str(exc))
    raw = json.loads(proc.stdout.strip().splitlines()[-1])
    result = _summarise(raw, len(dirs), args.repeat)
    _print_table(result)
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    if args.min_ratio is not None and (
        result["ratio_best"] is None or result["ratio_best"] < args.min_ratio
    ):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
