# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""plugin_utils/_selftest.py: the comparisons, and the sequence on a simulated worker whose answers are
tampered with, one operation at a time, as a host that breaks the contract would answer."""

from __future__ import annotations

import base64
import copy

import pytest
import simworker

from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils import _selftest as selftest
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host.operations import OPERATIONS
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host.simulated.state import run_operation
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._selftest import (
    Options,
    file_differences,
    rights_differences,
    run_selftest,
    shape_differences,
)

USER_SID = "S-1-5-21-3623811015-3361044348-30300820-1003"
USERS = "S-1-5-32-545"
CORP = "S-1-5-21-1004336348-1177238915-682003330"
# The sandbox user on a worker joined to CORP, as read_account.ps1 reports it: Users through Authenticated
# Users (a default Windows), the three groups every service logon carries, and the rights a GPO defines.
WELL_KNOWN_TOKEN = [
    {"sid": "S-1-1-0", "name": "Everyone", "scope": "well_known"},
    {"sid": "S-1-5-11", "name": r"NT AUTHORITY\Authenticated Users", "scope": "well_known"},
    {"sid": "S-1-5-6", "name": r"NT AUTHORITY\SERVICE", "scope": "well_known"},
]
GROUP_POLICY = {
    "known": True, "domain_member": True, "error": None,
    "rights": {"SeServiceLogonRight": [{"sid": "S-1-5-80-0", "name": r"NT SERVICE\ALL SERVICES"},
                                       {"sid": f"{CORP}-1130", "name": r"CORP\Render Services"}]},
}
READ_ACCOUNT = {
    "hostname": "WORKER-01", "sid": USER_SID, "name": r"WORKER-01\cmf-selftest", "domain": "WORKER-01", "type": "user",
    "enabled": False, "groups": [{"name": "Users", "sid": USERS, "indirect": True}], "rights": [],
    "group_rights": {USERS: ["SeInteractiveLogonRight", "SeNetworkLogonRight"], "S-1-1-0": [], "S-1-5-11": [], "S-1-5-6": []},
    "local_groups": [{"name": "Users", "sid": USERS}, {"name": "Administrators", "sid": "S-1-5-32-544"}],
    "group_members": {USERS: [
        {"sid": "S-1-5-4", "name": r"NT AUTHORITY\INTERACTIVE", "type": "well_known", "enabled": True, "orphaned": False},
        {"sid": "S-1-5-11", "name": r"NT AUTHORITY\Authenticated Users", "type": "well_known", "enabled": True, "orphaned": False},
    ]},
    "token_groups": [*WELL_KNOWN_TOKEN, {"sid": USERS, "name": "Users", "scope": "local"}],
    "token_groups_known": True, "token_groups_error": None,
    "group_policy": GROUP_POLICY,
    "connection_sid": "S-1-5-21-3623811015-3361044348-30300820-1000",
}


def test_a_contract_shaped_account_report_has_no_difference():
    assert shape_differences("read_account", READ_ACCOUNT) == []


def test_rights_as_an_empty_list_is_right_and_null_is_a_difference():
    assert rights_differences(READ_ACCOUNT, "SeBatchLogonRight", held=False) == []
    broken = {**READ_ACCOUNT, "rights": None}  # what PowerShell makes of an unwrapped empty list
    assert shape_differences("read_account", broken) == ["rights is null, not list"]
    assert rights_differences(broken, "SeBatchLogonRight", held=False) == ["rights is NoneType, not a list"]


def test_missing_and_mistyped_fields_are_named_with_their_place():
    broken = copy.deepcopy(READ_ACCOUNT)
    del broken["connection_sid"]
    broken["enabled"] = "True"  # a string where the contract has a bool
    broken["local_groups"][0]["sid"] = 545
    assert sorted(shape_differences("read_account", broken)) == [
        "connection_sid is missing",
        "enabled is str, not bool",
        "local_groups[0].sid is int, not str",
    ]


def test_a_bool_is_not_an_int_and_a_missing_parent_is_named_once():
    assert shape_differences("control_service", {
        "changed": False, "state": "running", "restarted": False, "healthy": True, "pid": True, "previous_pid": None,
        "error": None, "log_tail": [],
    }) == ["pid is bool, not int or null"]
    assert shape_differences("sandbox", {"group": {"name": "xg", "sid": None}, "folder": "C:\\Windows\\Temp\\x"}) == ["user is missing"]
    assert shape_differences("read_file", ["exists"]) == ["the answer is list, not an object"]


def test_v2_fields_are_typed_when_present_and_required_only_on_request():
    answer = {"sha256": "ab" * 32, "backup_file": None}
    assert shape_differences("write_file", answer) == []
    assert shape_differences("write_file", answer, require_v2=True) == ["warnings is missing"]
    assert shape_differences("write_file", {**answer, "warnings": "left ~cmf1.tmp"}) == ["warnings is str, not list"]
    assert shape_differences("write_file", {**answer, "warnings": []}, require_v2=True) == []


def test_the_simulated_worker_gives_every_field_of_contract_v2(tmp_path):
    result, _host, _unchanged = _run(tmp_path, require_v2=True)
    assert result.ok, [line for line in result.lines if not line.endswith(": ok")]


def test_the_canary_checks_the_process_token_fields_of_the_reading():
    service = {"name": "DeadlineWorker", "exists": True, "account_sid": None, "service_specific_exit_code": 0}
    answer = {"agent": {}, "service": service, "machine_environment": {}, "account": None, "account_error": None,
              "config": {"path": "x", "exists": False, "content": "", "modified_at": None}}
    assert "service.token_administrators is missing" in shape_differences("read_agent_info", answer, require_v2=True)
    wrong = {**answer, "service": {**service, "token_administrators": "yes", "token_error": None}}
    assert "service.token_administrators is str, not bool or null" in shape_differences("read_agent_info", wrong)


def test_every_operation_has_a_shape_and_v2_names_only_known_operations():
    assert set(selftest.SHAPES) == set(OPERATIONS)
    assert set(selftest.V2_SHAPES) <= set(OPERATIONS)


def test_file_differences_compare_bytes_and_hash():
    data = selftest.TEST_BYTES
    good = {"exists": True, "content": base64.b64encode(data).decode(), "sha256": selftest.sha256_hex(data)}
    assert file_differences(good, data) == []
    upper = {**good, "sha256": good["sha256"].upper()}
    assert file_differences(upper, data) == [f"sha256 is {upper['sha256']!r}, not {good['sha256']} (lower-case hex of the bytes)"]
    # what a host that re-encodes text (BOM, lost CRLF) would give back
    reencoded = "\ufeff".encode() + data.replace(b"\r\n", b"\n")
    assert file_differences({**good, "content": base64.b64encode(reencoded).decode()}, data)[0].startswith("content reads back as")
    assert file_differences({"exists": False, "content": "", "sha256": ""}, None) == []
    assert file_differences({"exists": False, "content": "", "sha256": None}, None) == ["sha256 is None, not '' for a file that does not exist"]


class TamperedHost:
    """The simulated worker, with one operation's answers passed through ``tamper``."""

    def __init__(self, state_path, operation: str | None = None, tamper=None) -> None:
        self.state_path, self.operation, self.tamper, self.calls = str(state_path), operation, tamper, []

    def call(self, operation: str, /, **parameters) -> dict:
        self.calls.append(operation)
        answer = run_operation(self.state_path, operation, parameters)
        return self.tamper(answer, parameters) if operation == self.operation else answer


def _run(tmp_path, operation=None, tamper=None, state=None, **options):
    state = state or simworker.example_state()
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = simworker.save_state(tmp_path / "worker-01.yml", state)
    host = TamperedHost(path, operation, tamper)
    result = run_selftest(host, Options(service="DeadlineWorker", config_path=simworker.WORKER_TOML, **options))
    after = simworker.load_state(path)
    for key in ("calls", "calls_total"):
        after.pop(key, None)
    return result, host, after == state


def test_the_untampered_simulated_worker_passes_every_step(tmp_path):
    result, host, unchanged = _run(tmp_path)
    assert result.ok and unchanged
    assert set(host.calls) == set(OPERATIONS)
    assert host.calls[0] == "sandbox" and host.calls[-3:-1] == ["sandbox", "sandbox"]


def _drop_sha256(answer, parameters):
    return {k: v for k, v in answer.items() if k != "sha256"}


def _rights_as_null(answer, parameters):
    return {**answer, "rights": answer["rights"] or None}


def _reencode(answer, parameters):
    if not answer["exists"]:
        return answer
    data = base64.b64decode(answer["content"]).replace(b"\r\n", b"\n")
    return {**answer, "content": base64.b64encode(data).decode()}


def _grant_ignored(answer, parameters):
    return {**answer, "added": []} if parameters["state"] == "present" else answer


def _restarted(answer, parameters):
    return {**answer, "changed": True, "restarted": True, "pid": 9999}


def _drop_token_groups_known(answer, parameters):
    return {k: v for k, v in answer.items() if k != "token_groups_known"}


def _without_well_known(answer, parameters):
    return {**answer, "token_groups": [g for g in answer["token_groups"] if g["scope"] != "well_known"]}


def _sandbox_group_as_domain(answer, parameters):
    return {**answer, "token_groups": [{**g, "scope": "domain"} if g["scope"] == "local" else g for g in answer["token_groups"]]}


def _policy_holder_as_name(answer, parameters):
    return {**answer, "group_policy": {"known": True, "domain_member": True, "error": None,
                                       "rights": {"SeServiceLogonRight": [{"sid": "NT SERVICE\\ALL SERVICES", "name": "ALL SERVICES"}]}}}


def _agent_account(change):
    def tamper(answer, parameters):
        if parameters["account"] or not isinstance(answer.get("account"), dict):
            return answer
        return {**answer, "account": change(copy.deepcopy(answer["account"]))}
    return tamper


@pytest.mark.parametrize(
    ("operation", "tamper", "step", "difference"),
    [
        ("read_file", _drop_sha256, "read_file absent", "sha256 is missing"),
        ("read_account", _rights_as_null, "read_account sandbox user", "rights is null, not list"),
        ("read_file", _reencode, "read_file back", "content reads back as"),
        ("set_user_rights", _grant_ignored, "set_user_rights present", "added is [], not ['SeBatchLogonRight', 'SeIncreaseQuotaPrivilege']"),
        ("control_service", _restarted, "control_service started", "changed is True, not False"),
        # what the domain-farm work adds to a reading, checked at no call of its own
        ("read_account", _drop_token_groups_known, "read_account token groups", "token_groups_known is missing"),
        ("read_account", _without_well_known, "read_account token groups", "token_groups lacks Everyone (S-1-1-0)"),
        ("read_account", _sandbox_group_as_domain, "read_account token groups present", "not 'local' for a local group"),
        ("read_account", _policy_holder_as_name, "read_account group policy", "sid is 'NT SERVICE\\\\ALL SERVICES', not a SID"),
        ("read_agent_info", _agent_account(lambda a: {**a, "token_groups_known": False}), "read_agent_info service account token groups",
         "token_groups_known is false and token_groups_error is None"),
        ("read_agent_info", _agent_account(lambda a: {**a, "group_policy": {**a["group_policy"], "rights": {"SeBatchLogonRight": []}}}),
         "read_agent_info group policy", "group_policy differs from read_account's"),
    ],
)
def test_a_wrong_answer_is_reported_as_a_difference_and_the_sandbox_is_removed(tmp_path, operation, tamper, step, difference):
    result, host, unchanged = _run(tmp_path, operation, tamper)
    assert not result.ok
    assert step in result.failed_steps
    line = next(line for line in result.lines if line.startswith(f"{step}: "))
    assert difference in line
    assert unchanged and host.calls.count("sandbox") == 3
    # Measured on the installer's state: 27 remote calls, before the domain-farm checks and after them.
    assert len(host.calls) == 27


def test_a_refused_sandbox_stops_the_sequence_but_still_cleans_up(tmp_path):
    def refuse(answer, parameters):
        if parameters["state"] == "present":
            raise selftest.HostOperationError("HOST_ERROR", "sandbox failed on the host: Access is denied")
        return answer

    result, host, unchanged = _run(tmp_path, "sandbox", refuse)
    assert result.lines[0] == "sandbox present: refused with HOST_ERROR: sandbox failed on the host: Access is denied"
    # the host made the sandbox before its answer went wrong: the cleanup finds and removes it
    assert [s.name for s in result.steps] == ["sandbox present", "sandbox absent", "sandbox absent again", "read_account removed user"]
    assert result.failed_steps == ["sandbox present"]
    assert unchanged and host.calls == ["sandbox", "sandbox", "sandbox", "read_account"]


def test_a_stale_hash_that_is_accepted_is_a_difference(tmp_path):
    class AcceptsStale(TamperedHost):
        def call(self, operation, /, **parameters):
            if operation == "write_file" and parameters["expected_sha256"] == selftest.sha256_hex(selftest.OTHER_BYTES):
                self.calls.append(operation)
                return {"sha256": parameters["expected_sha256"], "backup_file": None}
            return super().call(operation, **parameters)

    path = simworker.save_state(tmp_path / "worker-01.yml", simworker.example_state())
    result = run_selftest(AcceptsStale(path), Options(service="DeadlineWorker", config_path=simworker.WORKER_TOML))
    assert "write_file stale hash: succeeded where the contract says FILE_CHANGED" in result.lines


class LeavesAnAsideFile(TamperedHost):
    """A host whose replace without a backup leaves the swapped-out original beside the file."""

    def call(self, operation, /, **parameters):
        answer = super().call(operation, **parameters)
        if operation == "write_file" and parameters["expected_sha256"] and not parameters["backup"]:
            state = simworker.load_state(self.state_path)
            folder = parameters["path"].rpartition("\\")[0]
            state["files"][folder + r"\~cmf1a2b3c.old"] = {"text": "left behind"}
            simworker.save_state(self.state_path, state)
        return answer


def test_a_replace_that_leaves_a_file_behind_is_a_difference(tmp_path):
    path = simworker.save_state(tmp_path / "worker-01.yml", simworker.example_state())
    result = run_selftest(LeavesAnAsideFile(path), Options(service="DeadlineWorker", config_path=simworker.WORKER_TOML))
    assert result.failed_steps == ["sandbox absent"]
    assert "the sandbox folder held ['~cmf1a2b3c.old'], left behind" in next(line for line in result.lines if line.startswith("sandbox absent:"))


def _no_backup(answer, parameters):
    return {**answer, "backup_file": None} if parameters["backup"] else answer


class GrantsUnknownRights(TamperedHost):
    def call(self, operation, /, **parameters):
        if operation == "set_user_rights" and selftest.UNKNOWN_RIGHT_NAME in parameters["rights"]:
            self.calls.append(operation)
            return {"added": parameters["rights"], "removed": [], "before": [], "report": {}}
        return super().call(operation, **parameters)


def test_a_backup_that_is_not_made_and_an_unknown_right_that_is_granted_are_differences(tmp_path):
    result, _host, unchanged = _run(tmp_path, "write_file", _no_backup)
    assert "write_file replace with backup" in result.failed_steps and unchanged
    path = simworker.save_state(tmp_path / "unknown.yml", simworker.example_state())
    result = run_selftest(GrantsUnknownRights(path), Options(service="DeadlineWorker", config_path=simworker.WORKER_TOML))
    assert "set_user_rights unknown right: succeeded where the contract says UNKNOWN_RIGHT" in result.lines


def test_the_canary_takes_every_path_of_a_converge(tmp_path):
    result, _host, _unchanged = _run(tmp_path)
    names = [step.name for step in result.steps]
    for step in (
        "write_file replace",  # worker.toml replaced without a backup
        "write_file replace with backup",  # and with one
        "read_file backup",
        "set_user_rights unknown right",
        "read_agent_info",
        "read_agent_info sandbox account",  # the reading of a named account
        "set_group_membership absent",
    ):
        assert step in names, step


# --- What the domain-farm work adds to a reading: token groups, the group closure, group policy ---------------

RENDER_SVC, DOMAIN_USERS, RENDER_SERVICES, DOMAIN_ADMINS = f"{CORP}-1105", f"{CORP}-513", f"{CORP}-1130", f"{CORP}-512"
ADMINISTRATORS = "S-1-5-32-544"
# The agent's own account on that worker: CORP\render-svc, in Administrators directly (as the installer
# adds it) and in Users through Domain Users, with the domain groups its S4U logon carries.
DOMAIN_ACCOUNT = {
    **READ_ACCOUNT, "sid": RENDER_SVC, "name": r"CORP\render-svc", "domain": "CORP", "enabled": True,
    "groups": [{"name": "Administrators", "sid": ADMINISTRATORS, "indirect": False}, {"name": "Users", "sid": USERS, "indirect": True}],
    "rights": ["SeAssignPrimaryTokenPrivilege"],
    "group_rights": {ADMINISTRATORS: ["SeShutdownPrivilege"], USERS: ["SeNetworkLogonRight"], DOMAIN_USERS: [],
                     RENDER_SERVICES: ["SeServiceLogonRight"], "S-1-1-0": [], "S-1-5-11": [], "S-1-5-6": []},
    "group_members": {
        ADMINISTRATORS: [{"sid": RENDER_SVC, "name": r"CORP\render-svc", "type": "user", "enabled": True, "orphaned": False},
                         {"sid": DOMAIN_ADMINS, "name": r"CORP\Domain Admins", "type": "group", "enabled": True, "orphaned": False}],
        USERS: [{"sid": "S-1-5-11", "name": r"NT AUTHORITY\Authenticated Users", "type": "well_known", "enabled": True, "orphaned": False},
                {"sid": DOMAIN_USERS, "name": r"CORP\Domain Users", "type": "group", "enabled": True, "orphaned": False}],
    },
    "token_groups": [*WELL_KNOWN_TOKEN, {"sid": ADMINISTRATORS, "name": "Administrators", "scope": "local"},
                     {"sid": USERS, "name": "Users", "scope": "local"}, {"sid": DOMAIN_USERS, "name": r"CORP\Domain Users", "scope": "domain"},
                     {"sid": RENDER_SERVICES, "name": r"CORP\Render Services", "scope": "domain"}],
}
UNREACHABLE = {"code": "DOMAIN_UNREACHABLE", "message": "no domain controller of CORP answers WORKER-01 (DsGetDcName: Win32 1355)"}


def _changed(report: dict, change) -> dict:
    broken = copy.deepcopy(report)
    change(broken)
    return broken


def _token(report: dict, sid: str) -> dict:
    return next(g for g in report["token_groups"] if g["sid"] == sid)


def test_the_domain_farm_reading_of_a_local_and_a_domain_account_has_no_difference():
    for report in (READ_ACCOUNT, DOMAIN_ACCOUNT):
        assert shape_differences("read_account", report) == []
        assert selftest.closure_differences(report) == []
        assert selftest.policy_differences(report) == []
        assert selftest.closure_unknown(report) is None and selftest.policy_unknown(report) is None


@pytest.mark.parametrize(
    ("report", "change", "difference"),
    [
        (READ_ACCOUNT, lambda r: r.pop("token_groups"), "token_groups is missing"),
        (READ_ACCOUNT, lambda r: r.pop("token_groups_known"), "token_groups_known is missing"),
        (READ_ACCOUNT, lambda r: r.update(token_groups_error={"code": "DOMAIN_UNREACHABLE"}), "token_groups_error.message is missing"),
        (READ_ACCOUNT, lambda r: _token(r, USERS).update(scope="builtin"), f"token_groups gives {USERS} the scope 'builtin'"),
        (READ_ACCOUNT, lambda r: r["token_groups"].pop(1), r"token_groups lacks NT AUTHORITY\Authenticated Users (S-1-5-11), which every"),
        (READ_ACCOUNT, lambda r: _token(r, "S-1-1-0").update(scope="local"), "token_groups gives Everyone (S-1-1-0) the scope 'local'"),
        (READ_ACCOUNT, lambda r: _token(r, "S-1-1-0").update(sid="Everyone"), "token_groups holds 'Everyone', not a SID"),
        (READ_ACCOUNT, lambda r: r["token_groups"].append({"sid": USERS, "name": "Users", "scope": "local"}), f"token_groups holds {USERS} twice"),
        (READ_ACCOUNT, lambda r: r["token_groups"].append({"sid": USER_SID, "name": "me", "scope": "local"}), "the account's own SID"),
        # a local account's closure needs no domain controller, and no domain group holds it
        (READ_ACCOUNT, lambda r: r.update(token_groups_known=False, token_groups_error=UNREACHABLE),
         "token_groups_known is false for WORKER-01\\cmf-selftest"),
        (READ_ACCOUNT, lambda r: r["token_groups"].append({"sid": DOMAIN_USERS, "name": r"CORP\Domain Users", "scope": "domain"}),
         "an account of the host's own, the domain groups"),
        (DOMAIN_ACCOUNT, lambda r: r.update(token_groups_known=False), "token_groups_known is false and token_groups_error is None"),
        (DOMAIN_ACCOUNT, lambda r: r.update(token_groups_known=False, token_groups_error={"code": "E_FAIL", "message": "x"}),
         "not a code of DOMAIN_UNREACHABLE, TOKEN_GROUPS_FAILED"),
        (DOMAIN_ACCOUNT, lambda r: r.update(token_groups_error=UNREACHABLE), "while token_groups_known is true"),
        # the account's local groups are its local token groups, each holding it or a group of its token
        (READ_ACCOUNT, lambda r: r["groups"].clear(), f"the local token groups are ['{USERS}'] and groups are []"),
        (READ_ACCOUNT, lambda r: r["local_groups"].pop(0), f"token_groups gives ['{USERS}'] the scope 'local', but local_groups"),
        (READ_ACCOUNT, lambda r: r["group_rights"].pop("S-1-5-6"), "group_rights is read for"),
        (READ_ACCOUNT, lambda r: r["group_rights"].update({USERS: None}), f"group_rights[{USERS}] is NoneType, not list"),
        (READ_ACCOUNT, lambda r: r["group_members"][USERS].pop(1), f"Users ({USERS}) is among groups, but its members hold neither"),
        (READ_ACCOUNT, lambda r: r["group_members"].clear(), f"group_members lacks Users ({USERS})"),
        (READ_ACCOUNT, lambda r: r["groups"][0].update(indirect=False), f"groups gives Users ({USERS}) indirect False"),
        (DOMAIN_ACCOUNT, lambda r: r["groups"][0].update(indirect=True), f"groups gives Administrators ({ADMINISTRATORS}) indirect True"),
    ],
)
def test_a_wrong_closure_is_named(report, change, difference):
    broken = _changed(report, change)
    found = selftest.field_shape_differences(broken, selftest.CLOSURE_FIELDS) + selftest.closure_differences(broken)
    assert any(difference in line for line in found), found


def test_a_local_group_that_another_reading_shows_holding_a_token_group_must_be_in_the_token():
    # The reading of a user that Users does not list (its members are not in it), beside one that shows
    # Users holding Authenticated Users: Users is then a group of every account's token.
    without_users = _changed(READ_ACCOUNT, lambda r: (r["groups"].clear(), r["token_groups"].pop(), r["group_rights"].pop(USERS),
                                                      r["group_members"].clear()))
    assert selftest.closure_differences(without_users) == []
    known = selftest.members_of(DOMAIN_ACCOUNT)
    assert known[USERS] == {"S-1-5-11", DOMAIN_USERS}
    assert selftest.closure_differences(without_users, known) == [
        f"{USERS} holds ['S-1-5-11'] (as another reading lists its members), but is not among token_groups"
    ]
    # a Users that holds neither the account nor a group of its token (a hardened host) asks nothing
    assert selftest.closure_differences(without_users, {USERS: {DOMAIN_USERS}}) == []


@pytest.mark.parametrize("error", [UNREACHABLE, {"code": "TOKEN_GROUPS_FAILED", "message": "the S4U logon of render-svc@corp.example.com failed"}])
def test_a_domain_closure_the_host_names_as_unknown_is_unknown_not_a_difference(error):
    unread = _changed(DOMAIN_ACCOUNT, lambda r: (r.update(token_groups_known=False, token_groups_error=error),
                                                 r["token_groups"].pop(), r["token_groups"].pop(), r["group_rights"].pop(DOMAIN_USERS),
                                                 r["group_rights"].pop(RENDER_SERVICES)))
    assert selftest.closure_differences(unread) == []
    assert selftest.closure_unknown(unread) == (
        rf"the domain groups of CORP\render-svc ({RENDER_SVC}) were not read, {error['code']}: {error['message']}"
    )


@pytest.mark.parametrize(
    ("change", "difference"),
    [
        (lambda p: p.pop("domain_member"), "group_policy.domain_member is missing"),
        (lambda p: p.update(known="true"), "group_policy.known is str, not bool"),
        (lambda p: p["rights"].update(SeMadeUpRight=[]), "group_policy.rights names 'SeMadeUpRight', which is no user right"),
        (lambda p: p["rights"]["SeServiceLogonRight"][1].update(sid=r"CORP\Render Services"),
         r"group_policy.rights.SeServiceLogonRight[1].sid is 'CORP\\Render Services', not a SID"),
        (lambda p: p["rights"]["SeServiceLogonRight"][1].update(sid=None, name=""), "[1].name is '', not the holder's name"),
        (lambda p: p["rights"].update(SeShutdownPrivilege=f"*{ADMINISTRATORS}"), "group_policy.rights.SeShutdownPrivilege is str, not list"),
        (lambda p: p.update(known=False, error=None, rights={}), "group_policy.known is false and group_policy.error does not say why"),
        (lambda p: p.update(error="Access denied"), "group_policy.error is 'Access denied' while group_policy.known is true"),
        (lambda p: p.update(domain_member=False), "group_policy.rights holds ['SeServiceLogonRight'] on a host outside a domain"),
        (lambda p: p.update(domain_member=False, known=False, error="x", rights={}), "on a host that is no domain member"),
    ],
)
def test_a_wrong_group_policy_is_named(change, difference):
    broken = _changed(READ_ACCOUNT, lambda r: change(r["group_policy"]))
    found = selftest.field_shape_differences(broken, selftest.POLICY_FIELDS) + selftest.policy_differences(broken)
    assert any(difference in line for line in found), found


def test_a_holder_the_host_cannot_resolve_keeps_its_name_and_an_unreadable_policy_is_unknown():
    unresolved = _changed(READ_ACCOUNT, lambda r: r["group_policy"]["rights"]["SeServiceLogonRight"].append({"sid": None, "name": r"OLDCORP\svc"}))
    assert selftest.policy_differences(unresolved) == []
    unreadable = _changed(READ_ACCOUNT, lambda r: r["group_policy"].update(
        known=False, rights={}, error=r"reading root\rsop\computer failed: Access denied"))
    assert selftest.policy_differences(unreadable) == []
    assert selftest.policy_unknown(unreadable) == (
        r"the rights a domain Group Policy defines here were not read: reading root\rsop\computer failed: Access denied"
    )
    workgroup = _changed(READ_ACCOUNT, lambda r: r.update(group_policy={"known": True, "domain_member": False, "rights": {}, "error": None}))
    assert selftest.policy_differences(workgroup) == [] and selftest.policy_unknown(workgroup) is None


def test_the_reading_of_a_named_account_must_agree_with_read_accounts():
    assert selftest.reading_checks(READ_ACCOUNT, USER_SID, READ_ACCOUNT) == []
    other_groups = _changed(READ_ACCOUNT, lambda r: (r["token_groups"].pop(), r["groups"].clear(), r["group_rights"].pop(USERS)))
    assert any(line.startswith("account.token_groups are") for line in selftest.reading_checks(other_groups, USER_SID, READ_ACCOUNT))
    other_policy = _changed(READ_ACCOUNT, lambda r: r["group_policy"]["rights"].pop("SeServiceLogonRight"))
    assert "account.group_policy differs from read_account's, though both read the one policy result of the host" in (
        selftest.reading_checks(other_policy, USER_SID, READ_ACCOUNT))


def test_an_unknown_step_is_ok_and_says_why():
    step = selftest.Step("read_agent_info service account token groups", "read_agent_info", unknown="DOMAIN_UNREACHABLE: no DC")
    assert step.ok and step.line == "read_agent_info service account token groups: unknown (DOMAIN_UNREACHABLE: no DC)"
    assert step.as_dict()["unknown"] == "DOMAIN_UNREACHABLE: no DC"
    step.differences.append("token_groups is missing")
    assert not step.ok and step.line.endswith(": token_groups is missing")


def test_the_domain_farm_checks_add_steps_and_no_call(tmp_path):
    result, host, _unchanged = _run(tmp_path)
    names = [step.name for step in result.steps]
    for step in ("read_account token groups", "read_account group policy", "read_account token groups present",
                 "read_account token groups absent", "read_agent_info service account token groups", "read_agent_info group policy"):
        assert f"{step}: ok" in result.lines, step
    assert len(host.calls) == 27 == len(names) - 6


def test_an_agent_account_whose_domain_is_out_of_reach_is_unknown_and_the_run_ok(tmp_path):
    unread = _agent_account(lambda a: {**a, "token_groups_known": False, "token_groups_error": UNREACHABLE})
    # on the installer's worker the agent's account is a local one, whose groups need no domain controller
    result, _host, _unchanged = _run(tmp_path, "read_agent_info", unread)
    assert result.failed_steps == ["read_agent_info service account token groups"]
    result, _host, _unchanged = _run(tmp_path / "domain", "read_agent_info", unread, state=simworker.domain_state())
    assert result.ok, result.lines
    (step,) = result.unknown_steps
    assert step.name == "read_agent_info service account token groups"
    assert step.line.endswith(f"were not read, DOMAIN_UNREACHABLE: {UNREACHABLE['message']})")

    def not_resolved(answer, parameters):
        if parameters["account"]:
            return answer
        return {**answer, "account": None, "account_error": {"code": "DOMAIN_UNREACHABLE", "message": "account 'CORP\\render-svc' cannot be resolved"}}

    result, _host, _unchanged = _run(tmp_path / "unresolved", "read_agent_info", not_resolved, state=simworker.domain_state())
    assert result.ok and [s.name for s in result.unknown_steps] == ["read_agent_info service account token groups"]
    assert "read_agent_info group policy" not in [s.name for s in result.steps]


class HidesUsers(TamperedHost):
    """A host whose every reading of the sandbox user leaves out Users, which holds Authenticated Users."""

    def call(self, operation, /, **parameters):
        answer = super().call(operation, **parameters)
        sandbox_user = answer.get("account") if operation == "read_agent_info" and parameters["account"] else answer
        if operation in ("read_account", "read_agent_info") and isinstance(sandbox_user, dict) and "cmf-selftest" in str(sandbox_user.get("name")):
            for key in ("groups", "token_groups"):
                sandbox_user[key] = [g for g in sandbox_user[key] if g["sid"] != USERS]
            sandbox_user["group_rights"].pop(USERS, None)
            sandbox_user["group_members"].pop(USERS, None)
        return answer


def test_users_holding_authenticated_users_must_be_in_the_sandbox_users_token(tmp_path):
    state = simworker.domain_state()
    state["accounts"][USERS]["members"].append("S-1-5-11")  # as on any Windows
    result, _host, unchanged = _run(tmp_path, state=state)
    assert result.ok and unchanged, result.lines
    path = simworker.save_state(tmp_path / "hides.yml", state)
    result = run_selftest(HidesUsers(path), Options(service="DeadlineWorker", config_path=simworker.WORKER_TOML))
    # Only the agent's reading lists Users' members (its account is in Users): the sandbox user's next reading is held to it.
    assert result.failed_steps == ["read_agent_info sandbox account"], result.lines
    assert f"{USERS} holds ['S-1-5-11'] (as another reading lists its members), but is not among token_groups" in next(
        line for line in result.lines if line.startswith("read_agent_info sandbox account: "))
