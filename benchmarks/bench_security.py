"""Security fixes (#15): what they cost, the code before them (02f8905) against the working tree.

Both sides run in this one run, on this machine, interleaved: every round runs each
configuration once on each side (old then new, new then old in the next round), each in a
fresh process of the repository's interpreter whose PYTHONPATH puts that side's code first. The
old side is a git worktree of the commit before the fixes, made in a temporary directory and
removed at the end; the new side is a copy of the working tree's hostbridge and isolator taken
at the start, so edits made while the benchmark runs do not mix into it. Each process checks
that hostbridge and isolator are imported from its side's tree. Each side installs one
trivial plugin (a noop tool, a wheel from tests/helpers_build, offline) into its own store
under a 0755 directory in /tmp, for an interpreter uid 65534 can run when the host is root
(tests/security/secsupport.world_python), so standard and strict really drop to that uid.
With the default interpreter (the host's own, under /root on a root machine), the new code is
measured too; the old code refuses strict there and runs standard as root, as the report says.

In each process, after one untimed cold start: K workers (Worker.start and one noop call)
are started and left live, and the host's /proc/self/smaps_rollup (Rss, Pss, and USS: its
private pages) is read before and after, divided by K (threads and file descriptors too);
then cold starts, each a new HostBridge(store, profile=...) and call_tool of noop timed to
the result (closing untimed); then on one warm bridge, after 100 untimed calls, sequential
call_tool noop round trips, each timed, with the host process's CPU time (all its threads)
and the worker's (/proc/PID/stat) per 1000 calls.

Judged: nothing is a target; every figure of the working tree stands beside the old code's,
with the ratio new / old. Starts are the median and p90 of every start of every round, calls
the p50 and p99 of every call, memory the median of the rounds.

    .venv/bin/python benchmarks/bench_security.py [--rounds N] [--starts N] [--calls N]
        [--workers K] [--quick] [--old-ref REF] [--note TEXT] [--json FILE]

Exit status 0; 1 when a configuration failed to run (its error is in the JSON and the table);
2 when the benchmark cannot run at all.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
OLD_REF = "02f8905"
PLUGIN = "secbench"
PACKAGE = "sec-bench-plugin"
PROFILES = ("off", "standard", "strict")
SIDES = ("old", "new")
CHILD_TIMEOUT = 600.0
WARM_CALLS = 100
TOOLS_PY = '''\
"""Tools for the security benchmark."""


def noop() -> str:
    """Do nothing."""
    return "ok"
'''


class BenchError(Exception):
    """The benchmark cannot run."""


# ---- figures -------------------------------------------------------------------------------


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile of *values* (as bench_bridge computes it)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def smaps_rollup(pid: int | str = "self") -> dict[str, int]:
    """KiB by field of /proc/PID/smaps_rollup, with ``Uss`` (private clean + dirty)."""
    fields: dict[str, int] = {}
    with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as handle:
        for line in handle:
            name, found, value = line.partition(":")
            parts = value.split()
            if found and len(parts) == 2 and parts[1] == "kB":
                fields[name.strip()] = int(parts[0])
    fields["Uss"] = fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)
    return fields


def host_footprint() -> dict[str, int]:
    """The host process's memory (KiB), threads and open file descriptors now."""
    gc.collect()
    time.sleep(0.3)  # threads that end, end
    rollup = smaps_rollup()
    return {"rss_kib": rollup["Rss"], "pss_kib": rollup["Pss"], "uss_kib": rollup["Uss"],
            "threads": len(os.listdir("/proc/self/task")), "fds": len(os.listdir("/proc/self/fd"))}


def cpu_seconds(pid: int | None) -> float | None:
    """Seconds process *pid*'s threads have run on a CPU (/proc/PID/schedstat, in ns), None
    when it cannot be read."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/schedstat", encoding="ascii") as handle:
            return int(handle.read().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        return None


def real_uid(pid: int | None) -> int | None:
    """The real uid of process *pid* as the host sees it (a worker in a user namespace may
    call itself another)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("Uid:"):
                    return int(line.split()[1])
    except (OSError, ValueError, TypeError):
        return None
    return None


def describe_worker(bridge: Any) -> dict[str, Any]:
    """Who a bridge's worker runs as, and with which layers (for the report)."""
    worker = bridge.worker(PLUGIN)
    hello = worker.hello
    return {"uid": real_uid(worker.pid), "uid_inside": hello.get("uid"),
            "python": hello.get("python"),
            "layers": {k: v for k, v in worker.sandbox.items() if isinstance(v, bool | None)}}


# ---- the child: one side, one configuration, one round -------------------------------------


def check_tree(tree: Path) -> dict[str, str]:
    """Import hostbridge and isolator; refuse unless both come from *tree*."""
    import hostbridge
    import isolator

    found = {"hostbridge": str(Path(hostbridge.__file__).resolve()),
             "isolator": str(Path(isolator.__file__).resolve())}
    for name, path in found.items():
        if not Path(path).is_relative_to(tree.resolve()):
            raise BenchError(f"{name} was imported from {path}, not from {tree} (PYTHONPATH="
                             f"{os.environ.get('PYTHONPATH')!r}; sys.path={sys.path!r})")
    return found


def child_setup(spec: dict[str, Any]) -> dict[str, Any]:
    """Install the plugin into this side's store; one start under each profile asked for
    (the runtime is made, and what the old code does with the default interpreter is seen)."""
    from hostbridge import HostBridge
    from isolator import PluginStore

    store = PluginStore(Path(spec["store"]), python=spec["python"])
    store.install(f"pypi:{PACKAGE}", find_links=[Path(spec["links"])], no_index=True)
    probes = {}
    for profile in spec["probe"]:
        bridge = HostBridge(store, profile=profile)
        try:
            result = bridge.call_tool(PLUGIN, "noop", {})
            probes[profile] = {"ok": not result.is_error, **describe_worker(bridge)}
        except Exception as exc:  # what the old code says: reported, not fatal
            probes[profile] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        finally:
            bridge.close()
    return {"probes": probes}


def child_measure(spec: dict[str, Any]) -> dict[str, Any]:
    from _measure import gc_paused

    from hostbridge import HostBridge, Worker
    from isolator import PluginStore

    store = PluginStore(Path(spec["store"]), python=spec["python"])
    profile = spec["profile"]
    out: dict[str, Any] = {}

    # untimed: the first start in this process (spawner thread, imports, caches)
    bridge = HostBridge(store, profile=profile)
    try:
        result = bridge.call_tool(PLUGIN, "noop", {})
        if result.is_error or result.content != "ok":
            raise BenchError(f"noop answered {result!r}")
        out["worker"] = describe_worker(bridge)
    finally:
        bridge.close()

    # memory: K live workers
    if spec["workers"]:
        before = host_footprint()
        workers = []
        worker_pss = []
        try:
            for _ in range(spec["workers"]):
                worker = Worker(store, PLUGIN, profile=profile)
                workers.append(worker)
                worker.start()
                worker.request("tools.call", "noop", {})
            after = host_footprint()
            for worker in workers:
                with contextlib.suppress(OSError, KeyError, TypeError):
                    worker_pss.append(smaps_rollup(worker.pid)["Pss"])  # type: ignore[arg-type]
        finally:
            for worker in workers:
                worker.close()
        count = spec["workers"]
        out["memory"] = {key: (after[key] - before[key]) / count for key in before}
        out["memory"]["worker_pss_kib"] = (statistics.median(worker_pss) if worker_pss
                                           else None)

    # the check of the venv's interpreter files before every launch (new code only)
    check = getattr(store, "check_interpreter_files", None)
    if check is not None:
        with store.lease(PLUGIN) as installed:
            times = []
            for _ in range(50):
                began = time.perf_counter()
                check(installed)
                times.append(time.perf_counter() - began)
            out["check_interpreter_files_s"] = statistics.median(times)

    # cold starts
    starts = []
    for _ in range(spec["starts"]):
        with gc_paused():
            began = time.perf_counter()
            bridge = HostBridge(store, profile=profile)
            result = bridge.call_tool(PLUGIN, "noop", {})
            starts.append(time.perf_counter() - began)
        bridge.close()
        if result.is_error:
            raise BenchError(f"noop failed: {result.content}")
    out["start_s"] = starts

    # round trips on a warm worker
    if spec["calls"]:
        bridge = HostBridge(store, profile=profile)
        try:
            for _ in range(WARM_CALLS):
                bridge.call_tool(PLUGIN, "noop", {})
            worker_pid = bridge.worker(PLUGIN).pid
            calls = []
            call = bridge.call_tool
            with gc_paused():
                worker_cpu = cpu_seconds(worker_pid)
                cpu = time.process_time()
                for _ in range(spec["calls"]):
                    began = time.perf_counter()
                    call(PLUGIN, "noop", {})
                    calls.append(time.perf_counter() - began)
                cpu = time.process_time() - cpu
                worker_after = cpu_seconds(worker_pid)
        finally:
            bridge.close()
        out["call_s"] = calls
        out["host_cpu_s"] = cpu
        out["worker_cpu_s"] = (None if worker_cpu is None or worker_after is None
                               else worker_after - worker_cpu)
    return out


def child_main(spec_text: str, out_path: str) -> int:
    spec = json.loads(spec_text)
    try:
        result: dict[str, Any] = {"imported": check_tree(Path(spec["tree"]))}
        if spec["what"] == "setup":
            result.update(child_setup(spec))
        else:
            result.update(child_measure(spec))
    except BenchError as exc:
        print(f"bench_security child: {exc}", file=sys.stderr)
        return 3
    Path(out_path).write_text(json.dumps(result), encoding="utf-8")
    return 0


# ---- the parent: trees, stores, rounds -----------------------------------------------------


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True,
                          check=True).stdout.strip()


def snapshot_working_tree(dest: Path) -> None:
    """hostbridge and isolator as the working tree has them now."""
    dest.mkdir()
    for package in ("hostbridge", "isolator"):
        shutil.copytree(REPO_ROOT / package, dest / package,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


def run_child(tree: Path, spec: dict[str, Any], scratch: Path) -> dict[str, Any]:
    """Run this script as a child for *spec* with *tree* first on PYTHONPATH."""
    out = scratch / "child.json"
    out.unlink(missing_ok=True)
    env = {key: value for key, value in os.environ.items()
           if key not in ("ISOLATOR_BENCH_REEXEC", "PYTHONHOME")}
    env["PYTHONPATH"] = str(tree)
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # no __pycache__ in the trees (the old one is git's)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(
        {**spec, "tree": str(tree)}), str(out)]
    try:
        proc = subprocess.run(cmd, cwd=scratch, stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=CHILD_TIMEOUT, env=env, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"killed after {CHILD_TIMEOUT:g} s"}
    if proc.returncode == 3:
        raise BenchError(proc.stderr.strip().splitlines()[-1])
    if proc.returncode != 0 or not out.exists():
        tail = proc.stderr.strip().splitlines()[-1:] or ["no stderr"]
        return {"error": f"exit status {proc.returncode}: {tail[0][:400]}"}
    result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    for name, path in result["imported"].items():  # as the child checked: say it again here
        if not Path(path).is_relative_to(tree):
            raise BenchError(f"the {spec['side']} side imported {name} from {path}")
    return result


def make_links(links: Path) -> None:
    sys.path[:0] = [str(REPO_ROOT / "tests")]
    from helpers_build import make_wheel  # type: ignore[import-not-found]

    make_wheel(links, PACKAGE, "1.0.0", files={
        "sec_bench_plugin/__init__.py": '"""Security benchmark plugin."""\n',
        "sec_bench_plugin/tools.py": TOOLS_PY,
        "sec_bench_plugin/commands/c.md": "c\n",
    }, entry_points={"openhands.plugins": {PLUGIN: "sec_bench_plugin"},
                     "openhands.tools": {"noop": "sec_bench_plugin.tools:noop"}})


def world_python() -> str:
    """An interpreter of the host's version that uid 65534 can run (the host's own when it
    is not root)."""
    if os.geteuid() != 0:
        return str(Path(sys.executable).resolve())
    sys.path[:0] = [str(REPO_ROOT / "tests" / "security"), str(REPO_ROOT / "tests")]
    from secsupport import world_python as find  # type: ignore[import-not-found]

    found = find()
    if found is None:
        raise BenchError("no interpreter of this Python version that uid 65534 may run")
    return str(found)


def configurations(root: Path) -> list[dict[str, Any]]:
    """What each round measures: every profile on both sides with the world interpreter,
    then (a root host) standard and strict with the default interpreter, new side only."""
    configs = [{"key": f"{side}/{profile}", "side": side, "profile": profile,
                "interpreter": "world", "store": str(root / side / "store")}
               for profile in PROFILES for side in SIDES]
    if os.geteuid() == 0:
        configs += [{"key": f"new/{profile}/default", "side": "new", "profile": profile,
                     "interpreter": "default", "store": str(root / "new-default" / "store")}
                    for profile in ("standard", "strict")]
    return configs


def round_order(configs: list[dict[str, Any]], index: int) -> list[dict[str, Any]]:
    """Old then new for each profile in even rounds, new then old in odd ones."""
    ordered = []
    for profile in PROFILES:
        pair = [c for c in configs if c["profile"] == profile and c["interpreter"] == "world"]
        ordered += pair if index % 2 == 0 else pair[::-1]
    return ordered + [c for c in configs if c["interpreter"] == "default"]


def summarise(config: dict[str, Any], runs: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [run for run in runs if "error" not in run]
    summary: dict[str, Any] = {key: config[key] for key in ("key", "side", "profile",
                                                            "interpreter")}
    summary["rounds"] = len(ok)
    errors = [run["error"] for run in runs if "error" in run]
    if errors:
        summary["errors"] = errors
    if not ok:
        return summary
    starts = [t for run in ok for t in run.get("start_s", [])]
    calls = [t for run in ok for t in run.get("call_s", [])]
    summary["worker"] = ok[0].get("worker")
    if starts:
        summary["start"] = {"p50_ms": round(statistics.median(starts) * 1e3, 2),
                            "p90_ms": round(percentile(starts, 0.9) * 1e3, 2),
                            "best_ms": round(min(starts) * 1e3, 2), "n": len(starts),
                            "times_ms": [round(t * 1e3, 2) for t in starts]}
    if calls:
        host_cpu = sum(run["host_cpu_s"] for run in ok)
        worker = [run["worker_cpu_s"] for run in ok if run.get("worker_cpu_s") is not None]
        summary["call"] = {"p50_us": round(percentile(calls, 0.5) * 1e6, 1),
                           "p99_us": round(percentile(calls, 0.99) * 1e6, 1),
                           "mean_us": round(statistics.fmean(calls) * 1e6, 1), "n": len(calls),
                           "host_cpu_ms_per_1000": round(host_cpu / len(calls) * 1e6, 1),
                           "worker_cpu_ms_per_1000": round(sum(worker) / len(calls) * 1e6, 1)
                           if len(worker) == len(ok) else None}
    checks = [run["check_interpreter_files_s"] for run in ok
              if run.get("check_interpreter_files_s") is not None]
    if checks:
        summary["check_interpreter_files_ms"] = round(statistics.median(checks) * 1e3, 3)
    memories = [run["memory"] for run in ok if "memory" in run]
    if memories:
        summary["memory_per_worker"] = {
            key: round(statistics.median(m[key] for m in memories if m[key] is not None), 1)
            for key in memories[0] if any(m[key] is not None for m in memories)}
        summary["memory_per_worker"]["rounds"] = len(memories)
    return summary


RATIO_KEYS = {"start p50": ("start", "p50_ms"), "start p90": ("start", "p90_ms"),
              "call p50": ("call", "p50_us"), "call p99": ("call", "p99_us"),
              "host CPU": ("call", "host_cpu_ms_per_1000"),
              "worker CPU": ("call", "worker_cpu_ms_per_1000"),
              "Uss/worker": ("memory_per_worker", "uss_kib"),
              "Rss/worker": ("memory_per_worker", "rss_kib")}


def comparison_rows(summaries: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for profile in PROFILES:
        old, new = summaries.get(f"old/{profile}"), summaries.get(f"new/{profile}")
        if old is None or new is None:
            continue
        ratios = {}
        for name, (part, key) in RATIO_KEYS.items():
            a, b = (old.get(part) or {}).get(key), (new.get(part) or {}).get(key)
            if a and a > 0 and b is not None:
                ratios[name] = round(b / a, 2)
        rows.append({"profile": profile, "old": old["key"], "new": new["key"],
                     "ratio_new_old": ratios})
    return rows


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def print_table(data: dict[str, Any]) -> None:
    summaries = data["configs"]
    print(f"\nold {data['old']['ref']} ({data['old']['commit'][:12]}) vs new "
          f"{data['new']['commit'][:12]}{' + working tree changes' if data['new']['dirty'] else ''}"
          f"; {data['rounds']} rounds; load {data['load_average']['start']:.2f} -> "
          f"{data['load_average']['end']:.2f}")
    head = (f"{'configuration':<24}{'start p50':>10}{'p90':>8}{'call p50':>10}{'p99':>8}"
            f"{'host CPU':>10}{'wkr CPU':>9}{'Uss/wkr':>9}{'Rss/wkr':>9}{'Pss/wkr':>9}"
            f"{'thr':>5}{'fds':>5}")
    print(head)
    print(f"{'':<24}{'ms':>10}{'ms':>8}{'us':>10}{'us':>8}{'ms/1000':>10}{'ms/1000':>9}"
          f"{'KiB':>9}{'KiB':>9}{'KiB':>9}{'/wkr':>5}{'/wkr':>5}")
    for key, s in summaries.items():
        label = key if not s.get("errors") or s["rounds"] else f"{key} (failed)"
        start, call, mem = s.get("start", {}), s.get("call", {}), s.get("memory_per_worker", {})
        print(f"{label:<24}{fmt(start.get('p50_ms')):>10}{fmt(start.get('p90_ms')):>8}"
              f"{fmt(call.get('p50_us'), 0):>10}{fmt(call.get('p99_us'), 0):>8}"
              f"{fmt(call.get('host_cpu_ms_per_1000')):>10}"
              f"{fmt(call.get('worker_cpu_ms_per_1000')):>9}"
              f"{fmt(mem.get('uss_kib'), 0):>9}{fmt(mem.get('rss_kib'), 0):>9}"
              f"{fmt(mem.get('pss_kib'), 0):>9}{fmt(mem.get('threads')):>5}"
              f"{fmt(mem.get('fds')):>5}")
    for key, s in summaries.items():
        if s.get("check_interpreter_files_ms") is not None:
            print(f"{key}: PluginStore.check_interpreter_files {s['check_interpreter_files_ms']}"
                  " ms (median; before every launch)")
    print("\nnew / old")
    names = list(RATIO_KEYS)
    print(f"{'profile':<10}" + "".join(f"{name:>12}" for name in names))
    for row in data["rows"]:
        print(f"{row['profile']:<10}" + "".join(
            f"{fmt(row['ratio_new_old'].get(name), 2):>12}" for name in names))
    for side, probes in data["default_interpreter_probes"].items():
        for profile, probe in probes.items():
            what = (f"error: {probe['error']}" if "error" in probe
                    else f"runs as uid {probe.get('uid')} (it calls itself uid "
                         f"{probe.get('uid_inside')})")
            print(f"default interpreter, {side} code, {profile}: {what[:300]}")
    for key, s in summaries.items():
        for error in s.get("errors", [])[:1]:
            print(f"{key}: {len(s['errors'])} round(s) failed, e.g. {error}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=8, help="rounds (8)")
    parser.add_argument("--starts", type=int, default=4,
                        help="cold starts per configuration and round (4)")
    parser.add_argument("--calls", type=int, default=1500,
                        help="timed calls per configuration and round (1500)")
    parser.add_argument("--workers", type=int, default=20,
                        help="live workers for the memory figures (20)")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 2 rounds, 2 starts, 200 calls, 4 workers")
    parser.add_argument("--old-ref", default=OLD_REF, help=f"the code before ({OLD_REF})")
    parser.add_argument("--note", help="a line for the report: what else ran on the machine")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the figures here")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.starts, args.calls, args.workers = 2, 2, 200, 4
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    started = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    load_start = os.getloadavg()[0]
    old_commit = git("rev-parse", f"{args.old_ref}^{{commit}}")
    new_commit = git("rev-parse", "HEAD")
    dirty = git("status", "--porcelain", "--", "hostbridge", "isolator") != ""
    root = Path(tempfile.mkdtemp(prefix="bench-security-", dir="/tmp"))
    root.chmod(0o755)
    trees = {"old": root / "old-tree", "new": root / "new-tree"}
    worktree = False
    try:
        git("worktree", "add", "--detach", str(trees["old"]), old_commit)
        worktree = True
        snapshot_working_tree(trees["new"])
        links = root / "links"
        make_links(links)
        python = world_python()
        default_python = str(Path(sys.executable).resolve())
        scratch = root / "scratch"
        scratch.mkdir()
        configs = configurations(root)
        print(f"trees in {root}; world interpreter {python}; default {default_python}",
              flush=True)

        probes: dict[str, dict[str, Any]] = {}
        setups: list[tuple[str, Path, str | None, list[str]]] = [
            ("old", root / "old", python, []), ("new", root / "new", python, [])]
        if os.geteuid() == 0 and Path(python) != Path(default_python):
            setups += [("new", root / "new-default", None, []),
                       ("old", root / "old-default", None, ["standard", "strict"])]
        for side, where, interpreter, probe in setups:
            where.mkdir()
            result = run_child(trees[side], {
                "what": "setup", "side": side, "store": str(where / "store"),
                "python": interpreter, "links": str(links), "probe": probe}, scratch)
            if "error" in result:
                raise BenchError(f"installing into the {side} store {where}: {result['error']}")
            if probe:
                probes[side] = result["probes"]
            print(f"setup {side} ({where.name}) done", flush=True)
        if os.geteuid() == 0 and Path(python) == Path(default_python):
            configs = [c for c in configs if c["interpreter"] != "default"]

        runs: dict[str, list[dict[str, Any]]] = {c["key"]: [] for c in configs}
        began = time.perf_counter()
        for index in range(args.rounds):
            for config in round_order(configs, index):
                spec = {"what": "measure", "side": config["side"], "store": config["store"],
                        "python": python if config["interpreter"] == "world" else None,
                        "profile": config["profile"], "starts": args.starts,
                        "calls": args.calls, "workers": args.workers}
                runs[config["key"]].append(run_child(trees[config["side"]], spec, scratch))
            print(f"round {index + 1}/{args.rounds} done ({time.perf_counter() - began:.0f} s, "
                  f"load {os.getloadavg()[0]:.2f})", flush=True)
    finally:
        if worktree:
            subprocess.run(["git", "worktree", "remove", "--force", str(trees["old"])],
                           cwd=REPO_ROOT, capture_output=True, check=False)
        shutil.rmtree(root, ignore_errors=True)
        subprocess.run(["git", "worktree", "prune"], cwd=REPO_ROOT, capture_output=True,
                       check=False)
    summaries = {c["key"]: summarise(c, runs[c["key"]]) for c in configs}
    return {
        "benchmark": "security", "date": started, "host_uid": os.geteuid(),
        "old": {"ref": args.old_ref, "commit": old_commit,
                "subject": git("log", "-1", "--format=%s", old_commit)},
        "new": {"commit": new_commit, "subject": git("log", "-1", "--format=%s", new_commit),
                "dirty": dirty},
        "python": {"world": python, "default": default_python},
        "rounds": args.rounds, "starts_per_round": args.starts,
        "calls_per_round": args.calls, "workers": args.workers, "quick": args.quick,
        "load_average": {"start": round(load_start, 2), "end": round(os.getloadavg()[0], 2)},
        "note": args.note, "cpus": os.cpu_count(),
        "duration_s": round(time.perf_counter() - began, 1),
        "configs": summaries, "rows": comparison_rows(summaries),
        "default_interpreter_probes": probes,
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        return child_main(argv[1], argv[2])
    args = parse_args(argv)
    try:
        data = run(args)
    except (BenchError, subprocess.CalledProcessError) as exc:
        print(f"bench_security: {exc}", file=sys.stderr)
        return 2
    print_table(data)
    if args.json:
        args.json.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    failed = [key for key, s in data["configs"].items() if s.get("errors")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
