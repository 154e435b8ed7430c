# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fleet benchmark: playbooks/converge.yml on N simulated workers in the installer's state.

Not part of the test run. For each N it builds N state files from the collection's
installer-default example with ``faults.latency_ms`` on every remote call, converges them with
``--forks``, converges them again (the re-run: nothing should be left to change), then runs
Ansible's own floor on the same inventory with the same forks: a play of trivial
``ansible.builtin.debug`` tasks, one per remote call of the floor (3 for a converge, 1 for the
re-run). For the converge and for the re-run it prints:

- wall time;
- remote calls per host, max and min over hosts (the simulated worker counts them);
- task executions per host, max over hosts, from ansible-playbook's PLAY RECAP: ok + failed +
  skipped + rescued + unreachable. ``changed`` and ``ignored`` are not added: Ansible counts
  those tasks in ``ok`` already (strategy/__init__.py increments both), so adding them would count
  a task twice;
- controller CPU per host: user + system time of ansible-playbook and its workers, divided by N;
- wall time against the remote-call floor, minimum calls x latency x waves with waves =
  ceil(N / forks) and 3 calls for a converge (read, apply, restart with its verification), 1 for
  an already-right worker. converge.yml runs ``serial: 25%`` by default: at least 4 waves, so
  below 4 x forks hosts that ratio cannot come near 1;
- controller CPU against Ansible's own floor measured in the same run (CPU per host of the
  debug play).

It also prints the bytes of PowerShell each operation sends (the script travels with every call)
and when it compiles C# (Add-Type, one to three seconds of a call on a real host), and for the
converge and the re-run the most calls per host to operations that may compile C#. With
``--busy-percent P --busy-seconds S`` it gives P % of the hosts (spread over the fleet) one
render session, ``services.DeadlineWorker.sessions: [{id: session-1, ends_after_s: S}]``,
and reports after the converge the sessions it interrupted (``interrupted_sessions`` over all
hosts) and the hosts still "restart pending" (``restarts`` still 0).

With ``--events N`` it also runs the converge and the re-run of N workers through ansible-runner,
as AWX runs a job (the project of awx/project, at the default verbosity), and prints per host the
bytes of the job events AWX would store: those that carry the host's task results (runner_on_ok,
_failed, _skipped, _unreachable) and all of them (runner_on_start included), the task executions
per host from the artifacts' stats (with and without localhost in --limit: without it, the first
host also runs the summary's tasks), and the bytes of the set_stats data (the job's artifacts).
``--published N`` prints the bytes of what converge publishes for N workers, built in-process by
the functions converge.yml's summary calls, from outcomes the role computes on simulated readings:
all fixed, all refused, and the worst case of every host failed with a long message.

The simulated workers keep their state in JSON files by default: the simulator parses and rewrites
a host's file at every call, on the controller, and for YAML it does so with ruamel.yaml's round
trip (which keeps the comments of a hand-written file), a cost of the stand-in that a real farm
does not have (there the script runs on the worker). ``--state-format yaml`` measures it anyway.

    .venv/bin/python benchmarks/fleet.py                       # N = 1, 10, 100, 300
    .venv/bin/python benchmarks/fleet.py --sizes 1,10 --latency-ms 1000
    .venv/bin/python benchmarks/fleet.py --sizes 100 --busy-percent 20 --busy-seconds 30
    .venv/bin/python benchmarks/fleet.py --sizes 0 --events 10 --published 3000
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "playbooks" / "simulated" / "installer-default.yml"
CONVERGE = ROOT / "playbooks" / "converge.yml"
SERVICE = "DeadlineWorker"
GROUP = "deadline_workers"

# The fewest remote calls that can converge a worker: read it, apply every change in one call,
# restart with the verification reading returned by the same call; an already-right worker: read.
FLOOR_CALLS = {"converge": 3, "rerun": 1}
RUNS = (("converge", "converge"), ("rerun", "re-run"))

# "worker-001 : ok=10 changed=5 unreachable=0 failed=0 skipped=3 rescued=0 ignored=0"
_RECAP_LINE = re.compile(r"^(?P<host>\S+)\s+:\s+(?P<counts>(?:[a-z]+=\d+\s*)+)$")
_TASK_COUNTERS = ("ok", "failed", "skipped", "rescued", "unreachable")


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def busy_hosts(count: int, percent: float) -> set[int]:
    """round(count x percent / 100) host numbers (1-based), spread evenly over the fleet."""
    wanted = min(count, round(count * percent / 100.0))
    return {1 + (k * count) // wanted for k in range(wanted)} if wanted else set()


def build_fleet(
    folder: Path, count: int, latency_ms: int, busy: set[int], busy_seconds: float, *, state_format: str = "json"
) -> dict[str, Path]:
    paths = {}
    for index in range(1, count + 1):
        state = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
        state["faults"] = {"latency_ms": latency_ms}
        host = f"worker-{index:03d}"
        state["hostname"] = host.upper()
        if index in busy:
            state["services"][SERVICE]["sessions"] = [{"id": "session-1", "ends_after_s": busy_seconds}]
        path = folder / f"{host}.{state_format}"
        if state_format == "json":
            path.write_text(json.dumps(state, indent=1), encoding="utf-8")
        else:
            path.write_text(yaml.safe_dump(state, sort_keys=False, width=4096), encoding="utf-8")
        paths[host] = path
    hosts = {host: {"ansible_connection": "deadline_cloud.cmf.simulated_worker", "simulated_worker_state": str(path)} for host, path in paths.items()}
    inventory = {"all": {"children": {GROUP: {"hosts": hosts}}}}
    (folder / "inventory.yml").write_text(yaml.safe_dump(inventory), encoding="utf-8")
    return paths


def states(paths: dict[str, Path]) -> dict[str, dict]:
    return {host: yaml.safe_load(path.read_text(encoding="utf-8")) for host, path in paths.items()}


def calls(paths: dict[str, Path]) -> dict[str, int]:
    return {host: int(state.get("calls_total") or 0) for host, state in states(paths).items()}


def calls_by_operation(paths: dict[str, Path]) -> dict[str, dict[str, int]]:
    return {host: {op: int(n) for op, n in (state.get("calls") or {}).items()} for host, state in states(paths).items()}


def tasks_per_host(log: Path, hosts: set[str]) -> dict[str, int]:
    """Task executions per host of the workers, from the last PLAY RECAP of ``log``."""
    text = log.read_text(encoding="utf-8", errors="replace")
    recap = text.rsplit("PLAY RECAP", 1)[-1] if "PLAY RECAP" in text else ""
    found = {}
    for line in recap.splitlines():
        match = _RECAP_LINE.match(line.strip())
        if match and match["host"] in hosts:
            counts = {key: int(value) for key, value in re.findall(r"([a-z]+)=(\d+)", match["counts"])}
            found[match["host"]] = sum(counts.get(key, 0) for key in _TASK_COUNTERS)
    return found


def playbook(folder: Path, play: Path, forks: int, env: dict, log_name: str) -> tuple[float, float, int]:
    """Wall time, controller CPU and return code of one ansible-playbook run."""
    command = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(folder / "inventory.yml"), "--forks", str(forks), str(play)]
    cpu = children_cpu()
    start = time.perf_counter()
    with open(folder / log_name, "w", encoding="utf-8") as log:
        done = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env, check=False)
    return time.perf_counter() - start, children_cpu() - cpu, done.returncode


def floor_play(folder: Path, tasks: int) -> Path:
    play = [
        {
            "name": f"Ansible's floor: {tasks} trivial task(s) per host",
            "hosts": GROUP,
            "gather_facts": False,
            "tasks": [{"name": f"Trivial task {n}", "ansible.builtin.debug": {"msg": f"call {n}"}} for n in range(1, tasks + 1)],
        }
    ]
    path = folder / f"floor-{tasks}.yml"
    path.write_text(yaml.safe_dump(play, sort_keys=False), encoding="utf-8")
    return path


def run_size(
    count: int, forks: int, latency_ms: int, env: dict, *, keep: bool, busy_percent: float, busy_seconds: float, state_format: str = "json"
) -> dict:
    folder = Path(tempfile.mkdtemp(prefix=f"deadline-cmf-bench-{count}-"))
    try:
        busy = busy_hosts(count, busy_percent)
        paths = build_fleet(folder, count, latency_ms, busy, busy_seconds, state_format=state_format)
        hosts = set(paths)
        waves = math.ceil(count / forks)
        row: dict = {"n": count, "busy": len(busy)}
        failed = []
        before = dict.fromkeys(paths, 0)
        before_by_operation: dict[str, dict[str, int]] = {host: {} for host in paths}
        for run, _label in RUNS:
            wall, cpu, rc = playbook(folder, CONVERGE, forks, env, f"{run}.log")
            after = calls(paths)
            made = [after[host] - before[host] for host in paths]
            before = after
            by_operation = calls_by_operation(paths)
            compiling = [
                sum(n - before_by_operation[host].get(op, 0) for op, n in by_operation[host].items() if compiles_csharp(op))
                for host in paths
            ]
            before_by_operation = by_operation
            if run == "converge":
                settled = states(paths).values()
                row["interrupted"] = sum(len(s["services"][SERVICE].get("interrupted_sessions") or []) for s in settled)
                row["restart_pending"] = sum(1 for s in settled if not s["services"][SERVICE].get("restarts"))
            tasks = tasks_per_host(folder / f"{run}.log", hosts)
            floor_wall = FLOOR_CALLS[run] * latency_ms / 1000.0 * waves
            row[run] = {
                "wall": wall,
                "calls_max": max(made),
                "calls_min": min(made),
                "csharp_calls_max": max(compiling),
                "tasks_max": max(tasks.values()) if len(tasks) == count else None,
                "cpu_per_host": cpu / count,
                "floor_wall": floor_wall,
                "wall_ratio": wall / floor_wall if floor_wall else float("nan"),
            }
            if rc or len(tasks) != count:
                failed.append(f"{run} rc {rc}, {len(tasks)} of {count} hosts in its PLAY RECAP")
        for run, _label in RUNS:
            _wall, cpu, rc = playbook(folder, floor_play(folder, FLOOR_CALLS[run]), forks, env, f"floor-{run}.log")
            row[run]["floor_cpu_per_host"] = cpu / count
            row[run]["cpu_ratio"] = row[run]["cpu_per_host"] / (cpu / count) if cpu else float("nan")
            if rc:
                failed.append(f"floor play of the {run} rc {rc}")
        if failed:
            print(f"N={count}: {'; '.join(failed)}; see {folder}", file=sys.stderr)
            keep = True
        return row
    finally:
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)


RESULT_EVENTS = ("runner_on_ok", "runner_on_failed", "runner_on_skipped", "runner_on_unreachable")


def runner_job(private: Path, ident: str, env: dict, cmdline: str = "") -> dict:
    """One ansible-runner job on ``private`` (project, inventory): per host event bytes, stats, artifacts."""
    (private / "env").mkdir(exist_ok=True)
    (private / "env" / "cmdline").write_text(cmdline, encoding="utf-8")
    runner = Path(sys.executable).parent / "ansible-runner"
    run_env = {k: v for k, v in env.items() if k != "ANSIBLE_STDOUT_CALLBACK"}
    subprocess.run([str(runner), "run", str(private), "-p", "converge.yml", "--ident", ident], env=run_env, capture_output=True, check=False)
    results: dict[str, int] = {}
    every: dict[str, int] = {}
    stats: dict = {}
    for path in (private / "artifacts" / ident / "job_events").glob("*.json"):
        event = json.loads(path.read_text(encoding="utf-8"))
        size = len(path.read_bytes())
        host = (event.get("event_data") or {}).get("host")
        if event["event"] == "playbook_on_stats":
            stats = event["event_data"]
        if not host:
            continue
        every[host] = every.get(host, 0) + size
        if event["event"] in RESULT_EVENTS:
            results[host] = results.get(host, 0) + size
    tasks = {
        host: sum(int(stats.get(key, {}).get(host, 0)) for key in ("ok", "failures", "skipped", "dark", "rescued"))
        for host in stats.get("processed", {})
    }
    rc = (private / "artifacts" / ident / "rc").read_text().strip()
    return {"results": results, "every": every, "tasks": tasks, "artifact": len(json.dumps(stats.get("artifact_data") or {})), "rc": rc}


def run_events(count: int, env: dict, keep: bool) -> None:
    folder = Path(tempfile.mkdtemp(prefix=f"deadline-cmf-bench-events-{count}-"))
    try:
        build_fleet(folder, count, 0, set(), 0.0)
        private = folder / "job"
        shutil.copytree(ROOT / "awx" / "project", private / "project")
        (private / "inventory").mkdir()
        shutil.copy(folder / "inventory.yml", private / "inventory" / "hosts.yml")
        rows = []
        runs = (("converge", "converge", ""), ("rerun", "re-run", ""), ("limited", "re-run, --limit without localhost", f"--limit {GROUP}"))
        for ident, label, cmdline in runs:
            job = runner_job(private, ident, env, cmdline)
            workers = [h for h in job["every"] if h.startswith("worker-")]
            rows.append([
                label, job["rc"], max(job["results"].get(h, 0) for h in workers), max(job["every"][h] for h in workers),
                max(job["tasks"].get(h, 0) for h in workers), min(job["tasks"].get(h, 0) for h in workers), job["artifact"],
            ])
        print(f"\nJob events per worker, {count} workers through ansible-runner (awx/project, default verbosity):\n")
        header = ["run", "rc", "result events/host max (bytes)", "all events/host max (bytes)", "tasks/host max", "tasks/host min", "set_stats (bytes)"]
        print_table(header, rows)
    finally:
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)


def published_sizes(count: int, collections: Path) -> list[list]:
    """Bytes of converge's set_stats data for ``count`` workers, built by the functions its summary
    calls, from outcomes the role computes on simulated readings."""
    sys.path.insert(0, str(collections))
    from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils import _fleet as fleet
    from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils import _role as role
    from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._agent import rules
    from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host.simulated.agent import read_agent_info
    from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host.simulated.state import SimulatedState

    variables = yaml.safe_load((ROOT / "roles" / "deadline_worker_agent_user" / "defaults" / "main.yml").read_text(encoding="utf-8"))

    def reading(name: str) -> dict:
        state = yaml.safe_load((ROOT / "playbooks" / "simulated" / f"{name}.yml").read_text(encoding="utf-8"))
        config = r"C:\ProgramData\Amazon\Deadline\Config\worker.toml"
        raw = read_agent_info(SimulatedState(state), {"service": SERVICE, "config_path": config, "account": ""})
        return rules.result_of(raw)

    fixable = reading("installer-default")
    plan = role.plan(fixable, variables)
    fixed = role.outcome(fixable, plan, rights={"changed": True, "added": plan["rights_to_grant"]},
                         groups={"changed": True, "removed": plan["groups_to_leave"]}, config={"changed": True},
                         restart={"changed": True, "restarted": True, "healthy": True, "info": {"ready": True, "findings": []}})
    assert fixed["status"] == "fixed", fixed["cause"]
    refused_reading = reading("env-override")
    refused = role.outcome(refused_reading, role.plan(refused_reading, variables))
    failed = role.outcome(fixable, plan, error="control_service: " + "the agent stopped with a long error. " * 200)
    rows = []
    for label, result in (("fixed", fixed), ("refused", refused), ("failed, 7 KB messages", failed)):
        # host names of 64 characters: a long FQDN
        results = {f"render-node-{index:05d}".ljust(52, "x") + ".farm.local" + "x": result for index in range(count)}
        published = fleet.converge_published(fleet.converge_summary(results))
        rows.append([count, label, len(json.dumps(published))])
    return rows


def script_sizes(collections: Path) -> list[tuple[str, int, str]]:
    """Bytes of PowerShell each operation sends to a Windows host (UTF-8, includes expanded), and
    when it compiles C#."""
    sys.path.insert(0, str(collections))
    from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host.operations import OPERATIONS
    from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host.powershell_host import CSHARP_COMPILES, script_text

    return [(name, len(script_text(name).encode("utf-8")), CSHARP_COMPILES[name]) for name in OPERATIONS]


def compiles_csharp(operation: str) -> bool:
    """Whether ``operation`` may compile C# on a Windows host (an upper bound: some only sometimes)."""
    from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host.powershell_host import CSHARP_COMPILES, NEVER

    return CSHARP_COMPILES[operation] != NEVER


def print_table(header: list[str], rows: list[list]) -> None:
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(str(cell) for cell in row) + " |", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1,10,100,300", help="fleet sizes, comma-separated (default 1,10,100,300)")
    parser.add_argument("--forks", type=int, default=25)
    parser.add_argument("--latency-ms", type=int, default=500, help="simulated latency of every remote call")
    parser.add_argument("--keep", action="store_true", help="keep each fleet's folder (state files and logs)")
    parser.add_argument("--busy-percent", type=float, default=0.0, help="percentage of hosts that run one render session")
    parser.add_argument("--busy-seconds", type=float, default=30.0, help="that session ends this many seconds after a call first sees it")
    parser.add_argument(
        "--state-format",
        choices=["json", "yaml"],
        default="json",
        help="the simulated workers' state files: json (default) keeps the stand-in's own parsing out of the controller's CPU;"
        " yaml makes the simulator round-trip YAML at every call, as it does for hand-written, commented files",
    )
    parser.add_argument("--events", type=int, default=0, help="also measure the job events of N workers through ansible-runner")
    parser.add_argument("--published", type=int, default=0, help="also measure what converge publishes for N workers")
    args = parser.parse_args()
    if not 0 <= args.busy_percent <= 100:
        parser.error("--busy-percent must be between 0 and 100")

    collections = Path(tempfile.mkdtemp(prefix="deadline-cmf-bench-collections-"))
    link = collections / "ansible_collections" / "deadline_cloud" / "cmf"
    link.parent.mkdir(parents=True)
    link.symlink_to(ROOT, target_is_directory=True)
    env = dict(os.environ)
    env.update(
        ANSIBLE_COLLECTIONS_PATH=str(collections),
        ANSIBLE_HOST_KEY_CHECKING="False",
        ANSIBLE_RETRY_FILES_ENABLED="False",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
    )
    print(
        f"machine: {platform.system()} {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()};"
        f" forks={args.forks}, latency={args.latency_ms} ms per remote call"
        + (f"; {args.busy_percent:g}% of hosts busy for {args.busy_seconds:g} s" if args.busy_percent else "")
    )
    try:
        print("\nPowerShell sent per call, by operation:\n")
        print_table(["operation", "script bytes", "compiles C# (Add-Type)"], [list(row) for row in script_sizes(collections)])
        print("\nConverge and re-run (floors: " + ", ".join(f"{label} {FLOOR_CALLS[run]} call(s)" for run, label in RUNS) + "):\n")
        print_table(
            [
                "N",
                "run",
                "wall (s)",
                "calls/host max",
                "calls/host min",
                "tasks/host max",
                "controller CPU/host (s)",
                "call floor (s)",
                "wall / call floor",
                "Ansible floor CPU/host (s)",
                "CPU / Ansible floor",
            ],
            [],
        )
        rows = []
        for size in (int(s) for s in args.sizes.split(",") if s.strip() and int(s) > 0):
            row = run_size(
                size, args.forks, args.latency_ms, env, keep=args.keep, busy_percent=args.busy_percent, busy_seconds=args.busy_seconds,
                state_format=args.state_format,
            )
            rows.append(row)
            for run, label in RUNS:
                r = row[run]
                print(
                    f"| {row['n']} | {label} | {r['wall']:.1f} | {r['calls_max']} | {r['calls_min']} | {r['tasks_max'] if r['tasks_max'] is not None else '?'}"
                    f" | {r['cpu_per_host']:.2f} | {r['floor_wall']:.1f} | {r['wall_ratio']:.2f} | {r['floor_cpu_per_host']:.2f} | {r['cpu_ratio']:.2f} |",
                    flush=True,
                )
        print("\nCalls per host to operations that may compile C# (each is a compile on a real host, when it does):\n")
        print_table(
            ["N", "run", "calls/host max"],
            [[row["n"], label, row[run]["csharp_calls_max"]] for row in rows for run, label in RUNS],
        )
        if args.busy_percent:
            print("\nRender sessions, after the converge:\n")
            print_table(
                ["N", "busy hosts", "sessions interrupted", "hosts restart pending"],
                [[row["n"], row["busy"], row["interrupted"], row["restart_pending"]] for row in rows],
            )
        if args.events:
            run_events(args.events, env, args.keep)
        if args.published:
            print("\nWhat converge publishes with set_stats (bytes of its JSON), by the hosts' outcome:\n")
            print_table(["N", "every host", "set_stats (bytes)"], published_sizes(args.published, collections))
    finally:
        shutil.rmtree(collections, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
