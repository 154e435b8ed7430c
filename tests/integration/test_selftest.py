# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/selftest.yml (deadline_cloud.cmf.worker_selftest) through ansible-playbook on simulated workers."""

from __future__ import annotations

import re

import simworker

from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils import _fleet as fleet
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host.operations import OPERATIONS

PLAYBOOK = simworker.REPO_ROOT / "playbooks" / "selftest.yml"
BOOKKEEPING = ("calls", "calls_total", "faults")  # what the simulated worker counts and consumes


def _run(tmp_path, states: dict[str, dict], *args: str):
    paths = {name: simworker.save_state(tmp_path / f"{name}.yml", state) for name, state in states.items()}
    inventory = simworker.write_inventory(tmp_path, paths)
    run = simworker.run_playbook(PLAYBOOK, inventory, *args)
    return run, {name: simworker.load_state(path) for name, path in paths.items()}


def _without_bookkeeping(state: dict) -> dict:
    return {key: value for key, value in state.items() if key not in BOOKKEEPING}


def _step_lines(stdout: str) -> list[str]:
    return re.findall(r'^\s+"([a-z_]+ ?[^"]*: (?:ok|skipped .*|.+))",?$', stdout, re.MULTILINE)


def test_every_operation_is_ok_on_the_installer_state_and_nothing_else_changes(tmp_path):
    before = simworker.example_state()
    run, after = _run(tmp_path, {"worker-01": before})
    assert run.returncode == 0, run.stdout + run.stderr
    lines = _step_lines(run.stdout)
    assert lines and all(line.endswith(": ok") for line in lines), lines
    assert {line.split(" ", 1)[0].rstrip(":") for line in lines} == set(OPERATIONS)
    assert "sandbox absent: ok" in lines
    assert _without_bookkeeping(after["worker-01"]) == _without_bookkeeping(before)
    # every operation was really called on the worker, the changing ones included
    assert set(after["worker-01"]["calls"]) == set(OPERATIONS)


def test_a_dropped_call_still_removes_the_sandbox_and_fails_naming_the_step(tmp_path):
    before = simworker.example_state()
    before["faults"] = {"fail_next": ["set_group_membership"]}
    run, after = _run(tmp_path, {"worker-01": before})
    assert run.returncode != 0
    lines = _step_lines(run.stdout)
    assert any(line.startswith("set_group_membership present: the call failed:") and "fail_next" in line for line in lines), lines
    assert "sandbox absent: ok" in lines
    assert not any(line.startswith("read_agent_info") for line in lines), "the sequence stops at a dropped call"
    assert "the worker's answers differ from the host contract in: set_group_membership present" in run.stdout
    state = after["worker-01"]
    assert _without_bookkeeping(state) == _without_bookkeeping(before)
    assert not any(str(a.get("name", "")).startswith("cmf-selftest") for a in state["accounts"].values())
    assert state["calls"]["sandbox"] == 3  # present, absent, absent again


def test_a_worker_that_cannot_be_reached_is_said_to_be_unreachable_not_to_differ_from_the_contract(tmp_path):
    state = tmp_path / "worker-01.yml"
    inventory = simworker.write_inventory(tmp_path, {"worker-01": state})  # no state file: every call fails
    run = simworker.run_playbook(PLAYBOOK, inventory)
    assert run.returncode != 0
    assert f"the worker could not be reached, so nothing was tested: simulated worker state file {state} does not exist" in run.stdout
    assert "differ from the host contract" not in run.stdout


def test_a_stopped_service_is_read_and_never_started(tmp_path):
    before = simworker.example_state()
    before["services"]["DeadlineWorker"]["state"] = "stopped"
    run, after = _run(tmp_path, {"worker-01": before})
    assert run.returncode == 0, run.stdout + run.stderr
    assert any(line.startswith("control_service started: skipped (DeadlineWorker is stopped") for line in _step_lines(run.stdout))
    assert "control_service" not in after["worker-01"]["calls"]
    assert after["worker-01"]["services"]["DeadlineWorker"]["state"] == "stopped"


def test_a_missing_service_is_a_difference(tmp_path):
    run, _after = _run(tmp_path, {"worker-01": simworker.example_state()}, "-e", "deadline_worker_agent_user_service=NoSuchService")
    assert run.returncode != 0
    assert "read_agent_info: the service NoSuchService does not exist" in run.stdout


def test_more_than_one_worker_is_refused_before_any_call(tmp_path):
    run, after = _run(tmp_path, {"worker-01": simworker.example_state(), "worker-02": simworker.example_state()})
    assert run.returncode != 0
    assert "the self-test runs on one worker, and this run selects 2 (worker-01, worker-02): pick one with --limit <host>." in run.stdout
    assert all("calls" not in state for state in after.values())
    # a plain failure with the message, not an assertion's dump
    assert '"assertion"' not in run.stdout and "evaluated_to" not in run.stdout and "Assertion failed" not in run.stdout
    # --limit without localhost: the first worker shows the run's failure, and says it is not its own
    limited, after = _run(tmp_path, {"worker-01": simworker.example_state(), "worker-02": simworker.example_state()},
                          "--limit", "worker-02,worker-01")
    line = next(line for line in limited.stdout.splitlines() if line.startswith("fatal: [worker-01]: FAILED!"))
    assert "(the run fails on worker-01 only because it checks this there: nothing ran on it)" in line
    assert all("calls" not in state for state in after.values())


def test_a_run_that_selects_no_worker_says_so_as_converge_and_diagnose_do(tmp_path):
    run, _after = _run(tmp_path, {"worker-01": simworker.example_state()}, "-e", "deadline_workers_hosts=render_farm")
    assert run.returncode != 0
    assert fleet.no_worker_message("render_farm") in run.stdout
    assert '"assertion"' not in run.stdout and "evaluated_to" not in run.stdout


def test_check_mode_is_refused_without_a_call(tmp_path):
    run, after = _run(tmp_path, {"worker-01": simworker.example_state()}, "--check")
    assert run.returncode != 0
    assert "worker_selftest does not run in check mode" in run.stdout
    assert "calls" not in after["worker-01"]


def _domain_worker() -> dict:
    """A worker joined to CORP whose agent runs as CORP\\render-svc (in Administrators directly, in Users
    through Domain Users), Users holding Authenticated Users as on any Windows, and a domain GPO that
    defines the service logon right and the quota privilege."""
    state = simworker.domain_state(policy={
        "SeServiceLogonRight": ["S-1-5-80-0", simworker.RENDER_SERVICES],
        "SeIncreaseQuotaPrivilege": ["S-1-5-32-544", "S-1-5-19", "S-1-5-20"],
    })
    state["accounts"]["S-1-5-32-545"]["members"] += ["S-1-5-4", "S-1-5-11"]
    return state


DOMAIN_STEPS = (
    "read_account token groups", "read_account group policy", "read_account token groups present", "read_account token groups absent",
    "read_agent_info service account token groups", "read_agent_info group policy", "read_agent_info sandbox account",
)


def test_a_domain_joined_worker_passes_with_its_domain_reading_checked(tmp_path):
    before = _domain_worker()
    run, after = _run(tmp_path, {"worker-01": before})
    assert run.returncode == 0, run.stdout + run.stderr
    lines = _step_lines(run.stdout)
    assert all(line.endswith(": ok") for line in lines), lines
    for step in DOMAIN_STEPS:
        assert f"{step}: ok" in lines, step
    assert _without_bookkeeping(after["worker-01"]) == _without_bookkeeping(before)
    assert after["worker-01"]["calls_total"] == 27  # the domain-farm checks read answers already taken


def test_a_domain_controller_out_of_reach_leaves_the_agent_accounts_groups_unknown_not_ok_and_not_failed(tmp_path):
    before = _domain_worker()
    before["faults"] = {"domain_unreachable": True}
    run, after = _run(tmp_path, {"worker-01": before})
    assert run.returncode == 0, run.stdout + run.stderr
    lines = _step_lines(run.stdout)
    (unknown,) = [line for line in lines if not line.endswith(": ok")]
    assert unknown.startswith("read_agent_info service account token groups: unknown (the domain groups of CORP\\\\render-svc")
    assert "DOMAIN_UNREACHABLE" in unknown
    assert "[WARNING]: the self-test could not prove read_agent_info service account token groups on this worker" in run.stdout + run.stderr
    # the sandbox user is the host's own: its groups, and its removal, need no domain controller
    assert "read_account token groups: ok" in lines and "read_account removed user: ok" in lines
    assert _without_bookkeeping(after["worker-01"]) == _without_bookkeeping(before)
