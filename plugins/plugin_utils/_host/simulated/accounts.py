# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Account operations of the simulated worker, as read_account.ps1, set_user_rights.ps1 and
set_group_membership.ps1 do them, on the state file's ``accounts`` and ``rights``.

State fields used (see STATE.md): ``accounts`` by SID with ``name``, ``type`` (user, group,
well_known), ``domain`` (absent for local accounts) and ``members`` (groups; a member SID that is
not in ``accounts`` is an orphan, as a deleted account leaves behind); ``rights`` (right -> SIDs);
``connection_account``; ``hostname``.

Addition (backward compatible): a user account may carry ``enabled: false``, a disabled account;
missing means enabled. The safety rules do not count disabled members of Administrators.
A group member may be a group (e.g. a domain group with its own ``members``): the accounts in it
are members of the local group too, reported with ``indirect: true`` (NetUserGetLocalGroups with
LG_INCLUDE_INDIRECT). A user account may carry ``environment: {NAME: value}``, its own user
variables (HKU\\<sid>\\Environment), which read_agent_info reports for the service's logon account.

Internal to this collection: not a public API; it may change in any release.
"""

from __future__ import annotations

from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host.errors import HostOperationError
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._windows.accounts import (
    NT_AUTHORITY,
    SERVICE_ACCOUNT_NAMES,
    AccountError,
    AccountRecord,
    account_domain,
    group_ref,
    is_builtin_group,
    is_sid,
    names_equal,
    normalize_sid,
    qualified_name,
    resolve_account,
    service_account_sid,
)
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._windows.groups import plan_membership
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._windows.user_rights import (
    UnknownRightError,
    held_rights,
    plan_rights,
)

UNKNOWN_RIGHT = "UNKNOWN_RIGHT"
GROUP_CHANGE_FAILED = "GROUP_CHANGE_FAILED"


def _accounts(state) -> dict:
    accounts = state.data.get("accounts")
    if not isinstance(accounts, dict):
        accounts = state.data["accounts"] = {}
    return accounts


def _rights(state) -> dict:
    rights = state.data.get("rights")
    if not isinstance(rights, dict):
        rights = state.data["rights"] = {}
    return rights


def _record(state, sid: str, entry: dict) -> AccountRecord:
    return AccountRecord(
        sid=normalize_sid(sid),
        name=str(entry.get("name") or sid),
        domain=account_domain(sid, entry.get("domain"), state.hostname),
        type=str(entry.get("type") or "user"),
    )


def _records(state) -> list[AccountRecord]:
    return [_record(state, sid, entry or {}) for sid, entry in _accounts(state).items() if is_sid(str(sid))]


def _resolve(state, account: str) -> AccountRecord:
    # Windows maps the service accounts (LocalSystem, ...) before any name translation.
    sid = service_account_sid(account)
    if sid is not None:
        entry = _entry(state, sid)
        return _record(state, sid, entry if entry is not None else {"name": SERVICE_ACCOUNT_NAMES[sid], "domain": NT_AUTHORITY, "type": "well_known"})
    try:
        return resolve_account(account, _records(state), state.hostname)
    except AccountError as error:
        raise HostOperationError(error.code, error.message) from None


def _entry(state, sid: str) -> dict | None:
    for key, entry in _accounts(state).items():
        if is_sid(str(key)) and normalize_sid(str(key)) == normalize_sid(sid):
            return entry if isinstance(entry, dict) else {}
    return None


def resolve_sid(state, account: str) -> str:
    """The SID ``account`` names on the host; HostOperationError when it does not resolve."""
    return _resolve(state, account).sid


def account_entry(state, sid: str) -> dict | None:
    """The state's entry of the account with ``sid``, None when the state has none."""
    return _entry(state, sid)


def _is_local_group(state, record: AccountRecord) -> bool:
    return record.type == "group" and (
        names_equal(record.domain, state.hostname) or is_builtin_group(record.sid)
    )


def _local_groups(state) -> list[AccountRecord]:
    return [record for record in _records(state) if _is_local_group(state, record)]


def _members(state, group_sid: str) -> list[str]:
    entry = _entry(state, group_sid) or {}
    return [normalize_sid(str(m)) for m in entry.get("members") or [] if is_sid(str(m))]


def _containing_groups(state, sid: str) -> set[str]:
    """Every group (local or not) that holds ``sid``, directly or through groups nested in it."""
    found: set[str] = set()
    pending = [normalize_sid(sid)]
    while pending:
        member = pending.pop()
        for record in _records(state):
            if record.type == "group" and record.sid not in found and member in _members(state, record.sid):
                found.add(record.sid)
                pending.append(record.sid)
    return found


def _direct_rights(state, sid: str) -> list[str]:
    sid = normalize_sid(sid)
    return held_rights(right for right, holders in _rights(state).items() if sid in {normalize_sid(str(h)) for h in holders or []})


def _member(state, sid: str) -> dict:
    entry = _entry(state, sid)
    if entry is None:  # a SID that no longer resolves: kept as is, never an error
        return {"sid": sid, "name": sid, "type": "unknown", "enabled": False, "orphaned": True}
    record = _record(state, sid, entry)
    return {
        "sid": record.sid,
        "name": qualified_name(record.name, record.domain),
        "type": record.type,
        "enabled": entry.get("enabled") is not False,
        "orphaned": False,
    }


def account_report(state, account: str) -> dict:
    """What read_account returns for ``account``: see the operation's documentation in
    read_account.ps1. Raises HostOperationError when the account does not resolve."""
    record = _resolve(state, account)
    entry = _entry(state, record.sid) or {}
    local_groups = _local_groups(state)
    containing = _containing_groups(state, record.sid)
    mine = [group for group in local_groups if group.sid in containing]
    direct = {group.sid for group in mine if record.sid in _members(state, group.sid)}
    groups = sorted(
        ({**group_ref(g.sid, g.name), "indirect": g.sid not in direct} for g in mine),
        key=lambda g: (g["name"].casefold(), g["sid"]),
    )
    return {
        "hostname": state.hostname,
        "sid": record.sid,
        "name": qualified_name(record.name, record.domain),
        "domain": record.domain,
        "type": record.type,
        "enabled": entry.get("enabled") is not False,
        "groups": groups,
        "rights": _direct_rights(state, record.sid),
        "group_rights": {g.sid: _direct_rights(state, g.sid) for g in mine},
        "local_groups": [group_ref(g.sid, g.name) for g in local_groups],
        "group_members": {g.sid: [_member(state, m) for m in _members(state, g.sid)] for g in mine},
        "connection_sid": normalize_sid(str(state.data["connection_account"]))
        if is_sid(str(state.data.get("connection_account") or ""))
        else None,
    }


def read_account(state, parameters: dict) -> dict:
    return account_report(state, parameters["account"])


def _rights_key(rights: dict, right: str) -> str:
    for key in rights:
        if names_equal(str(key), right):
            return key
    rights[right] = []
    return right


def set_user_rights(state, parameters: dict) -> dict:
    report = account_report(state, parameters["account"])
    try:
        plan = plan_rights(report["rights"], parameters["rights"], parameters["state"])
    except UnknownRightError as error:
        raise HostOperationError(UNKNOWN_RIGHT, f"account {report['name']}: {error}") from None
    rights = _rights(state)
    sid = report["sid"]
    for right in plan.added:
        key = _rights_key(rights, right)
        rights[key] = [*(rights[key] or []), sid]
    for right in plan.removed:
        key = _rights_key(rights, right)
        rights[key] = [h for h in rights[key] or [] if normalize_sid(str(h)) != sid]
    return {
        "added": plan.added,
        "removed": plan.removed,
        "before": plan.before,
        "report": account_report(state, sid) if plan.changed else report,
    }


def set_group_membership(state, parameters: dict) -> dict:
    report = account_report(state, parameters["account"])
    try:
        plan = plan_membership(report, parameters["groups"], parameters["state"])
    except AccountError as error:
        raise HostOperationError(error.code, error.message) from None
    sid = report["sid"]
    refusing = {normalize_sid(str(g)) for g in (state.data.get("faults") or {}).get("group_change_fails") or [] if is_sid(str(g))}
    added: list[dict] = []
    removed: list[dict] = []
    for verb, group, done in [*(("add", g, added) for g in plan.added), *(("remove", g, removed) for g in plan.removed)]:
        if group["sid"] in refusing:
            # As set_group_membership.ps1: the changes made so far stay, and the answer says which.
            made = [f"added to {g['name']}" for g in added] + [f"removed from {g['name']}" for g in removed]
            so = f"it was already {', '.join(made)} before that: those changes stay" if made else "nothing was changed"
            what = f"adding {report['name']} ({sid}) to" if verb == "add" else f"removing {report['name']} ({sid}) from"
            raise HostOperationError(
                GROUP_CHANGE_FAILED,
                f"{what} {group['name']} ({group['sid']}) failed: Access is denied.; {so}",
                {"changed": bool(made), "added": added, "removed": removed},
            )
        entry = _entry(state, group["sid"])
        if verb == "add":
            entry["members"] = [*(entry.get("members") or []), sid]
        else:
            entry["members"] = [m for m in entry.get("members") or [] if not (is_sid(str(m)) and normalize_sid(str(m)) == sid)]
        done.append(group)
    return {
        "added": plan.added,
        "removed": plan.removed,
        "before": plan.before,
        "report": account_report(state, sid) if plan.changed else report,
    }


OPERATIONS = {
    "read_account": read_account,
    "set_user_rights": set_user_rights,
    "set_group_membership": set_group_membership,
}
