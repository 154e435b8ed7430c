# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""deadline_cloud.cmf.win_group_member through ansible-playbook, on simulated workers."""

from __future__ import annotations

import copy

import simworker

MODULE = "deadline_cloud.cmf.win_group_member"
ADMINISTRATOR = "S-1-5-21-3623811015-3361044348-30300820-500"
ANSIBLE = "S-1-5-21-3623811015-3361044348-30300820-1000"
AGENT = "S-1-5-21-3623811015-3361044348-30300820-1001"
JOB_USERS = "S-1-5-21-3623811015-3361044348-30300820-1002"
ADMINISTRATORS = "S-1-5-32-544"
USERS = "S-1-5-32-545"
BACKUP_OPERATORS = "S-1-5-32-551"
ORPHAN = "S-1-5-21-3623811015-3361044348-30300820-1107"  # a deleted account, still a member


def run_one(tmp_path, state: dict, args: dict, *flags: str):
    return simworker.run_module(tmp_path, state, MODULE, args, *flags)


def members(state: dict, group_sid: str) -> list[str]:
    return list(state["accounts"][group_sid].get("members") or [])


def test_removes_the_agent_account_from_administrators(tmp_path):
    before = simworker.example_state()
    result, after, _completed = run_one(tmp_path, before, {"account": r".\deadline-worker", "groups": [ADMINISTRATORS], "state": "absent"})
    assert result["changed"] is True
    assert result["sid"] == AGENT
    assert result["removed"] == [{"name": "Administrators", "sid": ADMINISTRATORS}]
    assert result["added"] == []
    assert result["groups"] == [{"name": "deadline-job-users", "sid": JOB_USERS}, {"name": "Users", "sid": USERS}]
    assert members(after, ADMINISTRATORS) == [ADMINISTRATOR, ANSIBLE]
    # only that membership changed
    expected = copy.deepcopy(before["accounts"])
    expected[ADMINISTRATORS]["members"].remove(AGENT)
    assert after["accounts"] == expected
    assert after["rights"] == before["rights"]
    assert after["calls"] == {"set_group_membership": 1}
    # the rights Administrators gave are gone from the effective rights
    assert "SeShutdownPrivilege" not in result["effective_rights"]
    assert "SeIncreaseQuotaPrivilege" not in result["effective_rights"]
    assert result["effective_rights"]["SeInteractiveLogonRight"] == [{"name": "Users", "sid": USERS}]


def test_localized_administrators_converge_from_the_same_task(tmp_path):
    german, french = simworker.example_state(), simworker.example_state()
    german["hostname"], french["hostname"] = "WORKER-DE", "WORKER-FR"
    german["accounts"][ADMINISTRATORS]["name"] = "Administratoren"
    german["accounts"][USERS]["name"] = "Benutzer"
    french["accounts"][ADMINISTRATORS]["name"] = "Administrateurs"
    states = {"worker-en": simworker.example_state(), "worker-de": german, "worker-fr": french}
    tasks = [
        {MODULE: {"account": "deadline-worker", "groups": ["Administrators"], "state": "absent"}},
        {MODULE: {"account": "deadline-worker", "groups": [ADMINISTRATORS], "state": "absent"}},
    ]
    results, after, _completed = simworker.run_tasks(tmp_path, states, tasks)
    local_name = {"worker-en": "Administrators", "worker-de": "Administratoren", "worker-fr": "Administrateurs"}
    for host, (first, second) in results.items():
        assert first["changed"] is True, host
        assert first["removed"] == [{"name": local_name[host], "sid": ADMINISTRATORS}], host
        assert second["changed"] is False, host
        assert AGENT not in members(after[host], ADMINISTRATORS), host
        assert after[host]["calls"] == {"set_group_membership": 2}, host
    assert {"name": "Benutzer", "sid": USERS} in results["worker-de"][0]["groups"]


def test_localized_host_by_its_own_name_too(tmp_path):
    state = simworker.example_state()
    state["accounts"][ADMINISTRATORS]["name"] = "Administratoren"
    result, after, _completed = run_one(tmp_path, state, {"account": "deadline-worker", "groups": ["administratoren"], "state": "absent"})
    assert result["removed"] == [{"name": "Administratoren", "sid": ADMINISTRATORS}]
    assert AGENT not in members(after, ADMINISTRATORS)


def test_orphaned_sids_in_a_group_do_not_break_reading_or_removing(tmp_path):
    state = simworker.example_state()
    state["accounts"][ADMINISTRATORS]["members"].insert(0, ORPHAN)
    state["accounts"][USERS]["members"].append("S-1-12-1-1111-2222-3333-4444")  # an Azure AD member
    results, states, _completed = simworker.run_tasks(
        tmp_path,
        {"worker-01": state},
        [
            {MODULE: {"account": "deadline-worker", "groups": ["Administrators", "Users"], "state": "present"}},
            {MODULE: {"account": "deadline-worker", "groups": ["Administrators"], "state": "absent"}},
        ],
    )
    first, second = results["worker-01"]
    assert first["changed"] is False
    assert not first.get("failed")
    assert second["removed"] == [{"name": "Administrators", "sid": ADMINISTRATORS}]
    after = states["worker-01"]
    assert members(after, ADMINISTRATORS) == [ORPHAN, ADMINISTRATOR, ANSIBLE]  # the orphan stays where it was
    assert "S-1-12-1-1111-2222-3333-4444" in members(after, USERS)


def test_refuses_to_remove_the_connecting_account_from_administrators(tmp_path):
    before = simworker.example_state()
    result, after, _completed = run_one(tmp_path, before, {"account": "ansible", "groups": ["Administrators"], "state": "absent"})
    assert result["failed"] is True
    assert result["error_code"] == "REMOVAL_REFUSED"
    assert "WORKER-01\\ansible" in result["msg"]
    assert "connected as" in result["msg"]
    assert "nothing was changed" in result["msg"]
    assert members(after, ADMINISTRATORS) == members(before, ADMINISTRATORS)


def test_refuses_the_connecting_account_in_check_mode_too(tmp_path):
    before = simworker.example_state()
    result, after, _completed = run_one(tmp_path, before, {"account": ANSIBLE, "groups": [ADMINISTRATORS], "state": "absent"}, "--check")
    assert result["failed"] is True
    assert "connected as" in result["msg"]
    assert after["calls"] == {"read_account": 1}


def test_refuses_to_remove_the_builtin_administrator(tmp_path):
    before = simworker.example_state()
    result, after, _completed = run_one(tmp_path, before, {"account": "Administrator", "groups": ["Administrators"], "state": "absent"})
    assert result["failed"] is True
    assert "RID 500" in result["msg"]
    assert "Administrator" in result["msg"]
    assert members(after, ADMINISTRATORS) == members(before, ADMINISTRATORS)


def test_refuses_to_leave_administrators_with_no_enabled_member(tmp_path):
    state = simworker.example_state()
    # the built-in Administrator is disabled, the other member is an orphaned SID, and Ansible
    # connects as an account that is not in the group (a domain admin, say)
    state["accounts"][ADMINISTRATOR]["enabled"] = False
    state["accounts"][ADMINISTRATORS]["members"] = [ADMINISTRATOR, ORPHAN, AGENT]
    state["connection_account"] = "S-1-5-21-1111-2222-3333-4001"
    state["accounts"]["S-1-5-21-1111-2222-3333-4001"] = {"name": "ops", "domain": "CORP", "type": "user"}
    result, after, _completed = run_one(tmp_path, state, {"account": "deadline-worker", "groups": ["Administrators"], "state": "absent"})
    assert result["failed"] is True
    assert "no enabled member" in result["msg"]
    assert "deadline-worker" in result["msg"]
    assert members(after, ADMINISTRATORS) == [ADMINISTRATOR, ORPHAN, AGENT]


def test_an_enabled_member_left_makes_the_removal_safe(tmp_path):
    state = simworker.example_state()
    state["accounts"][ADMINISTRATOR]["enabled"] = False
    state["accounts"][ADMINISTRATORS]["members"] = [ADMINISTRATOR, ORPHAN, AGENT, "S-1-5-21-1111-2222-3333-512"]
    state["accounts"]["S-1-5-21-1111-2222-3333-512"] = {"name": "Domain Admins", "domain": "CORP", "type": "group"}
    state["connection_account"] = "S-1-5-21-1111-2222-3333-4001"
    result, after, _completed = run_one(tmp_path, state, {"account": "deadline-worker", "groups": ["Administrators"], "state": "absent"})
    assert result["changed"] is True
    assert AGENT not in members(after, ADMINISTRATORS)


def test_absent_for_a_group_the_account_is_not_in_is_no_change(tmp_path):
    before = simworker.example_state()
    result, after, _completed = run_one(tmp_path, before, {"account": "deadline-worker", "groups": ["Backup Operators"], "state": "absent"})
    assert result["changed"] is False
    assert result["removed"] == []
    assert after["accounts"] == before["accounts"]
    assert after["calls"] == {"set_group_membership": 1}


def test_present_adds_once_then_is_idempotent(tmp_path):
    task = {MODULE: {"account": r"WORKER-01\Deadline-Worker", "groups": ["backup operators", "Users"]}}
    results, states, _completed = simworker.run_tasks(tmp_path, {"worker-01": simworker.example_state()}, [task, task])
    first, second = results["worker-01"]
    assert first["changed"] is True
    assert first["added"] == [{"name": "Backup Operators", "sid": BACKUP_OPERATORS}]
    assert {"name": "Backup Operators", "sid": BACKUP_OPERATORS} in first["groups"]
    assert first["effective_rights"]["SeBackupPrivilege"] == [
        {"name": "Administrators", "sid": ADMINISTRATORS},
        {"name": "Backup Operators", "sid": BACKUP_OPERATORS},
    ]
    assert second["changed"] is False and second["added"] == []
    assert members(states["worker-01"], BACKUP_OPERATORS) == [AGENT]
    assert states["worker-01"]["calls_total"] == 2


def test_missing_group_fails_naming_it_and_changes_nothing(tmp_path):
    before = simworker.example_state()
    result, after, _completed = run_one(tmp_path, before, {"account": "deadline-worker", "groups": ["Backup Operators", "Render Wranglers"]})
    assert result["failed"] is True
    assert result["error_code"] == "GROUP_NOT_FOUND"
    assert "Render Wranglers" in result["msg"]
    assert after["accounts"] == before["accounts"]  # Backup Operators was not joined either


def test_a_domain_group_is_not_a_local_group(tmp_path):
    result, _state, _completed = run_one(tmp_path, simworker.example_state(), {"account": "deadline-worker", "groups": [r"CORP\Administrators"]})
    assert result["failed"] is True
    assert result["error_code"] == "GROUP_NOT_FOUND"


def test_check_mode_reports_the_removal_and_changes_nothing(tmp_path):
    before = simworker.example_state()
    args = {"account": "deadline-worker", "groups": ["Administrators", "Backup Operators"], "state": "absent"}
    result, after, _completed = run_one(tmp_path, before, args, "--check")
    assert result["changed"] is True
    assert result["removed"] == [{"name": "Administrators", "sid": ADMINISTRATORS}]
    assert {"name": "Administrators", "sid": ADMINISTRATORS} not in result["groups"]
    assert "SeShutdownPrivilege" not in result["effective_rights"]
    assert after["accounts"] == before["accounts"]
    assert after["calls"] == {"read_account": 1}


def test_check_mode_add_reports_only_rights_it_has_read(tmp_path):
    # Host contract v2: read_account reads the rights of the account's own groups only, so check
    # mode cannot know what a group it would join brings; the run after the change reports it.
    before = simworker.example_state()
    result, after, _completed = run_one(tmp_path, before, {"account": "deadline-worker", "groups": [BACKUP_OPERATORS]}, "--check")
    assert result["added"] == [{"name": "Backup Operators", "sid": BACKUP_OPERATORS}]
    assert {"name": "Backup Operators", "sid": BACKUP_OPERATORS} not in result["effective_rights"]["SeShutdownPrivilege"]
    assert after["accounts"] == before["accounts"]
    applied, _after, _completed = run_one(tmp_path, before, {"account": "deadline-worker", "groups": [BACKUP_OPERATORS]})
    assert {"name": "Backup Operators", "sid": BACKUP_OPERATORS} in applied["effective_rights"]["SeShutdownPrivilege"]


def test_check_mode_missing_group_fails(tmp_path):
    result, _state, _completed = run_one(tmp_path, simworker.example_state(), {"account": "deadline-worker", "groups": ["nope"]}, "--check")
    assert result["failed"] is True
    assert "nope" in result["msg"]


def test_diff_mode_shows_groups_before_and_after(tmp_path):
    args = {"account": "deadline-worker", "groups": [ADMINISTRATORS], "state": "absent"}
    result, _state, completed = run_one(tmp_path, simworker.example_state(), args, "--diff")
    assert result["diff"]["before"].splitlines() == [
        "Administrators (S-1-5-32-544)",
        f"deadline-job-users ({JOB_USERS})",
        "Users (S-1-5-32-545)",
    ]
    assert result["diff"]["after"].splitlines() == [f"deadline-job-users ({JOB_USERS})", "Users (S-1-5-32-545)"]
    assert "-Administrators (S-1-5-32-544)" in completed.stdout


def test_unknown_account_fails_naming_it(tmp_path):
    before = simworker.example_state()
    result, after, _completed = run_one(tmp_path, before, {"account": "ghost@corp.example.com", "groups": ["Users"]})
    assert result["failed"] is True
    assert "ghost@corp.example.com" in result["msg"]
    assert after["accounts"] == before["accounts"]


def test_disabled_account_can_still_be_moved(tmp_path):
    state = simworker.example_state()
    state["accounts"][AGENT]["enabled"] = False
    result, after, _completed = run_one(tmp_path, state, {"account": "deadline-worker", "groups": ["Administrators"], "state": "absent"})
    assert result["changed"] is True
    assert AGENT not in members(after, ADMINISTRATORS)


def test_a_change_that_fails_half_way_is_reported_as_a_change(tmp_path):
    # Backup Operators is changed first and stays changed when Users refuses: the task fails, and says
    # it changed the host, and how.
    state = simworker.example_state()
    state["accounts"][USERS]["members"] = []
    state["faults"] = {"group_change_fails": [USERS]}
    result, after, _completed = run_one(tmp_path, state, {"account": r".\deadline-worker", "groups": [BACKUP_OPERATORS, USERS], "state": "present"})
    assert result["failed"] is True and result["changed"] is True
    assert result["error_code"] == "GROUP_CHANGE_FAILED"
    assert result["added"] == [{"name": "Backup Operators", "sid": BACKUP_OPERATORS}]
    assert "already added to Backup Operators" in result["msg"]
    assert AGENT in members(after, BACKUP_OPERATORS) and AGENT not in members(after, USERS)
