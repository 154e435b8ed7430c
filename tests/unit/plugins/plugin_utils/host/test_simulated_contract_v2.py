# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the simulated worker adds for host contract v2 beyond the shared vectors
(tests/contract/vectors): the agent's own refusal, the log since the stop, user variables, and
render sessions that end by themselves between calls."""

from __future__ import annotations

import datetime

import pytest
import simworker

from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._agent import rules as agent_rules
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host.simulated.state import run_operation

SERVICE = "DeadlineWorker"
WORKER_JSON = r"C:\ProgramData\Amazon\Deadline\Cache\worker.json"


def control(path, state="restarted", **overrides) -> dict:
    parameters = {"name": SERVICE, "state": state, "timeout": 60, "settle": 1, "if_idle": False, "config_path": "", "account": ""}
    return run_operation(str(path), "control_service", {**parameters, **overrides})


def info(path) -> dict:
    return run_operation(str(path), "read_agent_info", {"service": SERVICE, "config_path": simworker.WORKER_TOML, "account": ""})


@pytest.fixture
def worker(tmp_path):
    return simworker.save_state(tmp_path / "worker-01.yml", simworker.example_state())


def edit(path, change) -> None:
    state = simworker.load_state(path)
    change(state)
    simworker.save_state(path, state)


def test_a_configuration_error_is_the_agents_text_with_exit_code_1_and_event_7034(worker):
    edit(worker, lambda s: simworker.set_file_bytes(s, b"\xef\xbb\xbf" + simworker.file_bytes(s)))
    result = control(worker)
    assert result["healthy"] is False and result["state"] == "stopped"
    assert result["win32_error"] is None and result["exit_code"] == 1
    assert "is not valid TOML" in result["error"]
    assert [event["id"] for event in result["events"]] == [7034]
    assert result["events"][0]["message"].startswith("The AWS Deadline Cloud Worker service terminated unexpectedly.")
    assert result["log_tail"] == []  # the agent stops before it configures logging


def test_the_log_tail_holds_only_the_lines_since_the_stop(worker):
    edit(worker, lambda s: s["files"].update({agent_rules.LOG_PATH: {"text": "[INFO] an old line\r\n"}}))
    result = control(worker)
    assert result["healthy"] is True
    assert result["log_tail"] and "an old line" not in "\n".join(result["log_tail"])
    assert any("Worker Agent starting" in line for line in result["log_tail"])
    again = control(worker)
    assert len(again["log_tail"]) == len(result["log_tail"])  # the first restart's lines are not repeated


def test_the_log_folder_comes_from_worker_toml(worker):
    def logs_elsewhere(state):
        simworker.set_file_bytes(state, simworker.file_bytes(state).replace(b"[logging]\n", b"[logging]\nworker_logs_dir = 'D:\\Logs'\n", 1))

    edit(worker, logs_elsewhere)
    assert b"worker_logs_dir" in simworker.file_bytes(simworker.load_state(worker))
    result = control(worker)
    assert result["log_tail"]
    state = simworker.load_state(worker)
    assert simworker.file_bytes(state, "D:\\Logs\\worker-agent.log") is not None
    assert simworker.file_bytes(state, agent_rules.LOG_PATH) is None


def test_user_environment_is_the_logon_accounts_deadline_variables_or_null(worker):
    assert info(worker)["user_environment"] is None  # no `environment` on the account: hive not readable
    sid = "S-1-5-21-3623811015-3361044348-30300820-1001"
    edit(worker, lambda s: s["accounts"][sid].update(environment={"DEADLINE_WORKER_WINDOWS_JOB_USER": "job-user", "PATH": "C:\\x"}))
    reading = info(worker)
    assert reading["service"]["account_sid"] == sid
    assert reading["user_environment"] == {"DEADLINE_WORKER_WINDOWS_JOB_USER": "job-user"}


def test_sessions_end_by_themselves_at_any_call_and_a_restart_interrupts_the_rest(worker):
    past = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=1)).isoformat()

    def sessions(state):
        state["services"][SERVICE]["sessions"] = [{"id": "done", "ends_at": past}, {"id": "soon", "ends_after_s": 3600}, {"id": "forever"}]
        state["files"][WORKER_JSON] = {"text": '{"worker_id": "worker-0123456789abcdef0123456789abcdef"}'}

    edit(worker, sessions)
    run_operation(str(worker), "read_file", {"path": simworker.WORKER_TOML})  # any call ends what is due
    entry = simworker.load_state(worker)["services"][SERVICE]
    assert [s["id"] for s in entry["sessions"]] == ["soon", "forever"]
    assert "ends_after_s" not in entry["sessions"][0] and entry["sessions"][0]["ends_at"]
    reading = info(worker)["sessions"]
    assert reading["busy"] is True and reading["count"] == 2 and reading["ids"] == ["soon", "forever"]
    assert reading["worker_id"] == "worker-0123456789abcdef0123456789abcdef"
    assert reading["directories"] == [r"C:\ProgramData\Amazon\OpenJD\soon", r"C:\ProgramData\Amazon\OpenJD\forever"]
    assert [p["name"] for p in reading["processes"]] == ["python.exe", "python.exe"]
    result = control(worker)
    assert result["interrupted"] == 2 and result["sessions"]["busy"] is False
    assert simworker.load_state(worker)["services"][SERVICE]["interrupted_sessions"] == ["soon", "forever"]


def test_reading_is_read_agent_info_after_the_operation(worker):
    result = control(worker, config_path=simworker.WORKER_TOML)
    reading = result["reading"]
    after = info(worker)
    assert reading["service"]["pid"] == result["pid"] == after["service"]["pid"]
    assert reading["config"]["sha256"] == after["config"]["sha256"] != ""
    assert control(worker)["reading"] is None
