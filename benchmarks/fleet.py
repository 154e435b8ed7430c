# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fleet benchmark: playbooks/converge.yml on N simulated workers in the installer's state.

Not part of the test run. For each N it builds N state files from the collection's
installer-default example with ``faults.latency_ms`` on every remote call, converges them with
``--forks``, then converges them again (nothing left to change), and prints one table row:

- wall time of the converge and of the re-run,
- remote calls per host (the simulated worker counts them: max over hosts, converge and re-run),
- controller CPU per host (user + system time of ansible-playbook and its workers, divided by N),
- the ratio of the converge's wall time to its floor, calls x latency x N / forks: the time the
  remote calls alone would take with perfect parallelism (1.0 is the unreachable ideal).

    .venv/bin/python benchmarks/fleet.py                       # N = 1, 10, 100, 300
    .venv/bin/python benchmarks/fleet.py --sizes 1,10 --latency-ms 1000
"""

from __future__ import annotations

import argparse
import math
import os
import platform
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


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def build_fleet(folder: Path, count: int, latency_ms: int) -> dict[str, Path]:
    state = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    state["faults"] = {"latency_ms": latency_ms}
    paths = {}
    for index in range(1, count + 1):
        host = f"worker-{index:03d}"
        state["hostname"] = host.upper()
        path = folder / f"{host}.yml"
        path.write_text(yaml.safe_dump(state, sort_keys=False, width=4096), encoding="utf-8")
        paths[host] = path
    hosts = {
        host: {"ansible_connection": "deadline_cloud.cmf.simulated_worker", "simulated_worker_state": str(path)}
        for host, path in paths.items()
    }
    inventory = {"all": {"children": {"deadline_workers": {"hosts": hosts}}}}
    (folder / "inventory.yml").write_text(yaml.safe_dump(inventory), encoding="utf-8")
    return paths


def calls(paths: dict[str, Path]) -> list[int]:
    return [int(yaml.safe_load(p.read_text(encoding="utf-8")).get("calls_total") or 0) for p in paths.values()]


def converge(folder: Path, forks: int, env: dict, log_name: str) -> tuple[float, float, int]:
    command = [
        str(Path(sys.executable).parent / "ansible-playbook"),
        "-i",
        str(folder / "inventory.yml"),
        "--forks",
        str(forks),
        str(CONVERGE),
    ]
    cpu = children_cpu()
    start = time.perf_counter()
    with open(folder / log_name, "w", encoding="utf-8") as log:
        done = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env, check=False)
    return time.perf_counter() - start, children_cpu() - cpu, done.returncode


def run_size(count: int, forks: int, latency_ms: int, env: dict, keep: bool) -> dict:
    folder = Path(tempfile.mkdtemp(prefix=f"deadline-cmf-bench-{count}-"))
    try:
        paths = build_fleet(folder, count, latency_ms)
        wall, cpu, rc = converge(folder, forks, env, "converge.log")
        first = calls(paths)
        rerun_wall, _rerun_cpu, rerun_rc = converge(folder, forks, env, "rerun.log")
        second = [b - a for a, b in zip(first, calls(paths), strict=True)]
        if rc or rerun_rc:
            print(f"N={count}: ansible-playbook failed (rc {rc}/{rerun_rc}); see {folder}", file=sys.stderr)
            keep = True
        floor = max(first) * latency_ms / 1000.0 * count / forks
        # below `forks` hosts the calls of one host run one after another: that floor is higher
        waves_floor = max(first) * latency_ms / 1000.0 * math.ceil(count / forks)
        return {
            "n": count,
            "wall": wall,
            "rerun_wall": rerun_wall,
            "calls": max(first),
            "calls_min": min(first),
            "rerun_calls": max(second),
            "cpu_per_host": cpu / count,
            "floor": floor,
            "ratio": wall / floor if floor else float("nan"),
            "waves_ratio": wall / waves_floor if waves_floor else float("nan"),
        }
    finally:
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1,10,100,300", help="fleet sizes, comma-separated (default 1,10,100,300)")
    parser.add_argument("--forks", type=int, default=25)
    parser.add_argument("--latency-ms", type=int, default=500, help="simulated latency of every remote call")
    parser.add_argument("--keep", action="store_true", help="keep each fleet's folder (state files and logs)")
    args = parser.parse_args()

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
    )
    header = (
        "| N | converge wall (s) | re-run wall (s) | calls/host converge | calls/host re-run"
        " | controller CPU/host (s) | floor (s) | wall / floor | wall / (calls x latency x ceil(N/forks)) |"
    )
    print(header)
    print("|" + "---|" * 9)
    try:
        for size in (int(s) for s in args.sizes.split(",") if s.strip()):
            row = run_size(size, args.forks, args.latency_ms, env, args.keep)
            print(
                f"| {row['n']} | {row['wall']:.1f} | {row['rerun_wall']:.1f} | {row['calls']}"
                f" | {row['rerun_calls']} | {row['cpu_per_host']:.2f} | {row['floor']:.1f} | {row['ratio']:.2f} | {row['waves_ratio']:.2f} |",
                flush=True,
            )
    finally:
        shutil.rmtree(collections, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
