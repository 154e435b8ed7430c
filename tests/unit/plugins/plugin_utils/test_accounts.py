# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import re
from pathlib import Path

import pytest

from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._windows import accounts
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._windows.accounts import (
    AccountError,
    AccountRecord,
    is_builtin_administrator,
    is_sid,
    names_equal,
    normalize_sid,
    parse_account,
    resolve_account,
    resolve_local_group,
    rid,
)

HOST = "WORKER-01"
AGENT = "S-1-5-21-3623811015-3361044348-30300820-1001"
RECORDS = [
    AccountRecord("S-1-5-21-3623811015-3361044348-30300820-500", "Administrator", HOST, "user"),
    AccountRecord(AGENT, "deadline-worker", HOST, "user"),
    AccountRecord("S-1-5-32-544", "Administratoren", "BUILTIN", "group"),
    AccountRecord("S-1-5-19", "LOCAL SERVICE", "NT AUTHORITY", "well_known"),
    AccountRecord("S-1-5-21-1-2-3-4001", "render", "CORP", "user"),
    AccountRecord("S-1-5-21-4-5-6-4001", "render", "FABRIKAM", "user"),
    AccountRecord("S-1-5-21-1-2-3-4002", "deadline-worker", "CORP", "user"),
]


@pytest.mark.parametrize(
    ("text", "name", "domain", "upn", "sid"),
    [
        ("deadline-worker", "deadline-worker", None, None, None),
        (r".\deadline-worker", "deadline-worker", ".", None, None),
        (r"WORKER-01\deadline-worker", "deadline-worker", "WORKER-01", None, None),
        (r"NT AUTHORITY\LOCAL SERVICE", "LOCAL SERVICE", "NT AUTHORITY", None, None),
        ("render@corp.example.com", "render", None, "corp.example.com", None),
        ("  s-1-5-32-544 ", "", None, None, "S-1-5-32-544"),
    ],
)
def test_parse_account_forms(text, name, domain, upn, sid):
    parsed = parse_account(text)
    assert (parsed.name, parsed.domain, parsed.upn_suffix, parsed.sid) == (name, domain, upn, sid)


@pytest.mark.parametrize("text", ["", "   ", "\\name", "DOMAIN\\", "a\\b\\c", "@corp", "name@"])
def test_parse_account_rejects_malformed_names(text):
    with pytest.raises(ValueError):
        parse_account(text)


def test_sid_helpers():
    assert is_sid("S-1-5-32-544") and is_sid("s-1-5-21-1-2-3-500")
    assert not is_sid("S-1-") and not is_sid("Administrators") and not is_sid("S-1-5-x")
    assert normalize_sid("s-1-5-32-544") == "S-1-5-32-544"
    assert rid(AGENT) == 1001
    assert is_builtin_administrator("S-1-5-21-3623811015-3361044348-30300820-500")
    assert not is_builtin_administrator("S-1-5-21-3623811015-3361044348-30300820-1500")
    assert not is_builtin_administrator("S-1-5-32-500")  # not in an S-1-5-21 account space
    assert names_equal("Deadline-Worker", "DEADLINE-worker")


@pytest.mark.parametrize(
    "text",
    ["deadline-worker", "DEADLINE-WORKER", r".\Deadline-Worker", r"worker-01\deadline-worker", AGENT.lower()],
)
def test_resolve_prefers_the_local_account_as_windows_does(text):
    assert resolve_account(text, RECORDS, HOST).sid == AGENT


def test_resolve_domain_and_upn_and_well_known():
    assert resolve_account(r"corp\deadline-worker", RECORDS, HOST).sid == "S-1-5-21-1-2-3-4002"
    assert resolve_account("render@corp.example.com", RECORDS, HOST).sid == "S-1-5-21-1-2-3-4001"
    assert resolve_account("render@FABRIKAM", RECORDS, HOST).sid == "S-1-5-21-4-5-6-4001"
    assert resolve_account(r"nt authority\local service", RECORDS, HOST).sid == "S-1-5-19"
    # HOST\ of a BUILTIN group resolves to it, as on Windows
    assert resolve_account(r"WORKER-01\administratoren", RECORDS, HOST).sid == "S-1-5-32-544"


def test_resolve_errors_name_the_account():
    with pytest.raises(AccountError) as missing:
        resolve_account(r".\ghost", RECORDS, HOST)
    assert missing.value.code == accounts.ACCOUNT_NOT_FOUND and r".\ghost" in missing.value.message
    with pytest.raises(AccountError) as by_sid:
        resolve_account("S-1-5-21-9-9-9-9", RECORDS, HOST)
    assert by_sid.value.code == accounts.ACCOUNT_NOT_FOUND and "S-1-5-21-9-9-9-9" in by_sid.value.message
    with pytest.raises(AccountError) as ambiguous:
        resolve_account("render", RECORDS, HOST)
    assert ambiguous.value.code == accounts.ACCOUNT_AMBIGUOUS
    assert r"CORP\render" in ambiguous.value.message and r"FABRIKAM\render" in ambiguous.value.message
    with pytest.raises(AccountError) as far:
        resolve_account(r"FARAWAY\render", RECORDS, HOST)
    assert far.value.code == accounts.DOMAIN_UNREACHABLE and r"FARAWAY\render" in far.value.message
    with pytest.raises(AccountError) as far_upn:
        resolve_account("render@faraway.example.com", RECORDS, HOST)
    assert far_upn.value.code == accounts.DOMAIN_UNREACHABLE
    with pytest.raises(AccountError) as empty:
        resolve_account("", RECORDS, HOST)
    assert empty.value.code == accounts.ACCOUNT_NOT_FOUND


def test_local_groups_by_sid_local_name_and_english_alias():
    german = {"S-1-5-32-544": "Administratoren", "S-1-5-32-545": "Benutzer", "S-1-5-21-1-2-3-1002": "deadline-job-users"}
    assert resolve_local_group("S-1-5-32-544", german, HOST) == ("S-1-5-32-544", "Administratoren")
    assert resolve_local_group("s-1-5-32-544", german, HOST) == ("S-1-5-32-544", "Administratoren")
    assert resolve_local_group("administratoren", german, HOST) == ("S-1-5-32-544", "Administratoren")
    assert resolve_local_group("Administrators", german, HOST) == ("S-1-5-32-544", "Administratoren")
    assert resolve_local_group(r"BUILTIN\Users", german, HOST) == ("S-1-5-32-545", "Benutzer")
    assert resolve_local_group(r".\DEADLINE-JOB-USERS", german, HOST) == ("S-1-5-21-1-2-3-1002", "deadline-job-users")
    assert resolve_local_group(r"worker-01\deadline-job-users", german, HOST) is not None
    assert resolve_local_group(r"CORP\deadline-job-users", german, HOST) is None  # a domain group
    assert resolve_local_group("Backup Operators", german, HOST) is None  # not on this host
    assert resolve_local_group("S-1-5-32-551", german, HOST) is None


def test_a_local_name_wins_over_the_english_alias():
    # a host where a custom group is called "Users" and BUILTIN Users is "Benutzer"
    groups = {"S-1-5-32-545": "Benutzer", "S-1-5-21-1-2-3-1010": "Users"}
    assert resolve_local_group("Users", groups, HOST) == ("S-1-5-21-1-2-3-1010", "Users")


def test_powershell_knows_the_same_english_group_names():
    script = Path(accounts.__file__).parents[1] / "_host" / "powershell" / "lib" / "Accounts.ps1"
    table = dict(re.findall(r"'([a-z_ -]+)' = '(S-1-5-32-\d+)'", script.read_text(encoding="utf-8")))
    assert table == accounts.WELL_KNOWN_GROUPS


@pytest.mark.parametrize(
    ("left", "right", "same"),
    [
        ("deadline-worker", r".\deadline-worker", True),
        (r".\Deadline-Worker", "deadline-worker", True),
        (r"WORKER-01\deadline-worker", r"worker-01\DEADLINE-WORKER", True),
        (r"CORP\deadline-worker", r".\deadline-worker", False),
        ("job-user", r".\deadline-worker", False),
        ("deadline-worker@corp.example", "DEADLINE-WORKER@corp.example", True),
        ("deadline-worker@corp.example", "deadline-worker", False),
        ("", "deadline-worker", False),
    ],
)
def test_same_account_by_name_where_no_sid_can_be_looked_up(left, right, same):
    assert accounts.same_account_by_name(left, right) is same


def test_the_machine_maps_its_own_sids_and_only_a_domain_sid_needs_a_domain_controller():
    machine = "S-1-5-21-3623811015-3361044348-30300820"
    prefix = accounts.machine_sid_prefix(["S-1-5-32-544", "s-1-5-21-3623811015-3361044348-30300820-1001"])
    assert prefix == f"{machine}-"
    assert accounts.machine_sid_prefix(["S-1-5-32-544", "S-1-5-18"]) is None
    assert not accounts.is_domain_sid(f"{machine}-1131", prefix)  # a deleted local account: not found, never unreachable
    assert not accounts.is_domain_sid("S-1-5-32-545", prefix) and not accounts.is_domain_sid("S-1-5-20", prefix)
    assert accounts.is_domain_sid("S-1-5-21-1004336348-1177238915-682003330-1105", prefix)
    assert accounts.is_domain_sid(f"{machine}0-1001", prefix)  # another prefix that starts alike
    assert accounts.is_domain_sid(f"{machine}-1001", None)  # a host without local accounts knows no SID of its own


def test_sids_compare_normalized_and_what_is_no_sid_matches_none():
    assert accounts.same_sid("s-1-5-32-544", " S-1-5-32-544 ")
    assert not accounts.same_sid("S-1-5-32-544", "S-1-5-32-545")
    assert not accounts.same_sid("", "") and not accounts.same_sid(None, None)
    assert not accounts.same_sid("Administrators", "S-1-5-32-544")
    assert accounts.sid_key("s-1-5-18") == "S-1-5-18" and accounts.sid_key("LocalSystem") == "LocalSystem"
