# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/converge.yml and playbooks/diagnose.yml on small simulated fleets."""

from __future__ import annotations

import copy
import csv
import io
import json
import re
from pathlib import Path

import simworker
import yaml

PLAYBOOKS = simworker.REPO_ROOT / "playbooks"
FLEET = {
    "worker-01": "installer-default",
    "worker-02": "localized-bom",
    "worker-03": "legacy-keys",
    "worker-04": "env-override",
    "worker-05": "old-agent",
}
FIXABLE = ("worker-01", "worker-02", "worker-03")
WORKER_JSON = r"C:\ProgramData\Amazon\Deadline\Cache\worker.json"


def example(name: str) -> dict:
    if name == "installer-default":
        return simworker.example_state()
    return yaml.safe_load((simworker.EXAMPLES / f"{name}.yml").read_text(encoding="utf-8"))


def fleet(tmp_path: Path, hosts: dict[str, str] | None = None) -> tuple[Path, dict[str, Path]]:
    hosts = FLEET if hosts is None else hosts
    paths = {host: simworker.save_state(tmp_path / f"{host}.yml", example(name)) for host, name in hosts.items()}
    return simworker.write_inventory(tmp_path, paths), paths


def run(playbook: str, inventory: Path, *args: str):
    env = simworker.ansible_env()
    return simworker.run_playbook(PLAYBOOKS / playbook, inventory, *args, env=env)


def strip_calls(state: dict) -> dict:
    state = copy.deepcopy(state)
    state.pop("calls", None)
    state.pop("calls_total", None)
    return state


def is_converged(state: dict) -> bool:
    admins = state["accounts"]["S-1-5-32-544"].get("members") or []
    return (
        "S-1-5-21-3623811015-3361044348-30300820-1001" not in admins
        and state["services"]["DeadlineWorker"]["restarts"] == 1
    )


def test_diagnose_is_read_only_and_summarizes_the_run_in_json(tmp_path):
    inventory, paths = fleet(tmp_path)
    report = tmp_path / "report.json"
    result = run("diagnose.yml", inventory, "-e", f"deadline_diagnose_report={report}")
    assert result.returncode == 0, result.stdout[-4000:]
    for host, path in paths.items():
        state = simworker.load_state(path)
        assert strip_calls(state) == strip_calls(example(FLEET[host])), f"diagnose changed {host}"
        assert state["calls_total"] == 1
    # per host findings with their ids, and one summary at the end
    assert "BLOCKER ENV_OVERRIDE:" in result.stdout and "BLOCKER AGENT_VERSION_UNSUPPORTED:" in result.stdout
    assert "5 hosts: 0 ready, 5 not ready" in result.stdout
    assert result.stdout.count("TASK [Show the summary of the run]") == 1
    summary = json.loads(report.read_text(encoding="utf-8"))
    assert summary["total"] == 5 and summary["ready"] == 0
    counts = {f["id"]: f["count"] for f in summary["findings"]}
    assert counts["AGENT_OPT_IN_MISSING"] == 5 and counts["ENV_OVERRIDE"] == 1 and counts["CONFIG_ENCODING"] == 1
    assert summary["holding_back"][0]["id"] == "AGENT_OPT_IN_MISSING"


def test_diagnose_writes_csv_lists_hosts_without_a_reading_and_can_gate(tmp_path):
    inventory, paths = fleet(tmp_path, {"worker-01": "installer-default", "worker-02": "installer-default"})
    paths["worker-02"].unlink()  # a host that cannot be read
    report = tmp_path / "report.csv"
    result = run(
        "diagnose.yml",
        inventory,
        "-e",
        f"deadline_diagnose_report={report}",
        "-e",
        "deadline_diagnose_fail_unless_ready=true",
    )
    assert result.returncode != 0  # asked to fail when a host is not ready
    assert "2 hosts: 0 ready, 1 not ready" in result.stdout and "without a reading" in result.stdout
    rows = list(csv.DictReader(io.StringIO(report.read_text(encoding="utf-8"))))
    assert {r["host"] for r in rows} == {"worker-01", "worker-02"}
    assert [r["status"] for r in rows if r["host"] == "worker-02"] in (["error"], ["unreachable"])
    assert "AGENT_OPT_IN_MISSING" in {r["finding"] for r in rows if r["host"] == "worker-01"}


def test_converge_fixes_every_host_it_can_while_others_are_refused(tmp_path):
    inventory, paths = fleet(tmp_path)
    result = run("converge.yml", inventory)
    assert result.returncode != 0  # two hosts were refused
    for host in FIXABLE:
        assert is_converged(simworker.load_state(paths[host])), host
    for host in ("worker-04", "worker-05"):
        state = simworker.load_state(paths[host])
        assert strip_calls(state) == strip_calls(example(FLEET[host])), f"{host} was changed"
    after = tmp_path / "after.json"
    diagnosed = run("diagnose.yml", inventory, "-e", f"deadline_diagnose_report={after}")
    assert diagnosed.returncode == 0
    summary = json.loads(after.read_text(encoding="utf-8"))
    assert sorted(h["host"] for h in summary["hosts"] if h["ready"]) == list(FIXABLE)
    assert "AGENT_USER_IS_ADMIN" not in {f["id"] for f in summary["findings"] if set(f["hosts"]) & set(FIXABLE)}


def test_converge_targets_an_overridable_group_in_waves(tmp_path):
    inventory, paths = fleet(tmp_path)
    result = run(
        "converge.yml", inventory, "-e", "deadline_workers_hosts=worker-01:worker-02", "-e", "deadline_workers_serial=1"
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert result.stdout.count("PLAY [Converge Deadline Cloud workers") == 2  # two waves of one
    assert is_converged(simworker.load_state(paths["worker-01"]))
    assert is_converged(simworker.load_state(paths["worker-02"]))
    assert "calls_total" not in simworker.load_state(paths["worker-03"])  # not targeted


def test_waves_go_on_past_refused_hosts_and_the_summary_counts_each_state(tmp_path):
    hosts = {"worker-04": "env-override", "worker-05": "old-agent", "worker-01": "installer-default", "worker-02": "installer-default"}
    inventory, paths = fleet(tmp_path, hosts)
    # worker-01 has run once (the agent wrote its worker id); worker-02 not yet
    started = simworker.load_state(paths["worker-01"])
    worker_json = b'{"worker_id": "worker-0123456789abcdef0123456789abcdef"}'
    simworker.save_state(paths["worker-01"], simworker.set_file_bytes(started, worker_json, path=WORKER_JSON))
    report = tmp_path / "converge.json"
    env = simworker.ansible_env(ANSIBLE_SHOW_CUSTOM_STATS="1")
    result = simworker.run_playbook(
        PLAYBOOKS / "converge.yml", inventory, "-e", "deadline_workers_serial=1", "-e", f"deadline_converge_report={report}", env=env
    )
    assert result.returncode != 0  # two hosts were refused
    assert result.stdout.count("PLAY [Converge Deadline Cloud workers") == 4  # every wave ran
    for host in ("worker-01", "worker-02"):
        assert is_converged(simworker.load_state(paths[host])), host
    summary = json.loads(report.read_text(encoding="utf-8"))
    assert summary["counts"]["fixed"] == 2 and summary["counts"]["refused"] == 2
    assert "4 hosts: 2 fixed, 0 already fine, 2 refused" in result.stdout
    assert "CUSTOM STATS" in result.stdout and "deadline_converge_summary" in result.stdout
    # a refused host's cause is printed once, in the summary, not as a failure of the role
    printed = result.stdout.split("CUSTOM STATS")[0]
    assert printed.count("ENV_OVERRIDE:") == 1, printed
    # without AWS credentials (or boto3), or without a worker id, the host's view decides, and the run says so once
    credentials = "no AWS credentials on the controller|boto3 is not installed on the controller"
    no_id = re.escape("worker_id not known (worker.toml [worker], worker.json)")
    notices = re.findall(rf"the Deadline Cloud API was not asked \((?:{credentials}); {no_id}\)", printed)
    assert len(notices) == 1, printed


def test_failures_beyond_the_threshold_stop_the_run_naming_the_hosts(tmp_path):
    hosts = {"worker-09": "installer-default", "worker-01": "installer-default", "worker-02": "installer-default"}
    inventory, paths = fleet(tmp_path, hosts)
    paths["worker-09"].unlink()  # a host whose every call fails
    result = run(
        "converge.yml", inventory, "-e", "deadline_workers_serial=1", "-e", "deadline_workers_max_fail_percentage=0",
        "-e", "deadline_workers_hosts=worker-09:worker-01:worker-02",
    )
    assert result.returncode != 0
    assert "stopping the run" in result.stdout and "worker-09" in result.stdout
    assert "calls_total" not in simworker.load_state(paths["worker-01"])  # later waves were not run
    assert "calls_total" not in simworker.load_state(paths["worker-02"])


def test_the_playbooks_fail_loudly_when_the_pattern_matches_no_host(tmp_path):
    inventory, _paths = fleet(tmp_path, {"worker-01": "installer-default"})
    for playbook in ("converge.yml", "diagnose.yml"):
        result = run(playbook, inventory, "-e", "deadline_workers_hosts=render_nodes", "-e", "deadline_diagnose_fail_unless_ready=true")
        assert result.returncode != 0, playbook
        assert "matches no host" in result.stdout, result.stdout[-2000:]


def test_diagnose_works_under_the_free_strategy_and_says_what_converge_does(tmp_path):
    inventory, _paths = fleet(tmp_path)
    report = tmp_path / "report.csv"
    env = simworker.ansible_env(ANSIBLE_STRATEGY="free")
    result = simworker.run_playbook(PLAYBOOKS / "diagnose.yml", inventory, "-e", f"deadline_diagnose_report={report}", env=env)
    assert result.returncode == 0, result.stdout[-4000:]
    assert "5 hosts: 0 ready, 5 not ready" in result.stdout
    rows = list(csv.DictReader(io.StringIO(report.read_text(encoding="utf-8"))))
    action = {(r["host"], r["finding"]): r["converge"] for r in rows}
    assert action[("worker-04", "ENV_OVERRIDE")] == "refuses"
    assert action[("worker-01", "AGENT_OPT_IN_MISSING")] == "fixes"
    assert action[("worker-01", "AGENT_USER_IS_ADMIN")] == "fixes"
    assert "converge fixes it" in result.stdout
