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
are members of the local group too, reported with ``indirect: true``. The account's token groups
(every group it is in, domain groups included, and Everyone, Authenticated Users and SERVICE, which
every service logon carries) are reported as ``token_groups``, with ``token_groups_known``. A user
account may carry ``environment: {NAME: value}``, its own user variables (HKU\\<sid>\\Environment),
which read_agent_info reports for the service's logon account.

``group_policy: {rights: {RIGHT: [SID, ...]}}`` is the holder list a domain policy sets for each
right it defines (``{error: text}``: the policy result cannot be read); it is reported as
``group_policy`` and, at every start of a service, replaces ``rights[RIGHT]`` (a refresh happened).
Faults (``faults``): ``domain_unreachable`` (no domain controller answers: a domain account's
groups cannot be read, a name the host has not resolved before does not resolve, and a domain
member of a local group is reported unnamed, ``unreadable``),
``account_lookup_failed`` (name lookups fail otherwise: its text or true), ``lsa_error`` (every LSA
call fails with this NTSTATUS, e.g. ``0xC0000022``).

Internal to this collection: not a public API; it may change in any release.
"""

from __future__ import annotations

from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host.errors import HostOperationError
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._windows.accounts import (
    ACCOUNT_NOT_FOUND,
    ADMINISTRATORS,
    DOMAIN_UNREACHABLE,
    IMPLICIT_GROUPS,
    LOCAL_AUTHORITIES,
    LOCAL_SYSTEM,
    NT_AUTHORITY,
    SERVICE_ACCOUNT_NAMES,
    AccountError,
    AccountRecord,
    account_domain,
    group_ref,
    is_builtin_group,
    is_domain_account,
    is_domain_sid,
    is_sid,
    machine_sid_prefix,
    names_equal,
    normalize_sid,
    parse_account,
    qualified_name,
    resolve_account,
    same_sid,
    service_account_sid,
)
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._windows.groups import plan_membership
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._windows.user_rights import (
    UnknownRightError,
    canonical_right,
    held_rights,
    plan_rights,
)

UNKNOWN_RIGHT = "UNKNOWN_RIGHT"
GROUP_CHANGE_FAILED = "GROUP_CHANGE_FAILED"
ACCOUNT_LOOKUP_FAILED = "ACCOUNT_LOOKUP_FAILED"
LSA_ERROR = "LSA_ERROR"
# The system's text for the NTSTATUS codes a test may inject (lsa_error), as LsaNtStatusToWinError and
# FormatMessage give it on an English host.
_NTSTATUS_TEXT = {
    0xC0000022: "Access is denied.",
    0xC000005E: "There are currently no logon servers available to service the logon request.",
    0xC0000060: "A specified privilege does not exist.",
}
_LOOKUP_FAILED_TEXT = "The remote procedure call failed."  # RPC_S_CALL_FAILED: not a sign of an unreachable domain


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


def _fault(state, name: str):
    return (state.data.get("faults") or {}).get(name)


def _domain_unreachable(state) -> bool:
    return bool(_fault(state, "domain_unreachable"))


def _resolve(state, account: str) -> AccountRecord:
    # Windows maps the service accounts (LocalSystem, ...) before any name translation.
    sid = service_account_sid(account)
    if sid is not None:
        entry = _entry(state, sid)
        return _record(state, sid, entry if entry is not None else {"name": SERVICE_ACCOUNT_NAMES[sid], "domain": NT_AUTHORITY, "type": "well_known"})
    failed = _fault(state, "account_lookup_failed")
    if failed:
        text = failed if isinstance(failed, str) else _LOOKUP_FAILED_TEXT
        raise HostOperationError(ACCOUNT_LOOKUP_FAILED, f"account '{account}' could not be looked up on {state.hostname}: System.SystemException: {text}")
    try:
        return resolve_account(account, _records(state), state.hostname)
    except AccountError as error:
        if error.code == ACCOUNT_NOT_FOUND and _domain_unreachable(state) and _may_be_in_a_domain(state, account):
            # Without a domain controller, a name that is not local cannot be told missing from unknown.
            raise HostOperationError(
                DOMAIN_UNREACHABLE,
                f"account '{account}' cannot be resolved: {state.hostname} cannot contact its domain (no domain controller answers)",
            ) from None
        raise HostOperationError(error.code, error.message) from None


def _machine_prefix(state) -> str | None:
    return machine_sid_prefix(r.sid for r in _records(state) if names_equal(r.domain, state.hostname))


def _own_domain_names(state) -> set[str]:
    """The names this host gives its own domains, as read_account.ps1 takes them (Get-CmfOwnDomainNames):
    ``.``, its name, the English BUILTIN, NT AUTHORITY and NT SERVICE, and the (localized) domain of every
    account of its own (a SID that is no domain's: is_domain_account)."""
    prefix = _machine_prefix(state)
    own = {".", state.hostname, *LOCAL_AUTHORITIES}
    own |= {r.domain for r in _records(state) if not is_domain_account(r.sid, r.domain, state.hostname, prefix)}
    return {name.casefold() for name in own}


def _may_be_in_a_domain(state, account: str) -> bool:
    """A reference that a domain controller would be asked about once the host itself does not know it."""
    try:
        wanted = parse_account(account)
    except ValueError:
        return False
    if wanted.domain is not None:  # decided by the names this host gives its own domains, in its language
        return wanted.domain.casefold() not in _own_domain_names(state)
    if wanted.sid is not None:  # only a domain's SID: the host maps its own SIDs itself
        return is_domain_sid(wanted.sid, _machine_prefix(state))
    return True  # a UPN, or a bare name: the domain is searched after the host


def _entry(state, sid: str) -> dict | None:
    for key, entry in _accounts(state).items():
        if is_sid(str(key)) and same_sid(key, sid):
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


def _direct_rights(state, sid: str) -> list[str]:
    status = _fault(state, "lsa_error")
    if status:
        code = int(str(status), 16) if isinstance(status, str) else int(status)
        text = _NTSTATUS_TEXT.get(code, f"NTSTATUS 0x{code:08X}")
        raise HostOperationError(LSA_ERROR, f"LsaOpenPolicy failed: 0x{code:08X} ({text})")
    sid = normalize_sid(sid)
    return held_rights(right for right, holders in _rights(state).items() if sid in {normalize_sid(str(h)) for h in holders or []})


def _member(state, sid: str) -> dict:
    entry = _entry(state, sid)
    if entry is None and not sid.startswith("S-1-5-21-"):  # a well-known principal (Authenticated Users...)
        return {"sid": sid, "name": IMPLICIT_GROUPS.get(sid, sid), "type": "well_known", "enabled": True, "orphaned": False}
    if entry is None:  # an account's SID that no longer resolves: kept as is, never an error
        return {"sid": sid, "name": sid, "type": "unknown", "enabled": False, "orphaned": True}
    record = _record(state, sid, entry)
    if _domain_unreachable(state) and _is_domain_record(state, record):
        # Only a domain controller names a domain's SID: without one it stays unnamed, neither an orphan
        # (it may well exist) nor disabled, as read_account.ps1 reports it (Get-CmfGroupMember).
        return {"sid": record.sid, "name": record.sid, "type": "unknown", "enabled": True, "orphaned": False, "unreadable": True}
    return {
        "sid": record.sid,
        "name": qualified_name(record.name, record.domain),
        "type": record.type,
        "enabled": entry.get("enabled") is not False,
        "orphaned": False,
    }


def _is_domain_record(state, record: AccountRecord) -> bool:
    return is_domain_account(record.sid, record.domain, state.hostname, _machine_prefix(state))


def _token_groups(state, record: AccountRecord) -> tuple[set[str], bool, dict | None]:
    """The SIDs of every group the account's service logon carries, whether that is all of them,
    and why not. Without a domain controller, a domain account's domain groups cannot be read (its
    local groups still can); a local account is in no domain group, so its groups stay known."""
    start = {record.sid} | (set(IMPLICIT_GROUPS) if record.type != "group" else set())
    unreachable = _domain_unreachable(state)
    found: set[str] = set()
    pending = list(start)
    while pending:
        member = pending.pop()
        for group in _records(state):
            if group.type != "group" or group.sid in found or member not in _members(state, group.sid):
                continue
            if unreachable and _is_domain_record(state, group):
                continue  # a domain group: only a domain controller knows who is in it
            found.add(group.sid)
            pending.append(group.sid)
    found |= start - {record.sid}
    if unreachable and _is_domain_record(state, record):
        error = {"code": DOMAIN_UNREACHABLE, "message": f"{state.hostname} cannot contact the domain {record.domain} (no domain controller answers)"}
        return found, False, error
    return found, True, None


def token_group_sids(state, account: str) -> list[str] | None:
    """The SIDs of the groups a service logon of ``account`` carries now (what a service started now
    runs with), sorted; None when the account does not resolve. LocalSystem's token holds Administrators
    without being its member."""
    try:
        record = _resolve(state, account)
    except HostOperationError:
        return None
    containing, _known, _error = _token_groups(state, record)
    if record.sid == LOCAL_SYSTEM:
        containing.add(ADMINISTRATORS)
    return sorted(containing)


def _scope(state, sid: str) -> str:
    entry = _entry(state, sid)
    if entry is None:
        return "well_known"
    record = _record(state, sid, entry)
    if _is_local_group(state, record):
        return "local"
    return "domain" if _is_domain_record(state, record) else "well_known"


def _group_name(state, sid: str) -> str:
    entry = _entry(state, sid)
    if entry is None:
        return IMPLICIT_GROUPS.get(sid, sid)
    record = _record(state, sid, entry)
    return record.name if _is_local_group(state, record) else qualified_name(record.name, record.domain)


def group_policy_report(state) -> dict:
    """What the host knows of the rights a domain policy defines: ``{known, domain_member, rights:
    {right: [{sid, name}]}, error}`` (the resultant set of policy of its last refresh)."""
    policy = state.data.get("group_policy")
    domain_member = isinstance(policy, dict) or any(_is_domain_record(state, r) for r in _records(state))
    if isinstance(policy, dict) and policy.get("error"):
        return {"known": False, "domain_member": True, "rights": {}, "error": str(policy["error"])}
    rights = {}
    for right, holders in ((policy or {}).get("rights") or {}).items():
        rights[canonical_right(str(right)) or str(right)] = [
            {"sid": normalize_sid(str(h)), "name": _group_name(state, normalize_sid(str(h)))} for h in holders or [] if is_sid(str(h))
        ]
    return {"known": True, "domain_member": domain_member, "rights": rights, "error": None}


def apply_group_policy(state) -> None:
    """A policy refresh: each right the domain policy defines gets exactly the policy's holders (what
    an LSA grant or removal did to it is undone). The simulator applies it at every service start."""
    policy = state.data.get("group_policy")
    if not isinstance(policy, dict):
        return
    rights = _rights(state)
    for right, holders in (policy.get("rights") or {}).items():
        rights[_rights_key(rights, str(right))] = [str(h) for h in holders or []]


def account_report(state, account: str) -> dict:
    """What read_account returns for ``account``: see the operation's documentation in
    read_account.ps1. Raises HostOperationError when the account does not resolve."""
    record = _resolve(state, account)
    entry = _entry(state, record.sid) or {}
    local_groups = _local_groups(state)
    containing, known, error = _token_groups(state, record)
    mine = [group for group in local_groups if group.sid in containing]
    direct = {group.sid for group in mine if record.sid in _members(state, group.sid)}
    groups = sorted(
        ({**group_ref(g.sid, g.name), "indirect": g.sid not in direct} for g in mine),
        key=lambda g: (g["name"].casefold(), g["sid"]),
    )
    token = sorted(
        ({"sid": sid, "name": _group_name(state, sid), "scope": _scope(state, sid)} for sid in containing),
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
        "group_rights": {g["sid"]: _direct_rights(state, g["sid"]) for g in token},
        "local_groups": [group_ref(g.sid, g.name) for g in local_groups],
        "group_members": {g.sid: [_member(state, m) for m in _members(state, g.sid)] for g in mine},
        "token_groups": token,
        "token_groups_known": known,
        "token_groups_error": error,
        "group_policy": group_policy_report(state),
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
    if plan.changed:
        # A service running as the account keeps the token it started with, whatever its groups become.
        from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host.simulated.agent import pin_running_tokens

        pin_running_tokens(state, sid)
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
