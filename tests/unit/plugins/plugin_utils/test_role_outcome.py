# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the role says: its outcome's cause, its variable errors, and the fixes it passes on."""

from __future__ import annotations

import copy

import pytest
import simworker
import yaml

from ansible_collections.deadline_cloud.cmf.plugins.filter._role import FilterModule
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils import _role as role
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._agent import rules as agent_rules
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host.simulated.agent import read_agent_info
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host.simulated.state import SimulatedState

DEFAULTS_FILE = simworker.REPO_ROOT / "roles" / "deadline_worker_agent_user" / "defaults" / "main.yml"
OPT_IN = "DEADLINE_WORKER_RUN_JOBS_AS_AGENT_USER"


def defaults(**changes) -> dict:
    values = yaml.safe_load(DEFAULTS_FILE.read_text(encoding="utf-8"))
    values.update({f"{role.PREFIX}{k}": v for k, v in changes.items()})
    return values


def reading_of(state: dict) -> dict:
    raw = read_agent_info(SimulatedState(copy.deepcopy(state)), {"service": "DeadlineWorker", "config_path": simworker.WORKER_TOML, "account": ""})
    return agent_rules.result_of(raw)


def variable_error(**changes) -> str:
    with pytest.raises(role.RoleVariableError) as raised:
        role.check_variables(defaults(**changes))
    return str(raised.value)


# --- the role's variables ------------------------------------------------------------------------


def test_a_name_in_yaml_double_quotes_is_named_as_the_escape_it_became():
    account = yaml.safe_load('account: ".\\agent"')["account"]  # .\agent in double quotes: \a is a bell
    assert account == ".\x07gent"
    message = variable_error(account=account)
    assert message.startswith("deadline_worker_agent_user_account holds a control character ('\\x07')")
    assert "in YAML double quotes \\a is an escape" in message and "single quotes ('.\\agent')" in message


def test_a_list_passed_as_text_says_how_to_pass_a_list():
    message = variable_error(rights='["SeServiceLogonRigth"]')  # -e 'deadline_worker_agent_user_rights=["..."]'
    assert "not the text '[\"SeServiceLogonRigth\"]'" in message and "[[" not in message
    assert "-e '{\"deadline_worker_agent_user_rights\": [\"SeServiceLogonRight\"]}'" in message


def test_a_misspelled_right_gets_the_right_it_most_likely_means():
    message = variable_error(rights=["SeServiceLogonRigth"])
    assert "unknown user right SeServiceLogonRigth (did you mean SeServiceLogonRight?)" in message


def test_a_bad_variable_is_a_failed_plan_with_no_filter_in_its_message():
    filters = FilterModule().filters()
    variables = defaults(restart_when="sometimes")
    assert filters["_worker_role_variables"](variables) is False
    planned = filters["_worker_role_plan"]({"skipped": True, "changed": False}, variables)
    assert planned["status"] == "failed" and planned["plan"]["act"] is False
    assert planned["cause"] == "deadline_worker_agent_user_restart_when must be one of idle, always, never, not 'sometimes'"
    assert "filter" not in planned["cause"]


# --- the outcome's cause -------------------------------------------------------------------------


def test_a_refusal_reads_as_sentences_with_a_full_stop_before_the_fix():
    state = simworker.example_state()
    state["services"]["DeadlineWorker"]["environment"].append(f"{OPT_IN}=false")
    before = reading_of(state)
    result = role.outcome(before, role.plan(before, defaults()))
    assert result["status"] == "refused"
    assert result["cause"].startswith("the role changed nothing on this host, because it cannot fix: ENV_OVERRIDE: ")
    assert "turns run_jobs_as_agent_user off. Fix: Remove" in result["cause"]
    assert result["cause"].endswith("takes effect at the service's next start.")


def test_a_ready_or_pending_host_has_no_cause():
    before = reading_of(simworker.example_state())
    plan = role.plan(before, defaults())
    pending = role.outcome(before, plan, rights={"changed": True, "added": ["SeIncreaseQuotaPrivilege"]},
                           restart={"changed": False, "restart_pending": True, "busy": True, "sessions": {"count": 1}})
    assert (pending["status"], pending["cause"]) == ("restart_pending", "")


def test_restart_when_never_says_who_restarts_the_service():
    before = reading_of(simworker.example_state())
    plan = role.plan(before, defaults(restart_when="never"))
    result = role.outcome(before, plan, rights={"changed": True, "added": ["SeIncreaseQuotaPrivilege"]})
    assert result["status"] == "restart_pending"
    assert result["restart_pending_reason"].startswith("deadline_worker_agent_user_restart_when is never")
    assert "restart DeadlineWorker yourself" in result["restart_pending_reason"]
    assert "not allowed" not in result["restart_pending_reason"]


@pytest.mark.parametrize("switch", [{"restart_when": "never"}, {"restart": False}])
def test_a_busy_host_that_the_role_never_restarts_is_pending_for_the_operator_not_for_its_sessions(switch):
    state = simworker.example_state()
    state["services"]["DeadlineWorker"]["sessions"] = [{"id": "session-1"}]
    before = reading_of(state)
    plan = role.plan(before, defaults(**switch))
    assert plan["busy"] is True
    result = role.outcome(before, plan, rights={"changed": True, "added": ["SeIncreaseQuotaPrivilege"]})
    assert result["status"] == "restart_pending"
    assert result["restart_pending_reason"].startswith("deadline_worker_agent_user_restart_when is never")
    assert "busy" not in result["restart_pending_reason"] and result["sessions_running"] == 0


def test_check_mode_says_what_would_be_done_and_restarts_nothing():
    """A --check run's outcome is a prediction: in the conditional, never the past tense."""
    before = reading_of(simworker.example_state())
    plan = role.plan(before, defaults())
    result = role.outcome(
        before,
        plan,
        rights={"changed": True, "added": ["SeIncreaseQuotaPrivilege"]},
        groups={"changed": True, "removed": [{"name": "Administrators", "sid": "S-1-5-32-544"}]},
        config={"changed": True},
        check_mode=True,
    )
    assert result["changes"] == [
        "would grant SeIncreaseQuotaPrivilege",
        "would leave Administrators",
        "would set [os] run_jobs_as_agent_user = true in worker.toml, without windows_job_user and impersonation",
        "would restart the service",
    ]
    assert (result["status"], result["changed"], result["restarted"]) == ("would_change", True, False)
    never = role.outcome(before, role.plan(before, defaults(restart_when="never")), config={"changed": True}, check_mode=True)
    assert "would restart the service" not in never["changes"] and never["restarted"] is False


def test_the_worker_toml_write_is_one_list_the_plan_carries_to_the_task_and_the_outcome():
    before = reading_of(simworker.example_state())
    plan = role.plan(before, defaults())
    assert plan["worker_toml_settings"] == [
        {"table": "os", "key": "run_jobs_as_agent_user", "value": True, "state": "present"},
        {"table": "os", "key": "windows_job_user", "value": None, "state": "absent"},
        {"table": "os", "key": "impersonation", "value": None, "state": "absent"},
    ]
    change = (simworker.REPO_ROOT / "roles" / "deadline_worker_agent_user" / "tasks" / "change.yml").read_text(encoding="utf-8")
    assert 'settings: "{{ deadline_worker_agent_user_result.plan.worker_toml_settings }}"' in change
    result = role.outcome(before, {**plan, "worker_toml_settings": plan["worker_toml_settings"][:1]}, config={"changed": True})
    assert "set [os] run_jobs_as_agent_user = true in worker.toml" in result["changes"]


def test_the_sessions_a_restart_waits_for_are_a_field_of_the_outcome():
    before = reading_of(simworker.example_state())
    plan = role.plan(before, defaults())
    restart = {"changed": False, "restarted": False, "restart_pending": True, "busy": True, "sessions": {"count": 3}}
    busy = role.outcome(before, plan, rights={"changed": True, "added": ["SeIncreaseQuotaPrivilege"]}, restart=restart)
    assert (busy["restart_pending_reason"], busy["sessions_running"]) == ("busy: 3 session(s) running", 3)
    tagged = role.outcome(before, plan, config={"changed": True})  # the restart left out with tags: no session counted
    assert (tagged["status"], tagged["sessions_running"]) == ("restart_pending", 0)
    done = role.outcome(before, plan, config={"changed": True}, restart={"changed": True, "restarted": True, "healthy": True})
    assert done["sessions_running"] == 0


def test_a_restart_left_out_by_tags_says_so():
    before = reading_of(simworker.example_state())
    result = role.outcome(before, role.plan(before, defaults()), config={"changed": True})
    assert result["restart_pending_reason"].startswith("the restart task did not run (left out with --tags or --skip-tags)")


def test_a_connection_lost_in_a_change_makes_the_host_unreachable_and_names_the_step():
    before = reading_of(simworker.example_state())
    plan = role.plan(before, defaults())
    result = role.outcome(
        before,
        plan,
        rights={"changed": True, "added": ["SeIncreaseQuotaPrivilege"]},
        groups={"unreachable": True, "msg": "winrm: connection refused"},
        config={"changed": True},  # never run after an unreachable step: not taken for a change
    )
    assert result["status"] == "unreachable" and result["ready"] is False
    # the host keeps what was done before the step: the cause says so first
    assert result["cause"] == (
        "changed before it stopped (granted SeIncreaseQuotaPrivilege), "
        "then unreachable during leaving the groups: winrm: connection refused"
    )
    assert result["changes"] == ["granted SeIncreaseQuotaPrivilege"]


# --- a fix that names the real cause -------------------------------------------------------------


@pytest.mark.parametrize(
    ("where", "says"),
    [("service", "from the Environment value of"), ("machine", "Remove the machine variable")],
)
def test_with_an_environment_override_the_opt_in_fix_removes_the_variable_first(where, says):
    state = simworker.example_state()
    if where == "service":
        state["services"]["DeadlineWorker"]["environment"].append(f"{OPT_IN}=false")
    else:
        state["environment"] = {OPT_IN: "false"}
    opt_in = next(f for f in reading_of(state)["findings"] if f["id"] == "AGENT_OPT_IN_MISSING")
    assert opt_in["fix"].lower().startswith("remove") and says in opt_in["fix"]
    assert opt_in["fix"].endswith("then set [os] run_jobs_as_agent_user = true in worker.toml (deadline_cloud.cmf.worker_toml) and restart the service.")


def test_without_an_override_the_opt_in_fix_is_the_file():
    opt_in = next(f for f in reading_of(simworker.example_state())["findings"] if f["id"] == "AGENT_OPT_IN_MISSING")
    assert opt_in["fix"] == "Set [os] run_jobs_as_agent_user = true in worker.toml (deadline_cloud.cmf.worker_toml) and restart the service."


# --- one cause, one refusal, in the rule's words ------------------------------------------------


def _toml(state: dict, change) -> dict:
    return simworker.set_file_bytes(state, change(simworker.file_bytes(state)))


@pytest.mark.parametrize(
    ("case", "cause"),
    [
        ("missing", "CONFIG_MISSING"),
        ("array_of_tables", "CONFIG_INVALID"),  # [[os]]: the file's own opt-in is not what the agent would load
        ("missing_table", "CONFIG_INVALID"),
    ],
)
def test_a_file_the_agent_cannot_load_is_the_cause_and_the_opt_in_no_consequence_listed(case, cause):
    state = simworker.example_state()
    if case == "missing":
        del state["files"][simworker.WORKER_TOML]
    elif case == "array_of_tables":
        _toml(state, lambda b: b.replace(b"\n[os]\n", b"\n[[os]]\n", 1))
    else:
        _toml(state, lambda b: b.replace(b"\n[logging]\n", b"\n[loggingx]\n", 1))
    before = reading_of(state)
    ids = [f["id"] for f in before["findings"] if f["severity"] == "blocker"]
    assert ids == [cause]
    plan = role.plan(before, defaults())
    assert [r["id"] for r in plan["refused"]] == [cause]
    finding = next(f for f in before["findings"] if f["id"] == cause)
    assert plan["refused"][0]["fix"] == finding["fix"]  # the rule's fix, not "correct worker.toml by hand"
    assert "by hand" not in plan["refused"][0]["fix"]


def test_a_file_that_is_no_utf8_is_refused_with_the_rules_fix():
    state = _toml(simworker.example_state(), lambda b: b.replace(b"# ", b"# \xff", 1))
    before = reading_of(state)
    plan = role.plan(before, defaults())
    assert [r["id"] for r in plan["refused"]] == ["CONFIG_ENCODING"]
    assert plan["refused"][0]["fix"].startswith("Save worker.toml as UTF-8 without a BOM")


def test_an_environment_override_of_a_file_that_lacks_the_opt_in_too_names_both_causes():
    state = simworker.example_state()  # no opt-in in the file
    state["services"]["DeadlineWorker"]["environment"].append(f"{OPT_IN}=false")
    ids = {f["id"] for f in reading_of(state)["findings"]}
    assert {"AGENT_OPT_IN_MISSING", "ENV_OVERRIDE"} <= ids  # the file needs it as well: worker_agent_info says so
    # the role writes the file: only the variable is left to refuse, without a post-filter of its own
    assert [r["id"] for r in role.plan(reading_of(state), defaults())["refused"]] == ["ENV_OVERRIDE"]
