# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The modules given a reading of worker_agent_info plan from it instead of reading the host again."""

from __future__ import annotations

import simworker

AGENT_SID = "S-1-5-21-3623811015-3361044348-30300820-1001"
READ = {"name": "Read", "deadline_cloud.cmf.worker_agent_info": {"details": True}}  # registered as out0 by run_tasks


def calls_after_read(state: dict) -> dict:
    calls = dict(state["calls"])
    calls["read_agent_info"] -= 1
    return {op: n for op, n in calls.items() if n}


def test_rights_already_held_cost_no_call_and_a_grant_one(tmp_path):
    tasks = [
        READ,
        {"deadline_cloud.cmf.win_user_rights": {"account": AGENT_SID, "rights": ["SeServiceLogonRight"], "reading": "{{ out0 }}"}},
        {"deadline_cloud.cmf.win_user_rights": {"account": AGENT_SID, "rights": ["SeIncreaseQuotaPrivilege"], "reading": "{{ out0 }}"}},
    ]
    results, states, run = simworker.run_tasks(tmp_path, {"worker-01": simworker.example_state()}, tasks)
    held, granted = results["worker-01"][1], results["worker-01"][2]
    assert held["changed"] is False and granted["changed"] is True and granted["added"] == ["SeIncreaseQuotaPrivilege"]
    assert calls_after_read(states["worker-01"]) == {"set_user_rights": 1}, run.stdout[-2000:]


def test_a_group_removal_planned_from_the_reading_keeps_the_safety_rules(tmp_path):
    state = simworker.example_state()
    state["services"]["DeadlineWorker"]["account"] = r".\ansible"
    tasks = [
        READ,
        {"deadline_cloud.cmf.win_group_member": {"account": "ansible", "groups": ["Administrators"], "state": "absent", "reading": "{{ out0 }}"}},
    ]
    results, states, _run = simworker.run_tasks(tmp_path, {"worker-01": state}, tasks)
    refused = results["worker-01"][1]
    assert refused["failed"] is True and "connected as" in refused["msg"]
    assert calls_after_read(states["worker-01"]) == {}


def test_worker_toml_writes_against_the_reading_and_refuses_when_the_file_changed_since(tmp_path):
    setting = {"table": "os", "key": "run_jobs_as_agent_user", "value": True, "reading": "{{ out0 }}"}
    results, states, _run = simworker.run_tasks(tmp_path, {"worker-01": simworker.example_state()}, [READ, {"deadline_cloud.cmf.worker_toml": setting}])
    assert results["worker-01"][1]["changed"] is True
    assert calls_after_read(states["worker-01"]) == {"write_file": 1}

    state = simworker.example_state()
    state["faults"] = {"modify_between_read_and_write": simworker.WORKER_TOML}
    # the reading is the read here: another writer edits the file after it, the guarded write refuses
    edit = {"name": "Another writer", "deadline_cloud.cmf.worker_toml": {"table": "os", "key": "retain_session_dir", "value": True}}
    tasks = [READ, edit, {"deadline_cloud.cmf.worker_toml": setting}]
    (tmp_path / "b").mkdir()
    results, states, _run = simworker.run_tasks(tmp_path / "b", {"worker-01": state}, tasks)
    assert results["worker-01"][2]["failed"] is True and "changed while it was being edited" in results["worker-01"][2]["msg"]


def test_a_result_without_details_is_never_taken_for_a_reading(tmp_path):
    # The summary has an account and a config too, but not the host's answer: the module reads the host.
    tasks = [
        {"name": "Read", "deadline_cloud.cmf.worker_agent_info": {}},
        {"deadline_cloud.cmf.win_user_rights": {"account": AGENT_SID, "rights": ["SeServiceLogonRight"], "reading": "{{ out0 }}"}},
        {"deadline_cloud.cmf.worker_toml": {"table": "os", "key": "run_jobs_as_agent_user", "value": True, "reading": "{{ out0 }}"}},
    ]
    results, states, run = simworker.run_tasks(tmp_path, {"worker-01": simworker.example_state()}, tasks)
    rights, toml = results["worker-01"][1], results["worker-01"][2]
    assert rights["changed"] is False and not rights.get("failed"), rights
    assert toml["changed"] is True and not toml.get("failed"), toml
    assert calls_after_read(states["worker-01"]) == {"set_user_rights": 1, "read_file": 1, "write_file": 1}, run.stdout[-2000:]
