# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""deadline_cloud.cmf.win_user_rights through ansible-playbook, on simulated workers."""

from __future__ import annotations

import copy

import simworker

MODULE = "deadline_cloud.cmf.win_user_rights"
AGENT = "S-1-5-21-3623811015-3361044348-30300820-1001"
ANSIBLE = "S-1-5-21-3623811015-3361044348-30300820-1000"
LOCAL_SERVICE = "S-1-5-19"
ADMINISTRATORS = "S-1-5-32-544"
USERS = "S-1-5-32-545"


def run_one(tmp_path, state: dict, args: dict, *flags: str):
    return simworker.run_module(tmp_path, state, MODULE, args, *flags)


def holders(state: dict, right: str) -> list[str]:
    return list(state["rights"].get(right) or [])


def test_grants_missing_rights_on_the_accounts_sid_only(tmp_path):
    before = simworker.example_state()
    result, after, _completed = run_one(
        tmp_path,
        before,
        {"account": r".\deadline-worker", "rights": ["SeIncreaseQuotaPrivilege", "SeShutdownPrivilege", "SeServiceLogonRight"]},
    )
    assert result["changed"] is True
    assert result["sid"] == AGENT
    assert result["account"] == r"WORKER-01\deadline-worker"
    assert result["added"] == ["SeIncreaseQuotaPrivilege", "SeShutdownPrivilege"]
    assert result["removed"] == []
    assert result["rights"] == [
        "SeAssignPrimaryTokenPrivilege",
        "SeIncreaseQuotaPrivilege",
        "SeServiceLogonRight",
        "SeShutdownPrivilege",
    ]
    assert holders(after, "SeIncreaseQuotaPrivilege") == [ADMINISTRATORS, LOCAL_SERVICE, "S-1-5-20", AGENT]
    assert holders(after, "SeShutdownPrivilege") == [ADMINISTRATORS, "S-1-5-32-551", AGENT]
    # every other right of every other account is as it was
    expected = copy.deepcopy(before["rights"])
    expected["SeIncreaseQuotaPrivilege"].append(AGENT)
    expected["SeShutdownPrivilege"].append(AGENT)
    assert after["rights"] == expected
    assert after["calls"] == {"set_user_rights": 1}
    assert "warnings" not in result


def test_effective_rights_say_which_group_gives_them(tmp_path):
    result, _state, _completed = run_one(tmp_path, simworker.example_state(), {"account": "deadline-worker", "rights": []})
    effective = result["effective_rights"]
    assert effective["SeShutdownPrivilege"] == [{"name": "Administrators", "sid": ADMINISTRATORS}]
    assert effective["SeIncreaseQuotaPrivilege"] == [{"name": "Administrators", "sid": ADMINISTRATORS}]
    assert effective["SeNetworkLogonRight"] == [
        {"name": "Administrators", "sid": ADMINISTRATORS},
        {"name": "Users", "sid": USERS},
    ]
    # Backup Operators holds SeBackupPrivilege too, but the account is not in it
    assert effective["SeBackupPrivilege"] == [{"name": "Administrators", "sid": ADMINISTRATORS}]
    assert "SeServiceLogonRight" not in effective  # held directly, through no group
    assert result["changed"] is False


def test_rights_match_case_insensitively_and_come_back_canonical(tmp_path):
    result, after, _completed = run_one(
        tmp_path, simworker.example_state(), {"account": "DEADLINE-WORKER", "rights": ["seshutdownprivilege", "SESERVICELOGONRIGHT"]}
    )
    assert result["added"] == ["SeShutdownPrivilege"]
    assert AGENT in holders(after, "SeShutdownPrivilege")
    assert "seshutdownprivilege" not in after["rights"]


def test_idempotent_second_run_changes_nothing_in_one_call(tmp_path):
    task = {MODULE: {"account": AGENT, "rights": ["SeIncreaseQuotaPrivilege"]}}
    results, states, _completed = simworker.run_tasks(tmp_path, {"worker-01": simworker.example_state()}, [task, task])
    first, second = results["worker-01"]
    assert first["changed"] is True and first["added"] == ["SeIncreaseQuotaPrivilege"]
    assert second["changed"] is False
    assert second["added"] == [] and second["removed"] == []
    assert states["worker-01"]["calls"] == {"set_user_rights": 2}
    assert states["worker-01"]["calls_total"] == 2


def test_absent_removes_only_the_direct_right_of_this_account(tmp_path):
    before = simworker.example_state()
    result, after, _completed = run_one(
        tmp_path,
        before,
        {"account": AGENT.lower(), "rights": ["SeAssignPrimaryTokenPrivilege", "SeDebugPrivilege"], "state": "absent"},
    )
    assert result["changed"] is True
    assert result["removed"] == ["SeAssignPrimaryTokenPrivilege"]  # SeDebugPrivilege comes only through a group
    assert holders(after, "SeAssignPrimaryTokenPrivilege") == [LOCAL_SERVICE, "S-1-5-20"]
    assert holders(after, "SeDebugPrivilege") == [ADMINISTRATORS]
    assert result["rights"] == ["SeServiceLogonRight"]
    assert result["effective_rights"]["SeDebugPrivilege"] == [{"name": "Administrators", "sid": ADMINISTRATORS}]


def test_absent_for_rights_not_held_is_no_change(tmp_path):
    before = simworker.example_state()
    result, after, _completed = run_one(tmp_path, before, {"account": "deadline-worker", "rights": ["SeShutdownPrivilege"], "state": "absent"})
    assert result["changed"] is False
    assert result["removed"] == []
    assert after["rights"] == before["rights"]


def test_check_mode_reports_and_changes_nothing_in_one_read(tmp_path):
    before = simworker.example_state()
    result, after, _completed = run_one(
        tmp_path, before, {"account": "deadline-worker", "rights": ["SeShutdownPrivilege", "SeAssignPrimaryTokenPrivilege"]}, "--check"
    )
    assert result["changed"] is True
    assert result["added"] == ["SeShutdownPrivilege"]
    assert "SeShutdownPrivilege" in result["rights"]
    assert after["rights"] == before["rights"]
    assert after["calls"] == {"read_account": 1}


def test_check_mode_absent_plans_the_removal(tmp_path):
    before = simworker.example_state()
    result, after, _completed = run_one(
        tmp_path, before, {"account": "deadline-worker", "rights": ["SeServiceLogonRight"], "state": "absent"}, "--check"
    )
    assert result["removed"] == ["SeServiceLogonRight"]
    assert result["rights"] == ["SeAssignPrimaryTokenPrivilege"]
    assert after["rights"] == before["rights"]


def test_diff_mode_shows_direct_rights_before_and_after(tmp_path):
    result, _state, completed = run_one(
        tmp_path, simworker.example_state(), {"account": "deadline-worker", "rights": ["SeShutdownPrivilege"]}, "--diff"
    )
    assert result["diff"]["before"] == "SeAssignPrimaryTokenPrivilege\nSeServiceLogonRight\n"
    assert result["diff"]["after"] == "SeAssignPrimaryTokenPrivilege\nSeServiceLogonRight\nSeShutdownPrivilege\n"
    assert "+SeShutdownPrivilege" in completed.stdout


def test_check_and_diff_mode_together(tmp_path):
    before = simworker.example_state()
    result, after, _completed = run_one(
        tmp_path, before, {"account": "deadline-worker", "rights": ["SeServiceLogonRight"], "state": "absent"}, "--check", "--diff"
    )
    assert result["diff"]["before"] == "SeAssignPrimaryTokenPrivilege\nSeServiceLogonRight\n"
    assert result["diff"]["after"] == "SeAssignPrimaryTokenPrivilege\n"
    assert after["rights"] == before["rights"]


def test_unknown_right_fails_listing_valid_ones_without_a_call(tmp_path):
    before = simworker.example_state()
    result, after, _completed = run_one(tmp_path, before, {"account": "deadline-worker", "rights": ["SeServiceLogonRight", "SeMakeCoffeeRight"]})
    assert result["failed"] is True
    assert "SeMakeCoffeeRight" in result["msg"]
    assert "deadline-worker" in result["msg"]
    assert "SeAssignPrimaryTokenPrivilege" in result["msg"]  # the valid ones are listed
    assert after["rights"] == before["rights"]
    assert "calls" not in after


def test_deny_right_held_directly_is_warned(tmp_path):
    result, after, _completed = run_one(
        tmp_path, simworker.example_state(), {"account": "deadline-worker", "rights": ["SeDenyServiceLogonRight"]}
    )
    assert result["added"] == ["SeDenyServiceLogonRight"]
    assert AGENT in holders(after, "SeDenyServiceLogonRight")
    assert len(result["warnings"]) == 1
    assert "SeServiceLogonRight" in result["warnings"][0] and "SeDenyServiceLogonRight" in result["warnings"][0]


def test_deny_right_through_a_group_is_warned(tmp_path):
    state = simworker.example_state()
    state["rights"]["SeDenyNetworkLogonRight"] = [USERS]
    result, _state, _completed = run_one(tmp_path, state, {"account": "deadline-worker", "rights": ["SeServiceLogonRight"]})
    assert result["changed"] is False
    assert len(result["warnings"]) == 1
    assert "SeNetworkLogonRight" in result["warnings"][0]
    assert "via Users" in result["warnings"][0]


def test_account_name_forms_all_resolve_to_the_same_sid(tmp_path):
    forms = [r"WORKER-01\DEADLINE-WORKER", r"worker-01\deadline-worker", r".\Deadline-Worker", "deadline-worker", AGENT.lower()]
    tasks = [{MODULE: {"account": form, "rights": ["SeServiceLogonRight"]}} for form in forms]
    results, states, _completed = simworker.run_tasks(tmp_path, {"worker-01": simworker.example_state()}, tasks)
    assert {r["sid"] for r in results["worker-01"]} == {AGENT}
    assert all(r["changed"] is False for r in results["worker-01"])
    assert states["worker-01"]["calls_total"] == len(forms)


def test_well_known_principal_by_domain_name(tmp_path):
    result, after, _completed = run_one(tmp_path, simworker.example_state(), {"account": r"NT AUTHORITY\Local Service", "rights": ["SeShutdownPrivilege"]})
    assert result["sid"] == LOCAL_SERVICE
    assert result["account"] == r"NT AUTHORITY\LOCAL SERVICE"
    assert LOCAL_SERVICE in holders(after, "SeShutdownPrivilege")


def test_unknown_account_fails_naming_it_and_changes_nothing(tmp_path):
    before = simworker.example_state()
    result, after, _completed = run_one(tmp_path, before, {"account": r".\no-such-user", "rights": ["SeServiceLogonRight"]})
    assert result["failed"] is True
    assert "no-such-user" in result["msg"]
    assert result["error_code"] == "ACCOUNT_NOT_FOUND"
    assert after["rights"] == before["rights"]


def test_ambiguous_name_fails_naming_the_candidates(tmp_path):
    state = simworker.example_state()
    state["accounts"]["S-1-5-21-1111-2222-3333-4001"] = {"name": "render", "domain": "CORP", "type": "user"}
    state["accounts"]["S-1-5-21-4444-5555-6666-4001"] = {"name": "render", "domain": "FABRIKAM", "type": "user"}
    before = copy.deepcopy(state)
    result, after, _completed = run_one(tmp_path, state, {"account": "render", "rights": ["SeServiceLogonRight"]})
    assert result["failed"] is True
    assert result["error_code"] == "ACCOUNT_AMBIGUOUS"
    assert r"CORP\render" in result["msg"] and r"FABRIKAM\render" in result["msg"]
    assert after["rights"] == before["rights"]
    # qualified, the same name resolves
    result, after, _completed = run_one(tmp_path, state, {"account": r"corp\RENDER", "rights": ["SeServiceLogonRight"]})
    assert result["sid"] == "S-1-5-21-1111-2222-3333-4001"
    assert "S-1-5-21-1111-2222-3333-4001" in holders(after, "SeServiceLogonRight")


def test_domain_account_by_upn(tmp_path):
    state = simworker.example_state()
    state["accounts"]["S-1-5-21-1111-2222-3333-4001"] = {"name": "render", "domain": "CORP", "type": "user"}
    result, _state, _completed = run_one(tmp_path, state, {"account": "render@corp.example.com", "rights": ["SeServiceLogonRight"]})
    assert result["sid"] == "S-1-5-21-1111-2222-3333-4001"
    assert result["account"] == r"CORP\render"


def test_unreachable_domain_fails_naming_the_account(tmp_path):
    before = simworker.example_state()
    result, after, _completed = run_one(tmp_path, before, {"account": r"FARAWAY\deadline-worker", "rights": ["SeServiceLogonRight"]})
    assert result["failed"] is True
    assert result["error_code"] == "DOMAIN_UNREACHABLE"
    assert r"FARAWAY\deadline-worker" in result["msg"]
    assert after["rights"] == before["rights"]


def test_disabled_account_still_gets_its_rights(tmp_path):
    state = simworker.example_state()
    state["accounts"][AGENT]["enabled"] = False
    result, after, _completed = run_one(tmp_path, state, {"account": "deadline-worker", "rights": ["SeShutdownPrivilege"]})
    assert result["added"] == ["SeShutdownPrivilege"]
    assert AGENT in holders(after, "SeShutdownPrivilege")
    assert after["accounts"][AGENT]["enabled"] is False


def test_a_grant_that_a_domain_policy_owns_is_made_and_warned_as_not_lasting(tmp_path):
    state = simworker.domain_state(policy={"SeShutdownPrivilege": ["S-1-5-32-544", "S-1-5-32-551"]})
    state["accounts"]["S-1-5-32-544"]["members"].remove(simworker.RENDER_SVC)  # no longer covered by the policy's list
    result, after, _completed = run_one(tmp_path, state, {"account": r"CORP\render-svc", "rights": ["SeShutdownPrivilege"]})
    assert result["added"] == ["SeShutdownPrivilege"] and simworker.RENDER_SVC in holders(after, "SeShutdownPrivilege")
    (warning,) = result["warnings"]
    assert "SeShutdownPrivilege ('Shut down the system')" in warning and "a direct grant does not last" in warning
