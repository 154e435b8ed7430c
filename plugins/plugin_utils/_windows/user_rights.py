# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""User rights (privileges and logon rights): their constants, planning, and effective rights.

Pure logic: the modules and every host implementation use these rules, so they exist once.

Internal to this collection: not a public API; it may change in any release.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._windows.accounts import SERVICE_LOGON, group_ref, normalize_sid, sid_key
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._windows.groups import token_group_sids, token_groups_known

PRIVILEGES: tuple[str, ...] = (
    "SeAssignPrimaryTokenPrivilege",
    "SeAuditPrivilege",
    "SeBackupPrivilege",
    "SeChangeNotifyPrivilege",
    "SeCreateGlobalPrivilege",
    "SeCreatePagefilePrivilege",
    "SeCreatePermanentPrivilege",
    "SeCreateSymbolicLinkPrivilege",
    "SeCreateTokenPrivilege",
    "SeDebugPrivilege",
    "SeDelegateSessionUserImpersonatePrivilege",
    "SeEnableDelegationPrivilege",
    "SeImpersonatePrivilege",
    "SeIncreaseBasePriorityPrivilege",
    "SeIncreaseQuotaPrivilege",
    "SeIncreaseWorkingSetPrivilege",
    "SeLoadDriverPrivilege",
    "SeLockMemoryPrivilege",
    "SeMachineAccountPrivilege",
    "SeManageVolumePrivilege",
    "SeProfileSingleProcessPrivilege",
    "SeRelabelPrivilege",
    "SeRemoteShutdownPrivilege",
    "SeRestorePrivilege",
    "SeSecurityPrivilege",
    "SeShutdownPrivilege",
    "SeSyncAgentPrivilege",
    "SeSystemEnvironmentPrivilege",
    "SeSystemProfilePrivilege",
    "SeSystemtimePrivilege",
    "SeTakeOwnershipPrivilege",
    "SeTcbPrivilege",
    "SeTimeZonePrivilege",
    "SeTrustedCredManAccessPrivilege",
    "SeUndockPrivilege",
)

LOGON_RIGHTS: tuple[str, ...] = (
    "SeBatchLogonRight",
    "SeDenyBatchLogonRight",
    "SeDenyInteractiveLogonRight",
    "SeDenyNetworkLogonRight",
    "SeDenyRemoteInteractiveLogonRight",
    "SeDenyServiceLogonRight",
    "SeInteractiveLogonRight",
    "SeNetworkLogonRight",
    "SeRemoteInteractiveLogonRight",
    "SeServiceLogonRight",
)

ALL_RIGHTS: tuple[str, ...] = PRIVILEGES + LOGON_RIGHTS
_CANONICAL: dict[str, str] = {right.casefold(): right for right in ALL_RIGHTS}

DENY_SERVICE_LOGON_RIGHT = "SeDenyServiceLogonRight"
# A deny logon right wins over its allow right, whoever holds either (the account or a group).
DENY_OVERRIDES: dict[str, str] = {
    "SeDenyServiceLogonRight": "SeServiceLogonRight",
    "SeDenyInteractiveLogonRight": "SeInteractiveLogonRight",
    "SeDenyNetworkLogonRight": "SeNetworkLogonRight",
    "SeDenyBatchLogonRight": "SeBatchLogonRight",
    "SeDenyRemoteInteractiveLogonRight": "SeRemoteInteractiveLogonRight",
}

# The names Local Security Policy and the Group Policy editor show (User Rights Assignment).
DISPLAY_NAMES: dict[str, str] = {
    "SeAssignPrimaryTokenPrivilege": "Replace a process level token",
    "SeBatchLogonRight": "Log on as a batch job",
    "SeDenyBatchLogonRight": "Deny log on as a batch job",
    "SeDenyInteractiveLogonRight": "Deny log on locally",
    "SeDenyNetworkLogonRight": "Deny access to this computer from the network",
    "SeDenyRemoteInteractiveLogonRight": "Deny log on through Remote Desktop Services",
    "SeDenyServiceLogonRight": "Deny log on as a service",
    "SeIncreaseQuotaPrivilege": "Adjust memory quotas for a process",
    "SeInteractiveLogonRight": "Allow log on locally",
    "SeNetworkLogonRight": "Access this computer from the network",
    "SeRemoteInteractiveLogonRight": "Allow log on through Remote Desktop Services",
    "SeServiceLogonRight": "Log on as a service",
    "SeShutdownPrivilege": "Shut down the system",
}

PRESENT = "present"
ABSENT = "absent"


def counts_as_holder(sid: str, right: str) -> bool:
    """Whether the account holds ``right`` when the group ``sid`` of its token holds it: always, but for
    SERVICE (S-1-5-6) and an allowing logon right (see accounts.IMPLICIT_GROUPS: not relied on)."""
    return not (sid_key(sid) == SERVICE_LOGON and right in LOGON_RIGHTS and right not in DENY_OVERRIDES)


def display_name(right: str) -> str:
    return DISPLAY_NAMES.get(right, right)


class UnknownRightError(ValueError):
    """Names that are not user-right constants; the message lists the valid ones."""

    def __init__(self, unknown: list[str]) -> None:
        self.unknown = unknown
        guesses = [f"{name} (did you mean {guess}?)" if (guess := closest_right(name)) else name for name in unknown]
        super().__init__(
            f"unknown user right{'s' if len(unknown) > 1 else ''} {', '.join(guesses)}; "
            f"valid rights are: {', '.join(sorted(ALL_RIGHTS))}"
        )


def closest_right(name: str) -> str | None:
    """The right a misspelled name most likely means (``SeServiceLogonRigth``), or None."""
    match = difflib.get_close_matches(str(name).strip().casefold(), list(_CANONICAL), n=1, cutoff=0.85)
    return _CANONICAL[match[0]] if match else None


def canonical_right(name: str) -> str | None:
    """``seservicelogonright`` -> ``SeServiceLogonRight``; None when it is no right."""
    return _CANONICAL.get(str(name).strip().casefold())


def canonical_rights(names: Iterable[str]) -> list[str]:
    """The rights in canonical case, first occurrence order, without repeats.

    Raises UnknownRightError naming every unknown one (and listing the valid ones).
    """
    result: list[str] = []
    unknown: list[str] = []
    for name in names:
        right = canonical_right(name)
        if right is None:
            unknown.append(str(name))
        elif right not in result:
            result.append(right)
    if unknown:
        raise UnknownRightError(unknown)
    return result


def held_rights(rights: Iterable[str]) -> list[str]:
    """Rights as a host reports them, in canonical case where known (a host may hold rights
    this list does not know: they are kept as the host spells them), sorted."""
    seen: dict[str, str] = {}
    for right in rights:
        canonical = canonical_right(right) or str(right)
        seen.setdefault(canonical.casefold(), canonical)
    return sorted(seen.values(), key=str.casefold)


@dataclass(frozen=True)
class RightsPlan:
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    before: list[str] = field(default_factory=list)
    after: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed)


def plan_rights(current: Iterable[str], wanted: Iterable[str], state: str) -> RightsPlan:
    """What to add or remove so the account holds each of ``wanted`` directly (present) or none
    of them (absent). Other rights it holds are left alone."""
    before = held_rights(current)
    held = {right.casefold() for right in before}
    wanted = canonical_rights(wanted)
    if state == PRESENT:
        added = [right for right in wanted if right.casefold() not in held]
        removed: list[str] = []
    elif state == ABSENT:
        added = []
        removed = [right for right in wanted if right.casefold() in held]
    else:
        raise ValueError(f"state must be {PRESENT!r} or {ABSENT!r}, not {state!r}")
    gone = {right.casefold() for right in removed}
    after = held_rights([*(r for r in before if r.casefold() not in gone), *added])
    return RightsPlan(added=added, removed=removed, before=before, after=after)


def effective_rights(report: Mapping) -> dict[str, list[dict]]:
    """The rights the account gets through the groups of its token (local groups, domain groups,
    Everyone...): right -> [{name, sid}] of each group it comes from (e.g. SeShutdownPrivilege via
    Administrators)."""
    token = report.get("token_groups")
    names = {group["sid"]: group["name"] for group in (report.get("groups") or [] if token is None else token)}
    result: dict[str, list[dict]] = {}
    for group_sid, rights in (report.get("group_rights") or {}).items():
        if group_sid not in names:
            continue
        for right in held_rights(rights):
            if counts_as_holder(group_sid, right):
                result.setdefault(right, []).append(group_ref(group_sid, names[group_sid]))
    return {right: sorted(result[right], key=lambda g: g["name"].casefold()) for right in sorted(result, key=str.casefold)}


def _holders(report: Mapping, right: str) -> list[str]:
    holders = []
    if right.casefold() in {r.casefold() for r in report.get("rights") or []}:
        holders.append("directly")
    for group in effective_rights(report).get(right, []):
        holders.append(f"via {group['name']}")
    return holders


def deny_warnings(report: Mapping) -> list[str]:
    """A warning for each right the account holds that a deny right it also holds overrides."""
    warnings = []
    for deny, allow in DENY_OVERRIDES.items():
        deny_from = _holders(report, deny)
        allow_from = _holders(report, allow)
        if deny_from and allow_from:
            warnings.append(
                f"{report.get('name') or report.get('sid')} holds {allow} ({', '.join(allow_from)}) but {deny} "
                f"({', '.join(deny_from)}) overrides it: Windows denies that logon"
            )
    return warnings


# ---------------------------------------------------------------------------------------------
# Rights a domain Group Policy defines: at every policy refresh (about every 90 minutes, and at
# boot) the right's holders become exactly the policy's list, whatever the LSA was told since.

GPO_PATH = "Computer Configuration > Policies > Windows Settings > Security Settings > Local Policies > User Rights Assignment"


@dataclass(frozen=True)
class PolicyGap:
    """A right the account needs that a policy takes from it: ``right`` is defined by a policy for
    ``holders`` and neither the account nor a group it keeps is one; or (``deny``) a deny right the
    policy gives to the account or a group it keeps (``named``)."""

    right: str
    holders: tuple[dict, ...]  # {sid, name}; sid None for a name the host could not resolve
    deny: bool = False
    named: tuple[dict, ...] = ()


def policy_rights(report: Mapping) -> dict[str, list[dict]] | None:
    """The rights a domain policy defines on the host, right -> holders; {} when none (or a reading
    from before the host reported them); None when the host is a domain member whose policy result
    cannot be read."""
    policy = report.get("group_policy")
    if not isinstance(policy, Mapping):
        return {}
    if policy.get("known") is False:
        return None if policy.get("domain_member", True) else {}
    return {canonical_right(right) or str(right): list(holders or []) for right, holders in (policy.get("rights") or {}).items()}


def _holder_sids(holders: Iterable[Mapping]) -> set[str]:
    return {normalize_sid(str(h["sid"])) for h in holders if h.get("sid")}


# How a domain policy decides a right for the account (policy_holding).
POLICY_HOLDS = "holds"  # the account or a group it keeps is among the right's holders
POLICY_TAKES = "takes"  # neither is: every refresh takes the right from it
POLICY_UNKNOWN = "unknown"  # none it is known to keep is, and its domain groups could not be read


def _kept_sids(report: Mapping, leaving: Iterable[str]) -> set[str]:
    """The SIDs the account's token carries once it has left the groups ``leaving``: its own and its groups'."""
    return ({normalize_sid(str(report["sid"]))} | token_group_sids(report)) - {normalize_sid(str(sid)) for sid in leaving}


def policy_holding(report: Mapping, right: str, leaving: Iterable[str] = ()) -> str | None:
    """How a domain policy decides ``right`` for the account once it has left the groups ``leaving``:
    None when no policy defines it (a direct grant lasts), else POLICY_HOLDS, POLICY_TAKES or
    POLICY_UNKNOWN (the host could not read the account's domain groups, and none it knows of is a holder:
    one it could not read may be)."""
    holders = (policy_rights(report) or {}).get(right)
    if holders is None:
        return None
    if {sid for sid in _holder_sids(holders) & _kept_sids(report, leaving) if counts_as_holder(sid, right)}:
        return POLICY_HOLDS
    return POLICY_TAKES if token_groups_known(report) else POLICY_UNKNOWN


def policy_gaps(report: Mapping, rights: Iterable[str], leaving: Iterable[str] = ()) -> list[PolicyGap]:
    """The policy's verdict on ``rights`` for the account once it has left the groups ``leaving``
    (SIDs): each right a policy defines without the account or a group it keeps, and each deny
    counterpart a policy gives to one of them. A direct grant is no holder: the refresh undoes it.

    When the host could not read the account's domain groups (``token_groups_known`` false), a
    right whose holders are none of the groups it knows of is no gap: one of the groups it could not
    read may be a holder, so whether the policy takes the right cannot be told, and the unknown
    groups (DOMAIN_UNREACHABLE, TOKEN_GROUPS_UNKNOWN) are the cause to name. A deny right given to
    the account or a group it is known to keep is a gap all the same."""
    defined = policy_rights(report) or {}
    leaving = list(leaving)
    mine = _kept_sids(report, leaving)
    gaps: list[PolicyGap] = []
    for right in rights:
        if policy_holding(report, right, leaving) == POLICY_TAKES:
            gaps.append(PolicyGap(right, tuple(defined[right])))
        for deny in (d for d, allow in DENY_OVERRIDES.items() if allow == right and d in defined):
            named = tuple(h for h in defined[deny] if h.get("sid") and normalize_sid(str(h["sid"])) in mine)
            if named:
                gaps.append(PolicyGap(deny, tuple(defined[deny]), deny=True, named=named))
    return gaps


def _names(holders: Iterable[Mapping]) -> str:
    return ", ".join(str(h.get("name") or h.get("sid")) + (f" ({h['sid']})" if h.get("sid") and h.get("name") != h.get("sid") else "") for h in holders)


def policy_gap_text(gap: PolicyGap, who: str) -> str:
    """What the policy does to ``who`` (the account, as a message names it)."""
    setting = f"{gap.right} ('{display_name(gap.right)}')"
    if gap.deny:
        return (
            f"a domain Group Policy sets {setting} on this computer for {_names(gap.holders)}, which names {_names(gap.named)}:"
            f" every policy refresh denies {who} that logon again, whatever it holds"
        )
    return (
        f"a domain Group Policy sets {setting} on this computer for {_names(gap.holders) or 'no one'} only, and neither {who} nor a"
        " group it keeps is among them: every policy refresh (about every 90 minutes, and at each boot) resets the right to"
        " that list, so a direct grant does not last"
    )


def policy_gap_fix(gap: PolicyGap, who: str) -> str:
    setting = f"'{display_name(gap.right)}' ({gap.right}) in the GPO that sets it ({GPO_PATH})"
    if gap.deny:
        return f"take {who} (or its group named there) out of {setting}, then run again"
    return f"add {who} (or a group it keeps) to {setting}, then run again"
