# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One account's membership in local groups: planning by SID, and the safety rules.

Pure logic on an account report (see ``read_account``): check mode plans with it on the
controller, the simulated worker applies the same plan; the PowerShell operation mirrors the
safety rules on the host, because a change is one call there.

Internal to this collection: not a public API; it may change in any release.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._windows.accounts import (
    ADMINISTRATORS,
    DOMAIN_UNREACHABLE,
    DOMAIN_UNREACHABLE_FIX,
    GROUP_NOT_FOUND,
    REMOVAL_REFUSED,
    TOKEN_GROUPS_FAILED_FIX,
    AccountError,
    group_ref,
    is_builtin_administrator,
    normalize_sid,
    resolve_local_group,
)

PRESENT = "present"
ABSENT = "absent"


@dataclass(frozen=True)
class MembershipPlan:
    added: list[dict] = field(default_factory=list)  # [{name, sid}] of groups
    removed: list[dict] = field(default_factory=list)
    before: list[dict] = field(default_factory=list)  # every local group the account is in
    after: list[dict] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed)


def sorted_groups(groups: Iterable[Mapping]) -> list[dict]:
    return sorted((group_ref(g["sid"], g["name"]) for g in groups), key=lambda g: (g["name"].casefold(), g["sid"]))


def resolve_groups(requested: Iterable[str], local_groups: Iterable[Mapping], hostname: str) -> list[dict]:
    """The local groups ``requested`` names (names or SIDs), as [{name, sid}] without repeats.

    Raises AccountError(GROUP_NOT_FOUND) naming every group that does not exist.
    """
    by_sid = {normalize_sid(g["sid"]): g["name"] for g in local_groups}
    found: list[dict] = []
    missing: list[str] = []
    for text in requested:
        match = resolve_local_group(str(text), by_sid, hostname)
        if match is None:
            missing.append(str(text))
        elif match[0] not in {g["sid"] for g in found}:
            found.append(group_ref(*match))
    if missing:
        raise AccountError(
            GROUP_NOT_FOUND,
            f"no local group {', '.join(missing)} on {hostname} "
            f"(local groups: {', '.join(sorted(by_sid.values(), key=str.casefold))})",
            "name local groups that exist on the host, by name or SID (S-1-5-32-544 is Administrators in any language)",
        )
    return found


# ---------------------------------------------------------------------------------------------
# The account's token groups: every group its service logon carries (read_account's token_groups):
# local groups, domain groups (nested ones included), and the groups every logon has (Everyone...).


def token_groups(report: Mapping) -> list[dict]:
    """The account's token groups ``[{sid, name, scope}]``; a report from before token_groups existed
    gives its local groups (all it knew)."""
    groups = report.get("token_groups")
    if groups is None:
        return [{"sid": g["sid"], "name": g["name"], "scope": "local"} for g in report.get("groups") or []]
    return [dict(g) for g in groups]


def token_group_sids(report: Mapping) -> set[str]:
    return {normalize_sid(g["sid"]) for g in token_groups(report)}


def token_groups_known(report: Mapping) -> bool:
    """False when the host could not read the account's domain groups (a domain controller out of
    reach): its token groups are then incomplete, and no decision may rest on them."""
    return report.get("token_groups_known") is not False


def token_groups_error_code(report: Mapping) -> str:
    """Why the token groups are unknown: DOMAIN_UNREACHABLE (no domain controller answers) or the
    host's other code (TOKEN_GROUPS_FAILED)."""
    return str((report.get("token_groups_error") or {}).get("code") or DOMAIN_UNREACHABLE)


def token_groups_fix(report: Mapping) -> str:
    """What makes the account's token groups readable again, by why they are not (token_groups_error_code)."""
    return DOMAIN_UNREACHABLE_FIX if token_groups_error_code(report) == DOMAIN_UNREACHABLE else TOKEN_GROUPS_FAILED_FIX


def token_groups_unknown_message(report: Mapping) -> str:
    error = report.get("token_groups_error") or {}
    who = f"{report.get('name') or report.get('sid')} ({report.get('sid')})"
    return (
        f"the domain groups of {who} cannot be read from {report.get('hostname') or 'the host'}"
        f" ({token_groups_error_code(report)}: {error.get('message') or 'no domain controller answered'}), so"
        " whether it is an administrator, or holds a right, through one of them cannot be told"
    )


def report_with_groups(report: Mapping, after: Iterable[Mapping]) -> dict:
    """The report as the host would give it once the account is a member of exactly the local groups
    ``after`` (a prediction, for check mode and the role's plan): a group left leaves its token too,
    with what it gave (its rights, its members' list)."""
    result = copy.deepcopy(dict(report))
    before = {normalize_sid(g["sid"]): g for g in report.get("groups") or []}
    kept = {normalize_sid(g["sid"]): g for g in after}
    left = set(before) - set(kept)
    result["groups"] = sorted_groups(kept.values())
    for group in result["groups"]:
        group["indirect"] = bool(before.get(normalize_sid(group["sid"]), {}).get("indirect"))
    if report.get("token_groups") is not None:
        token = [g for g in token_groups(report) if normalize_sid(g["sid"]) not in left]
        known = {normalize_sid(g["sid"]) for g in token}
        token += [{"sid": sid, "name": g["name"], "scope": "local"} for sid, g in kept.items() if sid not in known]
        result["token_groups"] = sorted(token, key=lambda g: (g["name"].casefold(), g["sid"]))
    for table in ("group_rights", "group_members"):
        result[table] = {sid: value for sid, value in (report.get(table) or {}).items() if normalize_sid(sid) not in left}
    return result


def member_enabled(member: Mapping) -> bool:
    """A member that can still log on: an enabled user, or a group or principal (its members are
    not expanded). An orphaned SID (deleted or unresolvable account) is not one."""
    if member.get("orphaned"):
        return False
    return member.get("enabled") is not False


def removal_refusal(report: Mapping, group: Mapping) -> str | None:
    """Why removing the account from ``group`` is refused, or None when it is safe.

    Only Administrators is guarded: losing it can lock everyone, Ansible included, out of the host.
    """
    if normalize_sid(group["sid"]) != ADMINISTRATORS:
        return None
    sid = normalize_sid(report["sid"])
    who = report.get("name") or sid
    prefix = f"refusing to remove {who} ({sid}) from {group['name']} ({ADMINISTRATORS}), nothing was changed: "
    connection_sid = report.get("connection_sid")
    if connection_sid and normalize_sid(connection_sid) == sid:
        return prefix + "it is the account Ansible is connected as, which would lose administrator rights mid-run"
    if is_builtin_administrator(sid):
        return prefix + "it is the built-in Administrator (RID 500), the account of last resort"
    members = (report.get("group_members") or {}).get(group["sid"]) or []
    others = [m for m in members if normalize_sid(m["sid"]) != sid and member_enabled(m)]
    if not others:
        return prefix + "it would leave the group with no enabled member"
    return None


def carriers(report: Mapping, group: Mapping) -> list[str]:
    """The members of the local ``group`` through which the account is in it besides its own SID:
    groups of its token (a domain group, Authenticated Users...) that ``group`` holds, by name."""
    members = (report.get("group_members") or {}).get(group["sid"]) or []
    own = token_group_sids(report) - {normalize_sid(group["sid"])}
    if report.get("token_groups") is None:  # an older report: its groups are local ones, members say which are groups
        own = {sid for sid in own if any(normalize_sid(m["sid"]) == sid and m.get("type") == "group" for m in members)}
    return sorted(str(m.get("name") or m["sid"]) for m in members if normalize_sid(m["sid"]) in own)


def nested_refusal(report: Mapping, group: Mapping) -> str | None:
    """Why removing the account from ``group`` cannot work: it is a member only through groups of its
    token that the group holds (a domain group nested in it, Authenticated Users...), or also through
    one of them, which would keep the membership after the direct one is gone; else None."""
    mine = next((g for g in report.get("groups") or [] if normalize_sid(g["sid"]) == normalize_sid(group["sid"])), None)
    if not mine:
        return None
    who = report.get("name") or report["sid"]
    prefix = f"refusing to remove {who} ({report['sid']}) from {group['name']} ({group['sid']}), nothing was changed: "
    through = carriers(report, group)
    if mine.get("indirect"):
        return prefix + f"it is a member only through {', '.join(through) or 'a nested group'}; remove it from that group instead"
    if through:
        return prefix + (
            f"it is also a member through {', '.join(through)}, nested in it, which would keep it one; remove it from that"
            f" group (or that group from {group['name']}) first"
        )
    return None


def plan_membership(report: Mapping, requested: Iterable[str], state: str) -> MembershipPlan:
    """Add the account to each requested group it is not in (present), or remove it from each it
    is in (absent). Raises AccountError for a missing group or a refused removal, before any change."""
    if state not in (PRESENT, ABSENT):
        raise ValueError(f"state must be {PRESENT!r} or {ABSENT!r}, not {state!r}")
    hostname = str(report.get("hostname") or "")
    wanted = resolve_groups(requested, report.get("local_groups") or [], hostname)
    before = sorted_groups(report.get("groups") or [])
    current = {g["sid"] for g in before}
    if state == PRESENT:
        added = [g for g in wanted if g["sid"] not in current]
        removed: list[dict] = []
    else:
        added = []
        removed = [g for g in wanted if g["sid"] in current]
        for group in removed:
            if not token_groups_known(report):
                # Fail closed: a domain group it is in, nested in this one, would keep it a member.
                who = report.get("name") or report["sid"]
                raise AccountError(
                    token_groups_error_code(report),
                    f"refusing to remove {who} ({report['sid']}) from {group['name']} ({group['sid']}), nothing was changed: "
                    + token_groups_unknown_message(report),
                    token_groups_fix(report),
                )
            refusal = nested_refusal(report, group)
            if refusal:
                through = ", ".join(carriers(report, group)) or "the group nested in it"
                raise AccountError(
                    REMOVAL_REFUSED, refusal, f"take the account out of {through} (or that group out of {group['name']}), then run again"
                )
            refusal = removal_refusal(report, group)
            if refusal:
                raise AccountError(
                    REMOVAL_REFUSED,
                    refusal,
                    "connect as another administrator, or converge another account; keep another enabled member in Administrators",
                )
    gone = {g["sid"] for g in removed}
    after = sorted_groups([*(g for g in before if g["sid"] not in gone), *added])
    return MembershipPlan(added=added, removed=removed, before=before, after=after)
