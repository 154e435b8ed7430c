# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Domain-joined workers: the account's token groups (domain groups included), rights a domain Group
Policy owns, and a domain controller out of reach; on the simulated worker's readings, through the
rules (worker_agent_info's findings) and the role's plan, which refuses before any change."""

from __future__ import annotations

import copy

import pytest
import simworker
import yaml
from simworker import CORP, DOMAIN_ADMINS, DOMAIN_USERS, RENDER_ADMINS, RENDER_SERVICES, RENDER_SVC, domain_state

from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils import _role as role
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._agent import rules as agent_rules
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host import HostOperationError
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host.simulated.accounts import account_report, set_user_rights
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host.simulated.agent import control_service, read_agent_info
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host.simulated.state import SimulatedState
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._windows.accounts import AccountError, is_domain_account
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._windows.groups import plan_membership
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._windows.user_rights import policy_gaps

ADMINISTRATORS = "S-1-5-32-544"
BACKUP_OPERATORS = "S-1-5-32-551"
ALL_SERVICES = "S-1-5-80-0"
SERVICE = "S-1-5-6"  # NT AUTHORITY\\SERVICE, in every service logon's token
LOCAL_AGENT = simworker.LOCAL_AGENT
DEFAULTS = yaml.safe_load((simworker.REPO_ROOT / "roles" / "deadline_worker_agent_user" / "defaults" / "main.yml").read_text())


def reading(state: dict) -> dict:
    raw = read_agent_info(SimulatedState(copy.deepcopy(state)), {"service": "DeadlineWorker", "config_path": simworker.WORKER_TOML, "account": ""})
    return agent_rules.result_of(raw)


def findings(state: dict) -> dict[tuple[str, str], dict]:
    return {(f["id"], f["severity"]): f for f in reading(state)["findings"]}


def plan(state: dict, **variables) -> dict:
    return role.plan(reading(state), {**DEFAULTS, **{role.PREFIX + k: v for k, v in variables.items()}})


def refused(result: dict) -> dict[str, dict]:
    return {r["id"]: r for r in result["refused"]}


def no_dc(state: dict) -> dict:
    state["faults"] = {"domain_unreachable": True}
    return state


# --- the reading: token groups --------------------------------------------------------------------


def test_the_token_holds_domain_groups_nested_ones_and_the_implicit_ones():
    state = domain_state(admin_through=RENDER_ADMINS)
    report = account_report(SimulatedState(state), "CORP\\render-svc")
    token = {g["sid"]: g for g in report["token_groups"]}
    assert report["token_groups_known"] is True and report["token_groups_error"] is None
    assert token[RENDER_ADMINS] == {"sid": RENDER_ADMINS, "name": "CORP\\Render Admins", "scope": "domain"}
    assert token[ADMINISTRATORS]["scope"] == "local" and token["S-1-5-32-545"]["scope"] == "local"  # Users through Domain Users
    assert {"S-1-1-0", "S-1-5-11", "S-1-5-6"} <= set(token)  # Everyone, Authenticated Users, SERVICE
    assert DOMAIN_ADMINS not in token  # a group of Administrators the account is not in
    assert set(report["group_rights"]) == set(token)
    users = next(g for g in report["groups"] if g["sid"] == "S-1-5-32-545")
    assert users["indirect"] is True


def test_a_local_group_holding_authenticated_users_holds_every_account():
    state = simworker.example_state()
    state["accounts"]["S-1-5-32-551"]["members"].append("S-1-5-11")
    report = account_report(SimulatedState(state), ".\\deadline-worker")
    assert {"name": "Backup Operators", "sid": BACKUP_OPERATORS, "indirect": True} in report["groups"]


def test_without_a_domain_controller_a_domain_accounts_groups_are_unknown_and_a_local_accounts_are_not():
    state = no_dc(domain_state(admin_through=RENDER_ADMINS))
    sim = SimulatedState(state)
    domain = account_report(sim, "CORP\\render-svc")  # known to the host already (its LSA cache)
    assert domain["token_groups_known"] is False
    assert domain["token_groups_error"]["code"] == "DOMAIN_UNREACHABLE"
    assert RENDER_ADMINS not in {g["sid"] for g in domain["token_groups"]}
    local = account_report(sim, ".\\ansible")
    assert local["token_groups_known"] is True
    with pytest.raises(HostOperationError) as raised:
        account_report(sim, "CORP\\nobody")
    assert raised.value.code == "DOMAIN_UNREACHABLE"  # never ACCOUNT_NOT_FOUND: the domain was not asked
    with pytest.raises(HostOperationError) as raised:
        account_report(sim, ".\\nobody")
    assert raised.value.code == "ACCOUNT_NOT_FOUND"  # a local name: the host itself knows


def test_on_a_localized_host_the_computers_own_accounts_need_no_domain_controller():
    # German Windows names NT AUTHORITY "NT-AUTORITÄT" and BUILTIN "VORDEFINIERT": an account is a domain's by
    # its SID (S-1-5-21 outside the machine's prefix), never by its domain's name.
    state = no_dc(domain_state())
    state["accounts"]["S-1-5-18"] = {"name": "SYSTEM", "domain": "NT-AUTORITÄT", "type": "well_known"}
    state["accounts"]["S-1-5-20"] = {"name": "NETZWERKDIENST", "domain": "NT-AUTORITÄT", "type": "well_known"}
    sim = SimulatedState(state)
    system = account_report(sim, "LocalSystem")
    assert system["token_groups_known"] is True and system["token_groups_error"] is None  # no S4U of SYSTEM@domain
    assert all(g["scope"] != "domain" for g in system["token_groups"])
    with pytest.raises(HostOperationError) as raised:
        account_report(sim, "NT-AUTORITÄT\\niemand")
    assert raised.value.code == "ACCOUNT_NOT_FOUND"  # the host's own domain, in its language: no domain to ask


def test_an_account_is_a_domains_by_its_sid_never_by_its_localized_domain_name():
    machine = "S-1-5-21-3623811015-3361044348-30300820-"
    assert not is_domain_account("S-1-5-18", "NT-AUTORITÄT", "WORKER-01")
    assert not is_domain_account("S-1-5-32-544", "VORDEFINIERT", "WORKER-01")
    assert not is_domain_account("S-1-5-80-0", "NT SERVICE", "WORKER-01", machine)
    assert not is_domain_account(f"{machine}1001", "WORKER-01", "worker-01")
    assert not is_domain_account(f"{machine}1001", "WORKER-01-RENAMED", "WORKER-01", machine)  # the prefix decides
    assert is_domain_account(RENDER_SVC, "CORP", "WORKER-01") and is_domain_account(RENDER_SVC, "CORP", "WORKER-01", machine)


def test_a_state_without_the_new_keys_reads_as_before():
    report = account_report(SimulatedState(simworker.example_state()), ".\\deadline-worker")
    assert report["group_policy"] == {"known": True, "domain_member": False, "rights": {}, "error": None}
    assert report["token_groups_known"] is True
    assert [g["name"] for g in report["groups"]] == ["Administrators", "deadline-job-users", "Users"]


# --- removal from Administrators: refused before any change when it cannot work -------------------


@pytest.mark.parametrize("carrier", [RENDER_ADMINS, DOMAIN_ADMINS])
def test_an_administrator_also_through_a_domain_group_is_refused_naming_it(carrier):
    report = account_report(SimulatedState(domain_state(admin_through=carrier)), "CORP\\render-svc")
    with pytest.raises(AccountError) as raised:
        plan_membership(report, [ADMINISTRATORS], "absent")
    assert raised.value.code == "REMOVAL_REFUSED"
    name = "CORP\\Render Admins" if carrier == RENDER_ADMINS else "CORP\\Domain Admins"
    assert f"also a member through {name}, nested in it" in raised.value.message


def test_removal_is_refused_when_the_domain_groups_cannot_be_read():
    report = account_report(SimulatedState(no_dc(domain_state())), "CORP\\render-svc")
    with pytest.raises(AccountError) as raised:
        plan_membership(report, [ADMINISTRATORS], "absent")
    assert raised.value.code == "DOMAIN_UNREACHABLE"
    message = raised.value.message
    assert "cannot be read" in message and "cannot be told" in message and "DOMAIN_UNREACHABLE" in message
    assert "not a member" not in message and "does not exist" not in message  # never a guess either way


def test_the_role_refuses_an_administrator_through_a_domain_group_before_any_change():
    result = plan(domain_state(admin_through=RENDER_ADMINS))
    assert list(refused(result)) == ["REMOVAL_REFUSED"]
    assert "CORP\\Render Admins" in refused(result)["REMOVAL_REFUSED"]["message"]
    assert refused(result)["REMOVAL_REFUSED"]["fix"] == (
        "take the account out of CORP\\Render Admins (or that group out of Administrators), then run again"
    )
    assert result["act"] is False and result["rights_to_grant"] == [] and result["groups_to_leave"] == []
    admin = findings(domain_state(admin_through=RENDER_ADMINS))[("AGENT_USER_IS_ADMIN", "security")]
    assert "(directly and through CORP\\Render Admins)" in admin["message"]


def test_the_role_refuses_when_no_domain_controller_answers():
    state = no_dc(domain_state())
    result = plan(state)
    assert [r["id"] for r in result["refused"]] == ["DOMAIN_UNREACHABLE"] and result["act"] is False
    assert refused(result)["DOMAIN_UNREACHABLE"]["fix"].startswith("Restore the host's connection to a domain controller")
    found = findings(state)
    assert ("DOMAIN_UNREACHABLE", "security") in found
    # also where the role would leave no group: nothing is decided on groups it cannot read
    assert "DOMAIN_UNREACHABLE" in refused(plan(state, leave_groups=[]))


def test_an_account_the_host_cannot_resolve_without_its_domain_is_domain_unreachable_not_missing():
    state = no_dc(domain_state())
    state["services"]["DeadlineWorker"]["account"] = "CORP\\render-svc2"  # not in the host's cache
    found = findings(state)
    assert ("DOMAIN_UNREACHABLE", "blocker") in found and not any(i == "ACCOUNT_MISSING" for i, _s in found)
    assert "DOMAIN_UNREACHABLE" in refused(plan(state))


def test_a_domain_account_out_of_administrators_directly_converges():
    result = plan(domain_state())
    assert result["refused"] == []
    assert [g["sid"] for g in result["groups_to_leave"]] == [ADMINISTRATORS]
    assert result["predicted_ready"] is True


# --- rights a domain Group Policy owns -------------------------------------------------------------


def test_the_reading_reports_the_policys_holders_by_sid_and_name():
    state = domain_state(policy={"SeServiceLogonRight": [ALL_SERVICES, RENDER_SERVICES]})
    policy = account_report(SimulatedState(state), "CORP\\render-svc")["group_policy"]
    assert policy["known"] is True and policy["domain_member"] is True
    assert policy["rights"]["SeServiceLogonRight"] == [
        {"sid": ALL_SERVICES, "name": "NT SERVICE\\ALL SERVICES"},
        {"sid": RENDER_SERVICES, "name": "CORP\\Render Services"},
    ]


def test_a_policy_that_leaves_out_the_account_takes_the_logon_right_and_is_a_blocker():
    state = domain_state(policy={"SeServiceLogonRight": [ALL_SERVICES]})
    owned = findings(state)[("RIGHT_OWNED_BY_POLICY", "blocker")]
    assert "SeServiceLogonRight ('Log on as a service')" in owned["message"]
    assert "NT SERVICE\\ALL SERVICES (S-1-5-80-0) only" in owned["message"]
    assert "a direct grant does not last" in owned["message"]
    assert owned["fix"].startswith(f"Add CORP\\render-svc ({RENDER_SVC}) (or a group it keeps) to 'Log on as a service'")
    assert "run again" in owned["fix"]
    result = plan(state)
    assert refused(result)["RIGHT_OWNED_BY_POLICY"]["message"].startswith("A domain Group Policy sets SeServiceLogonRight")
    assert result["act"] is False


def test_a_right_held_only_through_administrators_would_be_lost_outside_it():
    """The installer's host where a baseline GPO sets 'Shut down the system' for Administrators and
    Backup Operators: the account has it now, but not once the role takes it out of Administrators."""
    state = domain_state(policy={"SeShutdownPrivilege": [ADMINISTRATORS, BACKUP_OPERATORS]})
    warning = findings(state)[("RIGHT_OWNED_BY_POLICY", "warning")]
    assert "only through Administrators, which it is to leave" in warning["message"]
    assert "shutdown_on_stop = false" in warning["fix"]
    result = plan(state)
    assert "SeShutdownPrivilege" in refused(result)["RIGHT_OWNED_BY_POLICY"]["message"]
    assert result["rights_to_grant"] == [] and result["groups_to_leave"] == []
    # the agent told not to shut the host down needs no shutdown right: nothing is refused for it
    state["services"]["DeadlineWorker"]["environment"].append("DEADLINE_WORKER_NO_SHUTDOWN=true")
    assert plan(state)["refused"] == []


def test_a_right_the_agent_does_not_need_can_be_left_out_of_the_roles_rights():
    # A CIS-style baseline: 'Replace a process level token' for LOCAL SERVICE and NETWORK SERVICE only.
    state = domain_state(policy={"SeAssignPrimaryTokenPrivilege": ["S-1-5-19", "S-1-5-20"]})
    owned = refused(plan(state))["RIGHT_OWNED_BY_POLICY"]
    assert "WORKER_AGENT_USER jobs do not need it" in owned["message"]
    assert "leave SeAssignPrimaryTokenPrivilege out of deadline_worker_agent_user_rights" in owned["fix"]
    relieved = plan(state, rights=["SeServiceLogonRight", "SeIncreaseQuotaPrivilege"])
    assert relieved["refused"] == [] and relieved["act"] is True


def test_a_right_left_out_of_the_roles_rights_is_no_warning_of_the_host_the_run_leaves():
    """The rules judge the rights the run converges to: a host converged with trimmed rights does not keep a
    RIGHT_OWNED_BY_POLICY warning (whose fix is to leave the right out, done already) forever."""
    state = domain_state(policy={"SeAssignPrimaryTokenPrivilege": ["S-1-5-19", "S-1-5-20"]})
    trimmed = ["SeServiceLogonRight", "SeIncreaseQuotaPrivilege"]
    result = plan(state, rights=trimmed)
    assert result["refused"] == [] and "RIGHT_OWNED_BY_POLICY" not in result["predicted_ids"]
    assert result["rights_wanted"] == [*trimmed, "SeShutdownPrivilege"]
    # the verification reading after the run, and the reading of the converged host when nothing is left to do
    converged = copy.deepcopy(state)
    converged["accounts"][ADMINISTRATORS]["members"].remove(RENDER_SVC)
    for right in ("SeIncreaseQuotaPrivilege", "SeShutdownPrivilege"):
        converged["rights"].setdefault(right, []).append(RENDER_SVC)
    text = simworker.file_bytes(converged).decode().replace("[os]\n", "[os]\nrun_jobs_as_agent_user = true\n", 1)
    simworker.set_file_bytes(converged, text.encode())
    after = reading(converged)
    assert ("RIGHT_OWNED_BY_POLICY", "warning") in findings(converged)  # worker_agent_info judges the collection's list
    restart = {"changed": True, "restarted": True, "healthy": True, "info": after}
    outcome = role.outcome(reading(state), result, rights={"changed": True, "added": ["SeIncreaseQuotaPrivilege"]}, restart=restart)
    assert outcome["status"] == "fixed" and "RIGHT_OWNED_BY_POLICY" not in {f["id"] for f in outcome["findings_after"]}
    again = plan(converged, rights=trimmed)
    assert again["act"] is False
    fine = role.outcome(after, again)
    assert fine["status"] == "already_fine" and "RIGHT_OWNED_BY_POLICY" not in {f["id"] for f in fine["findings_after"]}


def test_a_policy_that_lists_a_group_the_account_keeps_converges():
    state = domain_state(policy={"SeServiceLogonRight": [RENDER_SERVICES], "SeShutdownPrivilege": [ADMINISTRATORS, RENDER_SERVICES]})
    assert not [f for f in reading(state)["findings"] if f["id"] == "RIGHT_OWNED_BY_POLICY"]
    result = plan(state)
    assert result["refused"] == [] and result["predicted_ready"] is True


def test_a_policy_deny_right_that_names_a_group_of_the_account_is_refused():
    state = domain_state(policy={"SeDenyServiceLogonRight": [DOMAIN_USERS]})
    owned = findings(state)[("RIGHT_OWNED_BY_POLICY", "blocker")]
    assert "SeDenyServiceLogonRight ('Deny log on as a service')" in owned["message"] and "CORP\\Domain Users" in owned["message"]
    assert owned["fix"].startswith("Take CORP\\render-svc")
    assert "RIGHT_OWNED_BY_POLICY" in refused(plan(state))
    # the deny right stops the service while it is held: not "without it"
    assert "without it" not in owned["message"]
    assert "while it is denied that logon, the Service Control Manager cannot start DeadlineWorker" in owned["message"]
    assert "A right granted through the LSA" not in owned["message"]


def test_a_policy_result_that_cannot_be_read_is_refused_on_a_domain_member():
    state = domain_state()
    state["group_policy"] = {"error": "Access denied (root\\rsop\\computer)"}
    found = findings(state)
    assert ("GROUP_POLICY_UNREADABLE", "warning") in found
    assert "Access denied" in found[("GROUP_POLICY_UNREADABLE", "warning")]["message"]
    assert "GROUP_POLICY_UNREADABLE" in refused(plan(state))


def test_a_direct_grant_is_no_holder_of_a_right_the_policy_defines():
    state = domain_state(policy={"SeServiceLogonRight": [ALL_SERVICES]}, refreshed=False)
    report = account_report(SimulatedState(state), "CORP\\render-svc")
    assert "SeServiceLogonRight" in report["rights"]  # the installer's LSA grant, still there until the refresh
    assert [g.right for g in policy_gaps(report, ["SeServiceLogonRight"])] == ["SeServiceLogonRight"]


def test_the_simulated_start_applies_the_policy_as_a_refresh_would():
    """What refusing before the change spares a worker: the grant is undone at the next start, and the
    service cannot log on."""
    state = domain_state(policy={"SeServiceLogonRight": [ALL_SERVICES]}, refreshed=False)
    sim = SimulatedState(state)
    set_user_rights(sim, {"account": RENDER_SVC, "rights": ["SeServiceLogonRight"], "state": "present"})
    assert RENDER_SVC in state["rights"]["SeServiceLogonRight"]
    restart = {"name": "DeadlineWorker", "state": "restarted", "timeout": 60, "settle": 1, "if_idle": False, "config_path": "", "account": ""}
    result = control_service(sim, restart)
    assert state["rights"]["SeServiceLogonRight"] == [ALL_SERVICES]
    assert result["healthy"] is False and result["win32_error"] == 1069


def test_a_policy_refresh_keeps_what_the_policy_lists():
    state = domain_state(policy={"SeServiceLogonRight": [ALL_SERVICES, RENDER_SVC]})
    restart = {"name": "DeadlineWorker", "state": "restarted", "timeout": 60, "settle": 1, "if_idle": False, "config_path": "", "account": ""}
    assert control_service(SimulatedState(state), restart)["healthy"] is True


def test_the_corp_domain_of_the_tests_is_not_the_hosts():
    assert not LOCAL_AGENT.startswith(CORP)


def test_a_right_the_policy_gives_through_a_group_the_account_keeps_is_not_granted_directly():
    """A direct grant of it would be undone at each refresh and made again at each run: never idempotent."""
    state = domain_state(policy={"SeServiceLogonRight": [RENDER_SERVICES], "SeShutdownPrivilege": [ADMINISTRATORS, RENDER_SERVICES]})
    result = plan(state)
    assert "SeShutdownPrivilege" not in result["rights"] and "SeServiceLogonRight" not in result["rights"]
    assert result["rights_to_grant"] == ["SeIncreaseQuotaPrivilege"]
    assert result["predicted_ready"] is True


def test_groups_unknown_for_another_cause_say_so_and_are_refused_under_that_code():
    """The host could reach the domain but not read the groups (the account's UPN names another account)."""
    before = reading(domain_state())
    before["reading"]["account"].update(
        token_groups_known=False, token_groups_error={"code": "TOKEN_GROUPS_FAILED", "message": "render-svc@corp.example.com names another account"}
    )
    result = agent_rules.result_of(before["reading"])
    assert [(f["id"], f["severity"]) for f in result["findings"] if f["id"].startswith(("TOKEN", "DOMAIN"))] == [("TOKEN_GROUPS_UNKNOWN", "security")]
    with pytest.raises(AccountError) as raised:
        plan_membership(before["reading"]["account"], [ADMINISTRATORS], "absent")
    assert raised.value.code == "TOKEN_GROUPS_FAILED" and "names another account" in raised.value.message
    # one cause, one refusal, one fix: the finding's (the plan's own AccountError said the same)
    role_refusals = role.plan(result, DEFAULTS)["refused"]
    assert [r["id"] for r in role_refusals] == ["TOKEN_GROUPS_UNKNOWN"]
    assert role_refusals[0]["fix"] == next(f["fix"] for f in result["findings"] if f["id"] == "TOKEN_GROUPS_UNKNOWN")


# --- no domain controller: rights through groups the host could not read are unknown, not missing --


def test_without_a_domain_controller_a_right_the_policy_gives_through_a_domain_group_is_not_called_missing():
    """The logon right comes from a GPO through CORP\\Render Services, which the host cannot read now:
    neither the policy's verdict nor the logon right can be told, and DOMAIN_UNREACHABLE is the one
    cause named (issue 16: never a false blocker, and never a grant the next refresh removes)."""
    state = no_dc(domain_state(policy={"SeServiceLogonRight": [RENDER_SERVICES, ALL_SERVICES]}))
    found = findings(state)
    assert ("DOMAIN_UNREACHABLE", "security") in found
    assert not [key for key in found if key[0] in ("RIGHT_OWNED_BY_POLICY", "SERVICE_LOGON_RIGHT_MISSING", "AGENT_STARTUP_ERROR")]
    assert not any("Grant SeServiceLogonRight" in f["fix"] for f in found.values())
    result = plan(state)
    assert list(refused(result)) == ["DOMAIN_UNREACHABLE"] and result["act"] is False
    assert "SeServiceLogonRight" not in result["rights_to_grant"]


def test_without_a_domain_controller_what_is_known_still_counts():
    """A deny right the policy gives the account itself, and a right it holds directly, stay known."""
    state = no_dc(domain_state(policy={"SeDenyServiceLogonRight": [RENDER_SVC]}))
    assert ("RIGHT_OWNED_BY_POLICY", "blocker") in findings(state)
    state = no_dc(domain_state())  # the installer's direct grant of the logon right
    assert not [key for key in findings(state) if key[0] == "SERVICE_LOGON_RIGHT_MISSING"]


def test_without_a_domain_controller_the_shutdown_right_is_not_called_missing():
    state = no_dc(domain_state())
    state["accounts"][ADMINISTRATORS]["members"].remove(RENDER_SVC)  # out of Administrators: its shutdown right came from there
    state["rights"].pop("SeShutdownPrivilege", None)
    assert ("DOMAIN_UNREACHABLE", "security") in findings(state)
    assert not [key for key in findings(state) if key[0] == "SHUTDOWN_RIGHT_MISSING"]
    state["faults"] = {}
    assert ("SHUTDOWN_RIGHT_MISSING", "warning") in findings(state)  # with the groups known, it is missing


# --- fixes that agree with the policy: no direct grant of a right a GPO defines ---------------------


def out_of_administrators(state: dict) -> dict:
    state["accounts"][ADMINISTRATORS]["members"].remove(RENDER_SVC)
    return state


def test_a_shutdown_right_the_policy_defines_is_never_to_be_granted_directly():
    state = out_of_administrators(domain_state(policy={"SeShutdownPrivilege": [ADMINISTRATORS, BACKUP_OPERATORS]}))
    found = findings(state)
    missing, owned = found[("SHUTDOWN_RIGHT_MISSING", "warning")], found[("RIGHT_OWNED_BY_POLICY", "warning")]
    assert "directly" not in missing["fix"]
    assert missing["fix"].startswith("Add CORP\\render-svc") and "'Shut down the system' (SeShutdownPrivilege) in the GPO" in missing["fix"]
    assert owned["fix"].startswith("Add CORP\\render-svc")  # the two say the same


def test_with_the_no_shutdown_variable_deciding_the_policy_fix_names_the_variable_in_the_rule_and_the_role():
    state = domain_state(policy={"SeShutdownPrivilege": [ADMINISTRATORS, BACKUP_OPERATORS]})
    state["services"]["DeadlineWorker"]["environment"].append("DEADLINE_WORKER_NO_SHUTDOWN=false")
    owned = findings(state)[("RIGHT_OWNED_BY_POLICY", "warning")]
    refusal = refused(plan(state))["RIGHT_OWNED_BY_POLICY"]
    for fix in (owned["fix"], refusal["fix"]):
        assert "or, if the host must not shut down, DEADLINE_WORKER_NO_SHUTDOWN decides over worker.toml: remove" in fix
        assert "Services\\DeadlineWorker" in fix


def test_the_administrators_fix_follows_the_policy_and_names_the_nested_group():
    state = domain_state(admin_through=RENDER_ADMINS, policy={"SeServiceLogonRight": [ALL_SERVICES]})
    fix = findings(state)[("AGENT_USER_IS_ADMIN", "security")]["fix"]
    assert "SeServiceLogonRight directly" not in fix and "SeServiceLogonRight, " not in fix
    assert "to 'Log on as a service' (SeServiceLogonRight) in the GPO that sets it" in fix
    assert fix.endswith("then remove it from Administrators, and take it out of CORP\\Render Admins (or that group out of Administrators).")
    only_nested = domain_state(admin_through=RENDER_ADMINS)
    only_nested["accounts"][ADMINISTRATORS]["members"].remove(RENDER_SVC)
    fix = findings(only_nested)[("AGENT_USER_IS_ADMIN", "security")]["fix"]
    assert "remove it from Administrators" not in fix
    assert fix.endswith("then take it out of CORP\\Render Admins (or that group out of Administrators).")


def test_a_policy_that_lists_the_account_but_is_not_applied_yet_says_gpupdate_not_grant():
    """The GPO lists CORP\\Render Services, the account's group, but the computer has not refreshed since
    (and the installer's direct grant is gone): the logon right is missing now, and the next refresh gives it."""
    state = domain_state(policy={"SeServiceLogonRight": [RENDER_SERVICES]}, refreshed=False)
    state["rights"]["SeServiceLogonRight"] = []
    missing = findings(state)[("SERVICE_LOGON_RIGHT_MISSING", "blocker")]
    assert missing["fix"].startswith("Run gpupdate /force on the host, then run again")
    assert "Grant" not in missing["fix"]
    result = plan(state)
    assert refused(result)["SERVICE_LOGON_RIGHT_MISSING"]["fix"] == missing["fix"]
    assert "SeServiceLogonRight" not in result["rights_to_grant"]


# --- SERVICE (S-1-5-6), the logon-type SID: never relied on for the logon right -------------------


def test_a_logon_right_given_to_service_alone_is_not_relied_on():
    """The service logon adds SERVICE to the token; whether the LSA lets the account log on as a service on
    its strength is not documented where this project can rely on it: refused, not trusted."""
    state = domain_state(policy={"SeServiceLogonRight": [SERVICE]})
    assert ("RIGHT_OWNED_BY_POLICY", "blocker") in findings(state)
    assert "RIGHT_OWNED_BY_POLICY" in refused(plan(state))
    local = simworker.example_state()
    local["rights"]["SeServiceLogonRight"] = [SERVICE]  # the installer's direct grant gone, SERVICE holding it
    assert ("SERVICE_LOGON_RIGHT_MISSING", "blocker") in findings(local)
    # a deny right given to SERVICE still denies, and a privilege it holds still counts
    local["rights"]["SeServiceLogonRight"] = [LOCAL_AGENT]
    local["rights"]["SeDenyServiceLogonRight"] = [SERVICE]
    assert ("RIGHT_DENIED", "blocker") in findings(local)


@pytest.mark.parametrize(
    ("code", "fix"),
    [("DOMAIN_UNREACHABLE", "restore the host's connection to a domain controller"), ("TOKEN_GROUPS_FAILED", "correct what the error names")],
)
def test_a_right_a_policy_sets_while_the_groups_are_unread_is_fixed_by_what_made_them_unread(code, fix):
    account = {
        "name": "CORP\\render-svc",
        "sid": RENDER_SVC,
        "groups": [{"sid": "S-1-5-32-544", "name": "Administrators"}],
        "rights": [],
        "token_groups_known": False,
        "token_groups_error": {"code": code, "message": "the account's groups could not be read"},
        "group_policy": {"rights": {"SeServiceLogonRight": [{"sid": RENDER_SERVICES, "name": "CORP\\Render Services"}]}},
    }
    text = agent_rules.grant_fix(account, "SeServiceLogonRight", ("S-1-5-32-544",))
    assert text.startswith(fix), text
    assert "'Log on as a service' (SeServiceLogonRight)" in text
