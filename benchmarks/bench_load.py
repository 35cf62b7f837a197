"""Load: many live workers, their memory (PSS) and many threads calling them, per profile.

Everything runs in ONE host process through the Python API. The plugin is bench_bridge's
crafted wheel (``noop``, ``echo``), installed offline into a new store whose interpreter is
``--python`` (default ``/usr/bin/python3.11``, Debian's: a root host runs workers as uid 65534,
which cannot reach a pyenv interpreter under /root without a private mount namespace, so
``standard`` here measures what users get).

Each round takes the profiles in turn, the order rotated from round to round (interleaved,
not in blocks), and for each:

1. ``start``: ``--workers`` HostBridges of the plugin (one worker each), started from
   ``--threads`` threads at once; the time until every one has answered ``tools.list``.
2. ``memory``: the proportional set size (``Pss`` of ``/proc/PID/smaps_rollup``) of every
   process of every worker's process group (the launcher left waiting, ``unshare --fork``,
   and the interpreter), after one ``tools.call noop`` each and 0.5 s idle; against as many
   bare interpreters (``python -I -S -B -c "import msgpack"`` with the runtime's msgpack,
   left sleeping) started by this round. Targets (#19, for 100 workers): at most 1.2x the
   bare interpreters, under 700 MiB.
3. ``load``: ``--threads`` threads each making ``--calls`` ``HostBridge.call_tool(noop)``
   calls, thread *t*'s call *i* to worker ``(t + i) % workers``; throughput (calls / wall
   time), p50 and p99 latency, and lost calls (raised, or answered something else).
   Target: no lost calls.

    python benchmarks/bench_load.py [--workers N] [--threads N] [--calls N] [--rounds N]
        [--profiles P ...] [--python PATH] [--json FILE] [--strict]

Exit status 0; 1 with ``--strict`` when a target is not met; 2 when it cannot run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "tests"), str(REPO_ROOT / "benchmarks")]

from bench_bridge import PACKAGE, PLUGIN, TOOLS_PY, percentile  # noqa: E402
from helpers_build import make_wheel  # noqa: E402

import hostbridge.launch._zygote as zygote_module  # noqa: E402
from hostbridge import HostBridge  # noqa: E402
from hostbridge.launch._runtime import ensure_runtime  # noqa: E402
from isolator import PluginStore  # noqa: E402

PSS_RATIO_MAX = 1.2
PSS_MIB_MAX_100 = 700.0
MIB = 1 << 20


class BenchError(Exception):
    """The benchmark cannot run."""


def make_store(tmp: Path, python: str) -> tuple[PluginStore, Path, str]:
    links = tmp / "links"
    make_wheel(links, PACKAGE, "1.0.0", files={
        "bench_bridge_plugin/__init__.py": '"""Bridge benchmark plugin."""\n',
        "bench_bridge_plugin/tools.py": TOOLS_PY,
    }, entry_points={
        "openhands.plugins": {PLUGIN: "bench_bridge_plugin"},
        "openhands.tools": {"echo": "bench_bridge_plugin.tools:echo",
                            "noop": "bench_bridge_plugin.tools:noop"},
    })
    tmp.chmod(0o755)  # uid 65534 must reach the store (a root host's workers)
    store = PluginStore(tmp / "store", python=python)
    installed = store.install(f"pypi:{PACKAGE}", find_links=[links], no_index=True)
    if installed.venv is None or installed.python is None:
        raise BenchError(f"installing {PACKAGE} gave {installed!r}")
    runtime = ensure_runtime(store.root, str(installed.python["abi_tag"]),
                             Path(os.path.realpath(installed.python["path"])))
    with HostBridge(store, profile="off") as bridge:  # untimed: page cache, runtime
        bridge.call_tool(PLUGIN, "noop", {})
    return store, runtime.msgpack_dir, str(installed.venv / "bin" / "python")


def pss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def group_pids(pgid: int) -> list[int]:
    """Every process whose process group is *pgid* (a worker's launcher and interpreter)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            pids.append(int(entry))
    return pids


def bare_pss(python: str, msgpack_dir: Path, count: int) -> tuple[float, int]:
    code = (f"import sys; sys.path.append({str(msgpack_dir)!r}); import msgpack\n"
            "import time; time.sleep(120)")
    procs = [subprocess.Popen([python, "-I", "-S", "-B", "-c", code], stdin=subprocess.DEVNULL,
                              env={"PATH": os.environ.get("PATH", "/usr/bin")})
             for _ in range(count)]
    try:
        time.sleep(1.0 + count * 0.02)
        total = sum(pss_kib(proc.pid) for proc in procs)
    finally:
        for proc in procs:
            proc.kill()
        for proc in procs:
            proc.wait()
    return total / 1024, len(procs)


def one_profile(store: PluginStore, profile: str, args: argparse.Namespace,
                bare_mib: float, start: str = "exec") -> dict[str, Any]:
    bridges = [HostBridge(store, profile=profile, heartbeat=None, idle_timeout=None,
                          worker_start=start) for _ in range(args.workers)]
    out: dict[str, Any] = {"profile": profile, "start": start}
    try:
        started = time.perf_counter()
        with ThreadPoolExecutor(args.threads) as pool:
            list(pool.map(lambda b: b.tools(PLUGIN), bridges))
        out["start_all_s"] = round(time.perf_counter() - started, 3)
        for bridge in bridges:
            bridge.call_tool(PLUGIN, "noop", {})
        time.sleep(0.5)
        processes = 0
        total = 0
        for bridge in bridges:
            worker = bridge.worker(PLUGIN)
            proc = worker._proc
            # A forked worker's process group is its parent's (the zygote's child).
            pids = group_pids(getattr(proc, "group", None) or proc.pid) \
                if proc is not None else []
            processes += len(pids)
            total += sum(pss_kib(pid) for pid in pids)
        if start == "zygote":  # the zygotes they came from count too, whole
            for zygote in zygote_module.zygotes():
                if zygote.key[1] == profile and zygote.alive:
                    processes += 1
                    total += pss_kib(zygote.proc.pid)
        out["pss_mib"] = round(total / 1024, 1)
        out["processes"] = processes
        out["pss_ratio"] = round(total / 1024 / bare_mib, 2) if bare_mib else None

        latencies: list[float] = []
        lost: list[str] = []
        lock = threading.Lock()
        barrier = threading.Barrier(args.threads + 1)

        def run(index: int) -> None:
            mine: list[float] = []
            barrier.wait()
            for step in range(args.calls):
                bridge = bridges[(index + step) % len(bridges)]
                before = time.perf_counter()
                try:
                    result = bridge.call_tool(PLUGIN, "noop", {}, timeout=60)
                    if result.is_error or result.content is not None:
                        raise BenchError(f"answered {result!r:.100}")
                except Exception as exc:  # a lost call: counted, never fatal
                    with lock:
                        lost.append(f"{type(exc).__name__}: {exc}"[:200])
                    continue
                mine.append(time.perf_counter() - before)
            with lock:
                latencies.extend(mine)

        threads = [threading.Thread(target=run, args=(i,)) for i in range(args.threads)]
        for thread in threads:
            thread.start()
        barrier.wait()
        began = time.perf_counter()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - began
        calls = args.threads * args.calls
        out.update(calls=calls, seconds=round(wall, 3), per_s=round(len(latencies) / wall),
                   p50_us=round(percentile(latencies, 0.5) * 1e6, 1) if latencies else None,
                   p99_us=round(percentile(latencies, 0.99) * 1e6, 1) if latencies else None,
                   lost=len(lost), lost_examples=lost[:3])
    finally:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda b: b.close(), bridges))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=50, help="live workers (50)")
    parser.add_argument("--threads", type=int, default=20, help="calling threads (20)")
    parser.add_argument("--calls", type=int, default=200, help="calls per thread (200)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds over the profiles (2)")
    parser.add_argument("--profiles", nargs="+", default=["off", "standard", "strict"],
                        choices=["off", "standard", "strict"])
    parser.add_argument("--starts", nargs="+", default=["exec", "zygote"],
                        choices=["exec", "zygote"], help="how workers start (both)")
    parser.add_argument("--python", default="/usr/bin/python3.11",
                        help="the store's interpreter (/usr/bin/python3.11)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the result here")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is not met")
    args = parser.parse_args(argv)
    if min(args.workers, args.threads, args.calls, args.rounds) < 1:
        parser.error("counts must be at least 1")
    if not sys.platform.startswith("linux") or not os.path.exists(args.python):
        print(f"bench_load: needs Linux and {args.python}", file=sys.stderr)
        return 2
    results: dict[str, Any] = {"setup": {"workers": args.workers, "threads": args.threads,
                                         "calls": args.calls, "python": args.python,
                                         "cpus": os.cpu_count()}, "rounds": []}
    try:
        with tempfile.TemporaryDirectory(prefix="bench-load-") as scratch:
            store, msgpack_dir, venv_python = make_store(Path(scratch), args.python)
            print(f"load benchmark: {args.workers} workers, {args.threads} threads x "
                  f"{args.calls} calls, interpreter {args.python}, {os.cpu_count()} CPUs, "
                  f"load average {os.getloadavg()[0]:.2f}")
            print(f"  {'round':<6}{'profile':<18}{'start all':>10}{'PSS MiB':>9}{'bare':>8}"
                  f"{'ratio':>7}{'procs':>7}{'calls/s':>9}{'p50 us':>9}{'p99 us':>9}{'lost':>6}")
            for index in range(args.rounds):
                shift = index % len(args.profiles)
                order = args.profiles[shift:] + args.profiles[:shift]
                bare, _ = bare_pss(venv_python, msgpack_dir, args.workers)
                runs = [(p, s) for p in order for s in args.starts]
                for profile, start in runs:
                    row = one_profile(store, profile, args, bare, start)
                    row.update(round=index, bare_pss_mib=round(bare, 1))
                    results["rounds"].append(row)
                    print(f"  {index:<6}{profile + ' ' + start:<18}{row['start_all_s']:>9.2f}s"
                          f"{row['pss_mib']:>9.1f}{bare:>8.1f}{row['pss_ratio']:>7.2f}"
                          f"{row['processes']:>7}{row['per_s']:>9}{row['p50_us']:>9}"
                          f"{row['p99_us']:>9}{row['lost']:>6}", flush=True)
    except BenchError as exc:
        print(f"bench_load: {exc}", file=sys.stderr)
        return 2
    summary = []
    scale = 100 / args.workers
    for profile, start in [(p, s) for p in args.profiles for s in args.starts]:
        rows = [r for r in results["rounds"] if r["profile"] == profile and r["start"] == start]
        profile = f"{profile}, {start}"  # noqa: PLW2901 - the row's label
        ratio = min(r["pss_ratio"] for r in rows)
        at_100 = min(r["pss_mib"] for r in rows) * scale
        lost = sum(r["lost"] for r in rows)
        summary += [
            (f"{profile}: live workers' PSS / bare interpreters", f"{ratio:.2f}x",
             f"<= {PSS_RATIO_MAX:g}x", ratio <= PSS_RATIO_MAX),
            (f"{profile}: PSS scaled to 100 workers", f"{at_100:.0f} MiB",
             f"< {PSS_MIB_MAX_100:g} MiB", at_100 < PSS_MIB_MAX_100),
            (f"{profile}: calls/s (best round), p99", f"{max(r['per_s'] for r in rows)}/s, "
             f"{min(r['p99_us'] or 0 for r in rows):.0f} us", "none", None),
            (f"{profile}: lost calls", str(lost), "0", lost == 0),
        ]
    results["summary"] = summary
    print("\nsummary")
    for figure, value, target, met in summary:
        verdict = "" if met is None else ("met" if met else "NOT met")
        print(f"  {figure:<52}{value:>18}  {target:<12}{verdict}")
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    if args.strict and any(met is False for *_, met in summary):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
