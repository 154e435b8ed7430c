# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""deadline_cloud.cmf.worker_agent_service through ansible-playbook on simulated workers."""

from __future__ import annotations

import pytest
import simworker

OPT_IN = "run_jobs_as_agent_user = true\n"
JOB_USER_CONFLICT = "Cannot specify a windows job user when the option to run jobs as the agent user is enabled."


def _edit_os_table(state: dict, lines: str) -> dict:
    text = simworker.file_bytes(state).decode()
    return simworker.set_file_bytes(state, text.replace("[os]\n", "[os]\n" + lines, 1).encode())


def _restart(tmp_path, state: dict, *args: str, module_args: dict | None = None):
    path = simworker.save_state(tmp_path / "worker-01.yml", state)
    inventory = simworker.write_inventory(tmp_path, {"worker-01": path})
    playbook = simworker.write_playbook(
        tmp_path,
        [
            {
                "name": "Restart the agent",
                "deadline_cloud.cmf.worker_agent_service": module_args or {"state": "restarted", "settle": 1},
                "register": "service",
                "ignore_errors": True,
            },
            {**simworker.dump_task(tmp_path, "service"), "check_mode": False},
        ],
    )
    run = simworker.run_playbook(playbook, inventory, *args, env=simworker.ansible_env())
    assert run.returncode == 0, run.stdout + run.stderr
    return simworker.read_dump(tmp_path, "service", "worker-01"), simworker.load_state(path)


def test_a_restart_with_the_opt_in_succeeds_in_one_call(tmp_path):
    result, state = _restart(tmp_path, _edit_os_table(simworker.example_state(), OPT_IN))
    assert result["changed"] is True
    assert "failed" not in result or result["failed"] is False
    assert (result["state"], result["restarted"], result["healthy"]) == ("running", True, True)
    assert isinstance(result["pid"], int)
    assert any("Worker Agent starting" in line for line in result["log_tail"])
    service = state["services"]["DeadlineWorker"]
    assert (service["state"], service["restarts"], service["pid"]) == ("running", 1, result["pid"])
    assert state["calls"] == {"control_service": 1}


@pytest.mark.parametrize(
    ("variant", "cause", "agent_error"),
    [
        ("job_user", "JOB_USER_CONFLICT", JOB_USER_CONFLICT),
        ("bom", "CONFIG_ENCODING", "is not valid TOML: Invalid statement (at line 1, column 1)"),
        ("impersonation", "LEGACY_IMPERSONATION_KEY", "The 'impersonation' option has been removed."),
        ("no_logon_right", "SERVICE_LOGON_RIGHT_MISSING", "The service did not start due to a logon failure."),
    ],
)
def test_a_restart_into_a_bad_config_fails_naming_the_cause(tmp_path, variant, cause, agent_error):
    state = simworker.example_state()
    if variant == "job_user":
        _edit_os_table(state, OPT_IN + 'windows_job_user = "job-user"\n')
    elif variant == "bom":
        simworker.set_file_bytes(state, b"\xef\xbb\xbf" + simworker.file_bytes(_edit_os_table(state, OPT_IN)))
    elif variant == "impersonation":
        _edit_os_table(state, OPT_IN + "impersonation = false\n")
    else:
        _edit_os_table(state, OPT_IN)
        state["rights"]["SeServiceLogonRight"] = []
    result, after = _restart(tmp_path, state)
    assert result["failed"] is True
    assert (result["state"], result["restarted"], result["healthy"], result["pid"]) == ("stopped", True, False, None)
    assert cause in result["msg"]
    assert agent_error in result["msg"]
    assert "worker-agent.log" in result["msg"]
    assert cause in [f["id"] for f in result["findings"]]
    service = after["services"]["DeadlineWorker"]
    assert service["state"] == "stopped"
    assert agent_error in service["last_error"]
    assert service["restarts"] == 1
    # the restart, then one reading of the host to name the cause
    assert after["calls"] == {"control_service": 1, "read_agent_info": 1}


def test_check_mode_reports_the_restart_without_doing_it(tmp_path):
    result, state = _restart(tmp_path, _edit_os_table(simworker.example_state(), 'windows_job_user = "u"\n' + OPT_IN), "--check")
    assert (result["changed"], result["restarted"], result["state"]) == (True, True, "running")
    assert result["healthy"] is None
    assert any(JOB_USER_CONFLICT in w for w in result.get("warnings", []))
    service = state["services"]["DeadlineWorker"]
    assert service["restarts"] == 0 and service["state"] == "running"
    assert "control_service" not in state["calls"]  # no changing call in check mode
    assert state["calls"] == {"read_agent_info": 1}


def test_stopped_and_started(tmp_path):
    result, state = _restart(tmp_path, simworker.example_state(), module_args={"state": "stopped"})
    assert (result["changed"], result["state"], result["healthy"], result["restarted"]) == (True, "stopped", True, False)
    assert state["services"]["DeadlineWorker"]["state"] == "stopped"

    again, state = _restart(tmp_path, state, module_args={"state": "stopped"})
    assert again["changed"] is False

    started, state = _restart(tmp_path, state, module_args={"state": "started", "settle": 1})
    assert (started["changed"], started["state"], started["healthy"]) == (True, "running", True)
    assert state["services"]["DeadlineWorker"]["restarts"] == 0  # a start is not a restart


@pytest.mark.parametrize("option", ["service", "name"])  # name: the option's former name, an alias
def test_a_missing_service_fails_with_its_name(tmp_path, option):
    result, state = _restart(tmp_path, simworker.example_state(), module_args={option: "NoSuchService"})
    assert result["failed"] is True
    assert "NoSuchService" in result["msg"]
    assert result["error_code"] == "SERVICE_NOT_FOUND"
    assert state["services"]["DeadlineWorker"]["restarts"] == 0


# --- a busy agent is never interrupted unless the operator chose to (DESIGN) ---------------------


@pytest.mark.parametrize("state", ["restarted", "stopped"])
def test_by_default_a_busy_agent_fails_the_task_and_nothing_is_stopped(tmp_path, state):
    result, after = _restart(tmp_path, _busy({"id": "session-1"}), module_args={"state": state, "settle": 0})
    assert result["failed"] is True and result["changed"] is False and result["busy"] is True
    assert "still runs 1 session(s)" in result["msg"] and "nothing was stopped" in result["msg"]
    service = after["services"]["DeadlineWorker"]
    assert service["state"] == "running" and service.get("restarts", 0) == 0
    assert service.get("interrupted_sessions", []) == [] and [s["id"] for s in service["sessions"]] == ["session-1"]
    assert after["calls"] == {"control_service": 1}  # one look, in the call that would have stopped it


def test_an_idle_agent_is_still_one_call_and_when_busy_interrupt_is_the_operators_choice(tmp_path):
    result, after = _restart(tmp_path, _busy(), module_args={"state": "restarted", "settle": 0})
    assert result["restarted"] and result["healthy"] and after["calls"] == {"control_service": 1}
    result, after = _restart(tmp_path, _busy({"id": "session-2"}), module_args={"state": "restarted", "settle": 0, "when_busy": "interrupt"})
    assert result["restarted"] and result["interrupted"] == 1
    assert after["services"]["DeadlineWorker"]["interrupted_sessions"] == ["session-2"]


def test_check_mode_warns_that_a_busy_agent_would_fail_the_stop(tmp_path):
    result, after = _restart(tmp_path, _busy({"id": "session-1"}), "--check", module_args={"state": "restarted", "settle": 0})
    assert result["busy"] is True
    assert "DeadlineWorker runs 1 session(s) now: the restart would fail, stopping nothing (when_busy: fail)" in result["warnings"]
    assert after["calls"] == {"read_agent_info": 1}


# --- async: the task's seconds bound the wait, which stays on the controller ---------------------


def _busy(*sessions: dict) -> dict:
    state = _edit_os_table(simworker.example_state(), OPT_IN)
    state["services"]["DeadlineWorker"]["sessions"] = list(sessions)
    return state


def _async_restart(tmp_path, state: dict, args: dict, **keywords: int):
    task = {"deadline_cloud.cmf.worker_agent_service": {"state": "restarted", "settle": 0, **args}, **keywords}
    results, states, completed = simworker.run_tasks(tmp_path, {"worker-01": state}, [task])
    return results["worker-01"][0], states["worker-01"], completed


def test_under_async_a_busy_agent_is_restarted_once_its_session_ends_and_the_result_is_the_modules(tmp_path):
    state = _busy({"id": "session-3", "ends_after_s": 3})
    result, after, run = _async_restart(tmp_path, state, {"idle_timeout": 600, "when_busy": "skip", "timeout": 5}, **{"async": 60, "poll": 1})
    assert run.returncode == 0, run.stdout + run.stderr
    assert result["restarted"] and result["healthy"], result
    assert "ansible_job_id" not in result and "No job id" not in result.get("msg", "")
    service = after["services"]["DeadlineWorker"]
    assert service.get("interrupted_sessions", []) == [] and service["restarts"] == 1
    # poll: 1 is the interval between two looks: about one control_service call per second while busy
    assert 3 <= result["polls"] == after["calls"]["control_service"] <= 8, result["polls"]


def test_under_async_the_wait_for_idle_ends_in_time_for_the_restart_to_fit(tmp_path):
    state = _busy({"id": "session-9"})  # runs until the service stops
    # idle_timeout alone would wait 600 s; async 14 with timeout 5 leaves 14 - (5 + 5 + 0) = 4 s to wait
    result, after, run = _async_restart(tmp_path, state, {"idle_timeout": 600, "when_busy": "skip", "timeout": 5}, **{"async": 14, "poll": 1})
    assert run.returncode == 0, run.stdout + run.stderr
    assert result["restart_pending"] and not result["changed"], result
    assert 2 <= result["polls"] <= 6, result["polls"]
    assert after["services"]["DeadlineWorker"]["restarts"] == 0
    assert after["services"]["DeadlineWorker"].get("interrupted_sessions", []) == []


def test_under_async_with_the_defaults_a_busy_agent_fails_the_task_and_nothing_is_stopped(tmp_path):
    result, after, run = _async_restart(tmp_path, _busy({"id": "session-4"}), {"timeout": 5}, **{"async": 60, "poll": 1})
    assert run.returncode == 0, run.stdout + run.stderr
    assert result["failed"] and result["busy"] and "nothing was stopped" in result["msg"], result
    assert "ansible_job_id" not in result
    service = after["services"]["DeadlineWorker"]
    assert service.get("restarts", 0) == 0 and service.get("interrupted_sessions", []) == []
    assert after["calls"] == {"control_service": 1}


@pytest.mark.parametrize(
    ("keywords", "args", "expected"),
    [
        ({"async": 600, "poll": 0}, {}, "cannot run with async and poll: 0"),
        ({"async": 300, "poll": 5}, {}, "async: 300 leaves no time for the restart itself, which may take up to 600 s"),
        ({"async": 900, "poll": 5}, {"idle_timeout": 0, "when_busy": "interrupt"}, "may take up to 1200 s"),
        ({}, {"poll_interval": 0}, "poll_interval must be at least 1 (got 0)"),
        ({}, {"timeout": -5}, "timeout must be at least 1 (got -5)"),
    ],
)
def test_a_task_that_cannot_keep_its_bounds_is_refused_before_any_call(tmp_path, keywords, args, expected):
    result, after, run = _async_restart(tmp_path, _busy(), args, **keywords)
    assert run.returncode == 0, run.stdout + run.stderr
    assert result["failed"] and expected in result["msg"], result["msg"]
    assert not after.get("calls"), after.get("calls")
    assert after["services"]["DeadlineWorker"].get("restarts", 0) == 0


def test_without_the_workers_ids_the_service_is_not_asked_and_boto3_not_even_imported(tmp_path):
    # The installer's state has no worker.json yet: no worker id, so no client could help. A boto3
    # that blows up on import proves that none is made (its import is most of a restart's CPU).
    (tmp_path / "trap" / "boto3").mkdir(parents=True)
    (tmp_path / "trap" / "boto3" / "__init__.py").write_text('raise RuntimeError("boto3 was imported")\n')
    path = simworker.save_state(tmp_path / "worker-01.yml", _edit_os_table(simworker.example_state(), OPT_IN))
    inventory = simworker.write_inventory(tmp_path, {"worker-01": path})
    args = {"state": "restarted", "settle": 0, "idle_timeout": 0, "when_busy": "skip", "ask_service": True, "reading": "{{ info }}"}
    playbook = simworker.write_playbook(
        tmp_path,
        [
            {"deadline_cloud.cmf.worker_agent_info": {"details": True}, "register": "info"},
            {"deadline_cloud.cmf.worker_agent_service": args, "register": "service", "ignore_errors": True},
            {**simworker.dump_task(tmp_path, "service"), "check_mode": False},
        ],
    )
    run = simworker.run_playbook(playbook, inventory, env=simworker.ansible_env(PYTHONPATH=str(tmp_path / "trap")))
    assert run.returncode == 0, run.stdout + run.stderr
    result = simworker.read_dump(tmp_path, "service", "worker-01")
    assert result["restarted"] and result["healthy"], result
    assert result["service_view"] == {
        "checked": False,
        "busy": None,
        "status": None,
        "active_sessions": [],
        "reason": "worker_id not known (worker.toml [worker], worker.json)",
    }
