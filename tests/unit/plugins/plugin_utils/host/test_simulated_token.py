# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The simulated worker's service process token (services.<name>.token_groups): recorded at each
start from the account's groups then, kept while the account's groups change, gone with the process,
and reported by read_agent_info as token_administrators, as read_agent_info.ps1 reads the token."""

from __future__ import annotations

import simworker

from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host.simulated.state import run_operation

ADMINISTRATORS = "S-1-5-32-544"
AGENT = r".\deadline-worker"


def _worker(tmp_path):
    path = simworker.save_state(tmp_path / "worker-01.yml", simworker.example_state())

    def call(operation: str, **parameters) -> dict:
        return run_operation(str(path), operation, parameters)

    return call, path


def _token(call) -> tuple:
    service = call("read_agent_info", service="DeadlineWorker", config_path=simworker.WORKER_TOML, account="")["service"]
    return service["token_administrators"], service["token_error"]


def _restart(call) -> dict:
    return call("control_service", name="DeadlineWorker", state="restarted", timeout=30, settle=0, if_idle=False, config_path="", account="")


def test_a_running_service_keeps_its_token_when_its_account_leaves_administrators(tmp_path):
    call, path = _worker(tmp_path)
    assert _token(call) == (True, None)  # started (before the state file says) in Administrators
    assert "token_groups" not in simworker.load_state(path)["services"]["DeadlineWorker"]
    call("set_group_membership", account=AGENT, groups=["Administrators"], state="absent")
    service = simworker.load_state(path)["services"]["DeadlineWorker"]
    assert ADMINISTRATORS in service["token_groups"]  # pinned before the change: the process keeps it
    assert _token(call) == (True, None)


def test_a_start_takes_the_groups_of_the_moment_and_a_stop_drops_the_token(tmp_path):
    call, path = _worker(tmp_path)
    call("set_group_membership", account=AGENT, groups=["Administrators"], state="absent")
    _restart(call)
    service = simworker.load_state(path)["services"]["DeadlineWorker"]
    assert service["state"] == "running" and ADMINISTRATORS not in service["token_groups"]
    assert _token(call) == (False, None)
    call("control_service", name="DeadlineWorker", state="stopped", timeout=30, settle=0, if_idle=False, config_path="", account="")
    assert "token_groups" not in simworker.load_state(path)["services"]["DeadlineWorker"]
    assert _token(call) == (None, None)


def test_joining_administrators_after_the_start_gives_the_running_process_nothing(tmp_path):
    call, _path = _worker(tmp_path)
    call("set_group_membership", account=AGENT, groups=["Administrators"], state="absent")
    _restart(call)
    call("set_group_membership", account=AGENT, groups=["Administrators"], state="present")
    assert _token(call) == (False, None)
