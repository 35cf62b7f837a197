"""The corpus round trip (#8): package every corpus plugin, install it, load it, compare.

    .venv/bin/python benchmarks/bench_roundtrip.py [--limit N] [--workers N] [--json FILE]

Runs exactly what ``tests/test_corpus_roundtrip.py`` asserts (``tests/roundtrip.py``) and times its
phases: ``package`` is ``package_plugin`` for every plugin (a setuptools build through
``uv build`` each, *workers* at a time); ``install+compare`` is, one plugin after another,
``PluginStore.install`` from the plugin's own wheelhouse into its own venv, loading it from
site-packages, comparing it with the directory, and uninstalling it. For scale, the same
directories are then installed the git way (content only: copied into the store), which is
the alternative a package replaces.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "tests"), str(REPO_ROOT / "benchmarks")]

import oracle  # noqa: E402
import roundtrip  # noqa: E402

import isolator  # noqa: E402


def content_only(directories: list[Path], root: Path) -> list[float]:
    """Seconds to install each directory as a content-only plugin (and uninstall it)."""
    store = isolator.PluginStore(root)
    times = []
    for directory in directories:
        began = time.perf_counter()
        installed = store.install(isolator.PluginSource.parse(str(directory)))
        store.load(installed.name)
        times.append(time.perf_counter() - began)
        store.uninstall(installed.name)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=None, help="only the first N plugins")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2,
                        help="packaging builds run at once (default: the CPU count)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    shared = oracle.configured_shared_path()
    problem = oracle.shared_problem(shared)
    if problem is not None:
        print(f"bench_roundtrip: {problem}", file=sys.stderr)
        return 2
    corpus = oracle.corpus_root(shared)
    directories = oracle.corpus_dirs(shared)[: args.limit]
    with tempfile.TemporaryDirectory(prefix="bench-roundtrip-") as tmp:
        result = roundtrip.round_trip(
            directories, Path(tmp), workers=args.workers,
            label=lambda d: d.relative_to(corpus).as_posix(),
            progress=lambda line: print(f"\r{line[:78]:<78}", end="", file=sys.stderr))
        print(file=sys.stderr)
        copies = content_only(directories, Path(tmp) / "content-store")
    installs = result.per_plugin_install
    figures = {
        "plugins": result.plugins,
        "passed": len(result.passed),
        "failed": len(result.failures),
        "workers": args.workers,
        "total_s": round(result.total_seconds, 1),
        "package_s": round(result.package_seconds, 1),
        "package_per_plugin_s": round(result.package_seconds * args.workers / result.plugins, 2),
        "install_compare_s": round(result.install_seconds, 1),
        "install_median_ms": round(statistics.median(installs) * 1000) if installs else None,
        "install_p95_ms": round(sorted(installs)[int(len(installs) * 0.95)] * 1000)
        if installs else None,
        "content_only_install_median_ms": round(statistics.median(copies) * 1000),
        "failures": result.failures,
        "install_ms": [round(t * 1000, 1) for t in installs],  # per plugin, corpus order
        "content_only_install_ms": [round(t * 1000, 1) for t in copies],
    }
    print(f"round trip over {figures['plugins']} corpus plugins: {figures['passed']} equal, "
          f"{figures['failed']} differ")
    print(f"  total            {figures['total_s']} s")
    print(f"  package (x{args.workers})      {figures['package_s']} s "
          f"(~{figures['package_per_plugin_s']} s of one worker per plugin: uv build, setuptools)")
    print(f"  install+compare  {figures['install_compare_s']} s (install median "
          f"{figures['install_median_ms']} ms, p95 {figures['install_p95_ms']} ms)")
    print(f"  content-only install of the same directories: median "
          f"{figures['content_only_install_median_ms']} ms")
    for name, problems in result.failures.items():
        print(f"  DIFFERS {name}: {problems[0][:200]}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0 if not result.failures else 1


if __name__ == "__main__":
    sys.exit(main())
