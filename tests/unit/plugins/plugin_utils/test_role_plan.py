# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The role's decisions (plugin_utils/_role.py) on readings of simulated workers: every refusal is
decided before any change, by predicting the host after the role's own fix."""

from __future__ import annotations

import copy

import pytest
import simworker
import yaml

from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils import _fleet as fleet_report
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils import _role as role
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._agent import rules as agent_rules
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host.simulated.agent import read_agent_info
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host.simulated.state import SimulatedState

DEFAULTS_FILE = simworker.REPO_ROOT / "roles" / "deadline_worker_agent_user" / "defaults" / "main.yml"
AGENT_SID = "S-1-5-21-3623811015-3361044348-30300820-1001"
ADMIN_SID = "S-1-5-21-3623811015-3361044348-30300820-500"
CONNECTION_SID = "S-1-5-21-3623811015-3361044348-30300820-1000"


def defaults(**changes) -> dict:
    values = yaml.safe_load(DEFAULTS_FILE.read_text(encoding="utf-8"))
    values.update({f"{role.PREFIX}{k}": v for k, v in changes.items()})
    return values


def reading_of(state: dict, account: str = "") -> dict:
    raw = read_agent_info(SimulatedState(copy.deepcopy(state)), {"service": "DeadlineWorker", "config_path": simworker.WORKER_TOML, "account": account})
    result = agent_rules.result_of(raw)
    result["reading"] = raw
    return result


def installer(change=None) -> dict:
    state = simworker.example_state()
    if change:
        change(state)
    return state


def plan_for(state: dict, account: str = "", **variables) -> dict:
    return role.plan(reading_of(state, account), defaults(account=account, **variables))


def refused_ids(plan: dict) -> list[str]:
    return [r["id"] for r in plan["refused"]]


def with_toml(state: dict, transform) -> dict:
    return simworker.set_file_bytes(state, transform(simworker.file_bytes(state)))


# --- the installer's state: everything to do, nothing refused ---------------------------------


def test_the_installers_state_plans_the_three_changes_and_a_restart():
    plan = plan_for(installer())
    assert plan["refused"] == []
    assert plan["rights_to_grant"] == ["SeIncreaseQuotaPrivilege", "SeShutdownPrivilege"]
    assert [g["sid"] for g in plan["groups_to_leave"]] == ["S-1-5-32-544"]
    assert plan["worker_toml"] is True and plan["restart"] is True and plan["act"] is True
    assert plan["predicted_ready"] is True
    assert "AGENT_OPT_IN_MISSING" not in plan["predicted_ids"] and "AGENT_USER_IS_ADMIN" not in plan["predicted_ids"]


def test_a_worker_that_is_already_right_plans_nothing():
    state = installer()
    state["accounts"]["S-1-5-32-544"]["members"].remove(AGENT_SID)
    for right in ("SeIncreaseQuotaPrivilege", "SeShutdownPrivilege"):
        state["rights"][right].append(AGENT_SID)
    with_toml(state, lambda b: b.replace(b"\n[os]\n", b"\n[os]\nrun_jobs_as_agent_user = true\n", 1))
    plan = plan_for(state)
    assert (plan["act"], plan["restart"], plan["worker_toml"], plan["rights_to_grant"], plan["groups_to_leave"]) == (
        False, False, False, [], [])


def _converged_but_started_as_administrator() -> dict:
    """Everything right on disk; the agent still runs with the token it started with in Administrators."""
    state = installer()
    state["accounts"]["S-1-5-32-544"]["members"].remove(AGENT_SID)
    for right in ("SeIncreaseQuotaPrivilege", "SeShutdownPrivilege"):
        state["rights"][right].append(AGENT_SID)
    with_toml(state, lambda b: b.replace(b"\n[os]\n", b"\n[os]\nrun_jobs_as_agent_user = true\n", 1))
    state["services"]["DeadlineWorker"]["token_groups"] = ["S-1-5-32-544", "S-1-5-32-545", "S-1-1-0", "S-1-5-11", "S-1-5-6"]
    return state


def test_an_agent_still_running_with_its_administrator_token_is_restarted_and_nothing_else():
    plan = plan_for(_converged_but_started_as_administrator())
    assert (plan["act"], plan["restart"], plan["worker_toml"], plan["rights_to_grant"], plan["groups_to_leave"]) == (True, True, False, [], [])
    assert plan["restart_reasons"] == [
        "the running agent still has the Administrators token it started with, from before the account left the group"
    ]
    assert "AGENT_TOKEN_STALE" not in plan["predicted_ids"] and plan["predicted_ready"] is True  # a restart gives a new token
    # like any restart: never a busy agent unless asked, never with restart_when never
    assert plan_for(_converged_but_started_as_administrator(), restart_when="idle")["when_busy"] == "skip"
    assert plan_for(_converged_but_started_as_administrator(), restart_when="never")["restart_when"] == "never"


# --- refusals before any change ---------------------------------------------------------------


def test_an_account_that_is_not_the_services_logon_account_is_refused_naming_both():
    plan = plan_for(installer(), account="ansible")
    assert refused_ids(plan) == ["ACCOUNT_NOT_SERVICE_ACCOUNT"]
    message = plan["refused"][0]["message"]
    assert "ansible" in message and r".\deadline-worker" in message
    assert plan["act"] is False and plan["rights_to_grant"] == [] and plan["groups_to_leave"] == []
    # the same account named another way is no refusal
    assert plan_for(installer(), account=AGENT_SID)["refused"] == []
    assert plan_for(installer(), account=r"WORKER-01\deadline-worker")["refused"] == []


@pytest.mark.parametrize(
    ("account", "reason"),
    [("ansible", "the account Ansible is connected as"), ("Administrator", "built-in Administrator")],
)
def test_removing_the_connection_account_or_rid_500_from_administrators_is_refused_before_any_change(account, reason):
    state = installer(lambda s: s["services"]["DeadlineWorker"].update(account=rf".\{account}"))
    plan = plan_for(state, account=account)
    assert refused_ids(plan) == ["REMOVAL_REFUSED"]
    assert reason in plan["refused"][0]["message"]
    assert plan["act"] is False


def test_a_group_to_leave_that_the_host_does_not_have_is_refused_before_any_change():
    plan = plan_for(installer(), leave_groups=["S-1-5-32-544", "Render Admins"])
    assert refused_ids(plan) == ["GROUP_NOT_FOUND"] and "Render Admins" in plan["refused"][0]["message"]
    assert plan["act"] is False


def test_a_deny_right_over_the_logon_right_is_refused_as_the_deny_right():
    state = installer(lambda s: s["rights"].update(SeDenyServiceLogonRight=[AGENT_SID]))
    plan = plan_for(state)
    assert refused_ids(plan)[0] == "RIGHT_DENIED"
    assert "SERVICE_LOGON_RIGHT_MISSING" not in refused_ids(plan)
    assert "SeDenyServiceLogonRight" in plan["refused"][0]["message"]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda s: s["services"].pop("DeadlineWorker"), "SERVICE_MISSING"),
        (lambda s: s["services"]["DeadlineWorker"].update(account=r".\ghost"), "ACCOUNT_MISSING"),
        (lambda s: s.update(files={}), "CONFIG_MISSING"),
        (lambda s: simworker.set_file_bytes(s, b"[worker\nfarm_id = \n"), "CONFIG_INVALID"),
        (lambda s: simworker.set_file_bytes(s, b"\xff\xfe[\x00\xd8"), "CONFIG_ENCODING"),
        (lambda s: s["agent"].update(version="0.26.0"), "AGENT_VERSION_UNSUPPORTED"),
        (lambda s: s.update(environment={"DEADLINE_WORKER_RUN_JOBS_AS_AGENT_USER": "false"}), "ENV_OVERRIDE"),
    ],
)
def test_what_the_role_cannot_fix_is_refused(change, expected):
    plan = plan_for(installer(change))
    assert expected in refused_ids(plan), plan["refused"]
    assert plan["act"] is False


@pytest.mark.parametrize("faults", [{"lsa_error": "0xC0000022"}, {"account_lookup_failed": True}], ids=["access-denied", "lookup-failed"])
def test_an_account_the_host_would_not_let_be_read_is_refused_as_unreadable_not_missing(faults):
    """Creating the account is not the fix for an LSA that denies the reading."""
    plan = plan_for(installer(lambda s: s.update(faults=faults)))
    assert plan["act"] is False
    assert "ACCOUNT_UNREADABLE" in refused_ids(plan) and "ACCOUNT_MISSING" not in refused_ids(plan)
    unreadable = next(r for r in plan["refused"] if r["id"] == "ACCOUNT_UNREADABLE")
    assert unreadable["fix"].startswith("Correct what the error names on the host")


def test_a_bom_a_job_user_and_the_impersonation_key_are_fixed_not_refused():
    def messy(state):
        with_toml(state, lambda b: b"\xef\xbb\xbf" + b.replace(b"\n[os]\n", b'\n[os]\nwindows_job_user = "deadline-worker"\nimpersonation = false\n', 1))

    plan = plan_for(installer(messy))
    assert plan["refused"] == [] and plan["worker_toml"] is True and plan["predicted_ready"] is True
    assert any("byte order mark" in w for w in plan["worker_toml_warnings"])


def test_the_minimum_version_is_the_callers():
    state = installer(lambda s: s["agent"].update(version="0.30.0"))
    assert refused_ids(plan_for(state, min_agent_version="0.31.0")) == ["AGENT_VERSION_UNSUPPORTED"]
    assert plan_for(state)["refused"] == []


@pytest.mark.parametrize(
    "where",
    [b"\n[aws]\n", b"farm-0123456789abcdef0123456789abcdef\"\n", b"\n[logging]\n"],
)
def test_a_misplaced_opt_in_is_moved_into_os_not_refused_after_changes(where):
    state = installer(lambda s: with_toml(s, lambda b: b.replace(where, where + b"run_jobs_as_agent_user = true\n", 1)))
    assert b"\nrun_jobs_as_agent_user = true\n" in simworker.file_bytes(state)
    plan = plan_for(state)
    assert plan["refused"] == [], plan["refused"]
    assert plan["worker_toml"] is True and plan["predicted_ready"] is True


def test_an_opt_in_appended_at_the_end_of_the_file_is_moved_into_os():
    state = installer(lambda s: with_toml(s, lambda b: b + b"run_jobs_as_agent_user = true\n"))
    plan = plan_for(state)
    assert plan["refused"] == [], plan["refused"]
    assert plan["predicted_ready"] is True


# --- the role's variables ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("rights", "SeServiceLogonRight", "must be a list"),
        ("rights", ["SeServiceLogonRight", "SeMadeUpRight"], "unknown user right"),
        ("min_agent_version", "abc", "must be a version"),
        ("restart_timeout", -5, "at least 1"),
        ("idle_timeout", -1, "at least 0"),
        ("restart_settle", "soon", "whole number"),
        ("restart_when", "sometimes", "one of idle, always, never"),
        ("when_busy", "wait", "one of skip, interrupt"),
        ("leave_groups", "S-1-5-32-544", "must be a list"),
        ("verify", "maybe", "must be a boolean"),
        ("service", "", "must not be empty"),
    ],
)
def test_each_bad_variable_is_named(name, value, says):
    with pytest.raises(role.RoleVariableError) as caught:
        role.check_variables(defaults(**{name: value}))
    assert f"deadline_worker_agent_user_{name}" in str(caught.value) and says in str(caught.value)


def test_the_defaults_pass_and_strings_of_numbers_and_booleans_are_taken():
    variables = role.check_variables(defaults(restart_timeout="60", verify="yes"))
    assert variables.restart_timeout == 60 and variables.verify is True
    assert role.check_variables(defaults(restart=False)).restart_when == "never"


# --- the outcome -------------------------------------------------------------------------------------


def test_outcome_of_a_refusal_is_not_ready_and_says_why():
    before = reading_of(installer(lambda s: s["agent"].update(version="0.26.0")))
    plan = role.plan(before, defaults())
    result = role.outcome(before, plan)
    assert result["status"] == "refused" and result["ready"] is False and result["changed"] is False
    assert role.should_fail(result)
    assert role.failure_message(result).startswith("the role changed nothing on this host")


def test_outcome_with_nothing_to_change_is_verified_by_the_first_reading():
    state = installer()
    state["accounts"]["S-1-5-32-544"]["members"].remove(AGENT_SID)
    for right in ("SeIncreaseQuotaPrivilege", "SeShutdownPrivilege"):
        state["rights"][right].append(AGENT_SID)
    with_toml(state, lambda b: b.replace(b"\n[os]\n", b"\n[os]\nrun_jobs_as_agent_user = true\n", 1))
    before = reading_of(state)
    result = role.outcome(before, role.plan(before, defaults()), stage="planned")
    assert (result["status"], result["ready"], result["verified_by"]) == ("already_fine", True, "first reading")
    assert not role.should_fail(result)


def test_outcome_in_check_mode_predicts_from_the_file_as_it_would_be_written():
    """A BOM: the agent would refuse the file as it is, but the run removes the BOM first."""
    state = installer(lambda s: with_toml(s, lambda b: b"\xef\xbb\xbf" + b))
    before = reading_of(state)
    plan = role.plan(before, defaults())
    result = role.outcome(before, plan, config={"changed": True}, check_mode=True)
    assert result["status"] == "would_change" and result["changed"] is True
    assert result["verified_by"] == "prediction (check mode)"
    assert "CONFIG_ENCODING" not in {f["id"] for f in result["findings_after"]}
    assert isinstance(result["ready"], bool)


def test_a_busy_agent_left_running_is_restart_pending_not_a_failure():
    before = reading_of(installer())
    plan = role.plan(before, defaults())
    restart = {"changed": False, "restarted": False, "restart_pending": True, "busy": True, "sessions": {"count": 2}}
    result = role.outcome(before, plan, rights={"changed": True, "added": ["SeIncreaseQuotaPrivilege"]}, restart=restart)
    assert result["status"] == "restart_pending" and result["ready"] is False
    assert result["restart_pending_reason"] == "busy: 2 session(s) running"
    assert not role.should_fail(result)
    entry = fleet_report.converge_entry("w1", result)
    assert (entry["status"], entry["sessions"]) == ("restart_pending", 2)


def test_the_diagnosis_says_what_converge_does_with_each_finding():
    before = reading_of(installer(lambda s: s.update(environment={"DEADLINE_WORKER_RUN_JOBS_AS_AGENT_USER": "false"})))
    plan = role.plan(before, defaults())
    entry = fleet_report.host_entry("w1", before, plan)
    actions = {f["id"]: f["converge"] for f in entry["findings"]}
    assert actions["ENV_OVERRIDE"] == "refuses" and entry["converge"] == "refuses: ENV_OVERRIDE"
    assert "AGENT_OPT_IN_MISSING" not in {r["id"] for r in plan["refused"]}  # the cause is named, not its consequence
    fixable = reading_of(installer())
    entry = fleet_report.host_entry("w2", fixable, role.plan(fixable, defaults()))
    actions = {f["id"]: f["converge"] for f in entry["findings"]}
    assert actions["AGENT_OPT_IN_MISSING"] == "fixes" and actions["AGENT_USER_IS_ADMIN"] == "fixes"
    assert entry["converge"] == "fixes"


def test_a_result_without_the_hosts_reading_is_never_planned_from():
    summary = reading_of(installer())
    del summary["reading"]  # worker_agent_info without details
    plan = role.plan(summary, defaults())
    assert plan["act"] is False and plan["refused"] == [] and "details: true" in plan["unread"]
    result = role.outcome(summary, plan)
    assert result["status"] == "failed" and "details: true" in result["error"]


@pytest.mark.parametrize("leave_groups", [["S-1-5-32-544"], []])
def test_a_refused_administrator_is_not_ready_unless_the_operator_keeps_it_one(leave_groups):
    """The opt-in is set, so jobs would run, but as an administrator through a domain group the role cannot leave."""
    state = installer()
    with_toml(state, lambda b: b.replace(b"\n[os]\n", b"\n[os]\nrun_jobs_as_agent_user = true\n", 1))
    domain_admins = "S-1-5-21-1111111111-2222222222-3333333333-512"
    state["accounts"][domain_admins] = {"name": "Domain Admins", "domain": "CORP", "type": "group", "members": [AGENT_SID]}
    state["accounts"]["S-1-5-32-544"]["members"] = [m for m in state["accounts"]["S-1-5-32-544"]["members"] if m != AGENT_SID]
    state["accounts"]["S-1-5-32-544"]["members"].append(domain_admins)
    before = reading_of(state)
    assert before["ready"] is True  # the agent accepts the jobs: worker_agent_info's verdict
    plan = role.plan(before, defaults(leave_groups=leave_groups))
    result = role.outcome(before, plan)
    if leave_groups:
        assert (result["status"], result["ready"]) == ("refused", False)
        assert "only through CORP\\Domain Admins" in role.failure_message(result)
    else:  # the operator keeps the account an administrator: nothing to refuse, and its membership does not count
        assert plan["refused"] == [] and plan["leaves_administrators"] is False
        assert role.outcome(before, plan, rights={"changed": True, "added": plan["rights_to_grant"]}, restart={
            "changed": True, "restarted": True, "healthy": True, "info": before,
        })["ready"] is True


def test_localsystem_is_refused_and_not_ready():
    state = installer()
    state["accounts"]["S-1-5-18"] = {"name": "SYSTEM", "domain": "NT AUTHORITY", "type": "well_known"}
    state["services"]["DeadlineWorker"]["account"] = "LocalSystem"
    with_toml(state, lambda b: b.replace(b"\n[os]\n", b"\n[os]\nrun_jobs_as_agent_user = true\n", 1))
    before = reading_of(state)
    result = role.outcome(before, role.plan(before, defaults()))
    assert (result["status"], result["ready"]) == ("refused", False)
    assert [r["id"] for r in result["refused"]] == ["AGENT_USER_IS_SYSTEM"]


def test_the_final_state_rights_are_one_list_in_the_rules_the_defaults_and_the_argument_spec():
    role_dir = simworker.REPO_ROOT / "roles" / "deadline_worker_agent_user"
    defaults_file = yaml.safe_load((role_dir / "defaults" / "main.yml").read_text(encoding="utf-8"))
    spec = yaml.safe_load((role_dir / "meta" / "argument_specs.yml").read_text(encoding="utf-8"))["argument_specs"]["main"]["options"]
    for name in ("rights", "shutdown_rights"):
        assert defaults_file[f"{role.PREFIX}{name}"] == spec[f"{role.PREFIX}{name}"]["default"], name
    assert tuple(defaults_file[f"{role.PREFIX}rights"]) == agent_rules.FINAL_STATE_RIGHTS
    assert defaults_file[f"{role.PREFIX}shutdown_rights"] == [agent_rules.SHUTDOWN_PRIVILEGE]
