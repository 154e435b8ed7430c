# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Account names and SIDs, the way Windows reads them: the one place for these rules.

An account is given as ``name``, ``.\\name`` (this computer), ``HOST\\name``, ``DOMAIN\\name``,
a UPN ``name@domain`` or a SID string ``S-1-...``. Names compare case-insensitively; accounts and
groups are compared by SID, never by display name.

Internal to this collection: not a public API; it may change in any release.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

# Error codes of account operations (HostOperationError.code), shared by every host.
ACCOUNT_NOT_FOUND = "ACCOUNT_NOT_FOUND"
ACCOUNT_AMBIGUOUS = "ACCOUNT_AMBIGUOUS"
DOMAIN_UNREACHABLE = "DOMAIN_UNREACHABLE"
# Why an account's domain groups are unknown for another cause than an unreachable domain (token_groups_error).
TOKEN_GROUPS_FAILED = "TOKEN_GROUPS_FAILED"
GROUP_NOT_FOUND = "GROUP_NOT_FOUND"
# What to do about an unreachable domain, and about groups that could not be read for another cause:
# the one wording of the findings (DOMAIN_UNREACHABLE, TOKEN_GROUPS_UNKNOWN) and the refusals that name them.
DOMAIN_UNREACHABLE_FIX = "restore the host's connection to a domain controller (nltest /sc_verify:<domain> checks it), then run again"
TOKEN_GROUPS_FAILED_FIX = (
    "correct what the error names (the account's groups are read through its UPN in its own domain), then run again"
)
NOT_A_GROUP = "NOT_A_GROUP"
REMOVAL_REFUSED = "REMOVAL_REFUSED"

# Well-known SIDs (MS-DTYP 2.4.2.4). BUILTIN groups have the same SID on every Windows, whatever
# their localized name, which is why groups are compared by SID.
ADMINISTRATORS = "S-1-5-32-544"
USERS = "S-1-5-32-545"
GUESTS = "S-1-5-32-546"
BUILTIN_DOMAIN = "BUILTIN"
BUILTIN_SID_PREFIX = "S-1-5-32-"
ADMINISTRATOR_RID = 500
GUEST_RID = 501

# English names of the BUILTIN groups: a task written for an English host also converges a
# host whose groups carry localized names (Administratoren, Administrateurs, ...).
WELL_KNOWN_GROUPS: dict[str, str] = {
    "administrators": ADMINISTRATORS,
    "users": USERS,
    "guests": GUESTS,
    "power users": "S-1-5-32-547",
    "account operators": "S-1-5-32-548",
    "server operators": "S-1-5-32-549",
    "print operators": "S-1-5-32-550",
    "backup operators": "S-1-5-32-551",
    "replicator": "S-1-5-32-552",
    "remote desktop users": "S-1-5-32-555",
    "network configuration operators": "S-1-5-32-556",
    "performance monitor users": "S-1-5-32-558",
    "performance log users": "S-1-5-32-559",
    "distributed com users": "S-1-5-32-562",
    "iis_iusrs": "S-1-5-32-568",
    "cryptographic operators": "S-1-5-32-569",
    "event log readers": "S-1-5-32-573",
    "hyper-v administrators": "S-1-5-32-578",
    "remote management users": "S-1-5-32-580",
}

# The accounts a service can log on as without a password (MS-DTYP 2.4.2.4). Windows maps these
# names before any name translation; the Service Control Manager shows LocalSystem as is.
NT_AUTHORITY = "NT AUTHORITY"
LOCAL_SYSTEM = "S-1-5-18"
LOCAL_SERVICE = "S-1-5-19"
NETWORK_SERVICE = "S-1-5-20"
SERVICE_ACCOUNT_NAMES: dict[str, str] = {LOCAL_SYSTEM: "SYSTEM", LOCAL_SERVICE: "LOCAL SERVICE", NETWORK_SERVICE: "NETWORK SERVICE"}
_SERVICE_ACCOUNTS: dict[str, str] = {
    "localsystem": LOCAL_SYSTEM,
    "system": LOCAL_SYSTEM,
    "nt authority\\system": LOCAL_SYSTEM,
    "localservice": LOCAL_SERVICE,
    "local service": LOCAL_SERVICE,
    "nt authority\\localservice": LOCAL_SERVICE,
    "nt authority\\local service": LOCAL_SERVICE,
    "networkservice": NETWORK_SERVICE,
    "network service": NETWORK_SERVICE,
    "nt authority\\networkservice": NETWORK_SERVICE,
    "nt authority\\network service": NETWORK_SERVICE,
}


# Groups every service logon token of an account carries without any membership (MS-DTYP 2.4.2.4):
# Everyone, Authenticated Users and SERVICE. A local group, a right or a policy that names one of them
# names the account too. (Logon-type SIDs of other logons, NETWORK or INTERACTIVE, are not among them.)
# One exception, to stay on the safe side: SERVICE is the logon-type SID, which the service logon itself
# adds to the token; whether the LSA lets an account log on as a service because SERVICE holds "Log on as
# a service" is documented nowhere this project relies on (domain notes 3, 4, 7). So SERVICE never counts
# as a holder of an allowing logon right (user_rights.counts_as_holder): a policy that gives the logon
# right to SERVICE alone is refused, not trusted. It still counts for deny rights and privileges.
EVERYONE = "S-1-1-0"
AUTHENTICATED_USERS = "S-1-5-11"
SERVICE_LOGON = "S-1-5-6"
IMPLICIT_GROUPS: dict[str, str] = {EVERYONE: "Everyone", AUTHENTICATED_USERS: "NT AUTHORITY\\Authenticated Users", SERVICE_LOGON: "NT AUTHORITY\\SERVICE"}
# The English names of the domains that are this computer's own, whatever it is joined to (its
# accounts never need a domain controller). Windows localizes them (VORDEFINIERT, NT-AUTORITÄT on a
# German host): an account is told a domain's by its SID (is_domain_account), never by these names.
LOCAL_AUTHORITIES = (BUILTIN_DOMAIN, NT_AUTHORITY, "NT SERVICE")


def is_domain_account(sid: str, domain: str | None, hostname: str, machine_prefix: str | None = None) -> bool:
    """Whether the account ``sid`` (of ``domain``, as NTAccount prints it) belongs to a domain, not to
    this computer: its groups can then only be read from a domain controller. Decided by the SID:
    only an account SID (``S-1-5-21-...``) can be a domain's (BUILTIN, NT AUTHORITY and NT SERVICE are
    never one, whatever name this Windows gives them), and it is the computer's own when it has the
    computer's prefix (``machine_prefix``, as is_domain_sid), or else its domain is the computer's name,
    which Windows never localizes."""
    if not is_sid(str(sid)) or not normalize_sid(str(sid)).startswith("S-1-5-21-"):
        return False
    if machine_prefix:
        return is_domain_sid(sid, machine_prefix)
    return bool(domain) and not names_equal(str(domain), hostname)


def service_account_sid(name: str) -> str | None:
    """S-1-5-18/19/20 for LocalSystem, LocalService, NetworkService in any of their spellings, else None."""
    return _SERVICE_ACCOUNTS.get(str(name).strip().casefold())


_SID = re.compile(r"^S-1-\d+(-\d+)+$", re.IGNORECASE)


class AccountError(Exception):
    """An account that cannot be resolved, or a change refused: a code (see above), a message naming the
    account, and, where one is known, the fix (a sentence without its full stop)."""

    def __init__(self, code: str, message: str, fix: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.fix = fix


def is_sid(text: str) -> bool:
    return bool(_SID.match(text.strip()))


def normalize_sid(text: str) -> str:
    """``s-1-5-32-544`` -> ``S-1-5-32-544``; raises ValueError for what is not a SID string."""
    text = text.strip()
    if not is_sid(text):
        raise ValueError(f"'{text}' is not a SID string")
    return "S" + text[1:]


def sid_key(text: object) -> str:
    """A SID as accounts are compared by: normalized, or, for what is no SID string, the text itself
    (which then equals no SID)."""
    text = str(text or "").strip()
    return normalize_sid(text) if is_sid(text) else text


def same_sid(left: object, right: object) -> bool:
    """Whether two SID strings name one account (``s-1-5-32-544`` and ``S-1-5-32-544`` do); empty never matches."""
    return bool(sid_key(left)) and sid_key(left) == sid_key(right)


def machine_sid_prefix(local_account_sids: Iterable[str]) -> str | None:
    """The SID prefix of a computer's own accounts (``S-1-5-21-a-b-c-``), taken from any of its local
    accounts' SIDs; None when none is given."""
    for sid in local_account_sids:
        if is_sid(sid) and normalize_sid(sid).startswith("S-1-5-21-"):
            return normalize_sid(sid).rsplit("-", 1)[0] + "-"
    return None


def is_domain_sid(sid: str, machine_prefix: str | None) -> bool:
    """Whether only a domain controller can map ``sid``: an account SID (``S-1-5-21-...``) outside the
    computer's own prefix. Its own accounts, BUILTIN and NT AUTHORITY are mapped (or not) by the
    computer itself, with no domain controller: an unmapped one is not found, never unreachable."""
    sid = normalize_sid(sid)
    return sid.startswith("S-1-5-21-") and not (machine_prefix and sid.startswith(machine_prefix))


def rid(sid: str) -> int:
    """The relative identifier: the last sub-authority of the SID."""
    return int(normalize_sid(sid).rsplit("-", 1)[1])


def is_builtin_administrator(sid: str) -> bool:
    """The account created with Windows (RID 500 in the machine's or a domain's S-1-5-21 space)."""
    sid = normalize_sid(sid)
    return sid.startswith("S-1-5-21-") and rid(sid) == ADMINISTRATOR_RID


def is_builtin_group(sid: str) -> bool:
    return normalize_sid(sid).startswith(BUILTIN_SID_PREFIX)


def names_equal(left: str, right: str) -> bool:
    """Windows compares account, group and domain names case-insensitively."""
    return left.casefold() == right.casefold()


def well_known_group_sid(name: str) -> str | None:
    """The SID of a BUILTIN group given by its English name (``Administrators``), else None."""
    return WELL_KNOWN_GROUPS.get(name.strip().casefold())


@dataclass(frozen=True)
class AccountName:
    """An account as the operator wrote it.

    ``domain`` is ``None`` for a bare name (Windows searches well-known, BUILTIN, local, then the
    domain), ``"."`` for ``.\\name``; ``upn_suffix`` is set for ``name@domain``; ``sid`` for a SID.
    """

    text: str
    name: str = ""
    domain: str | None = None
    upn_suffix: str | None = None
    sid: str | None = None

    @property
    def is_sid(self) -> bool:
        return self.sid is not None


def parse_account(text: str) -> AccountName:
    """Parse one account reference; raises ValueError for an empty or malformed one."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("an account name must not be empty")
    raw = text.strip()
    if is_sid(raw):
        return AccountName(text=raw, sid=normalize_sid(raw))
    if "\\" in raw:
        domain, _sep, name = raw.partition("\\")
        if not domain or not name or "\\" in name:
            raise ValueError(f"'{raw}' is not an account name (expected NAME, .\\NAME, DOMAIN\\NAME, NAME@DOMAIN or a SID)")
        return AccountName(text=raw, name=name, domain=domain)
    if "@" in raw:
        name, _sep, suffix = raw.rpartition("@")
        if not name or not suffix:
            raise ValueError(f"'{raw}' is not an account name (expected NAME, .\\NAME, DOMAIN\\NAME, NAME@DOMAIN or a SID)")
        return AccountName(text=raw, name=name, upn_suffix=suffix)
    return AccountName(text=raw, name=raw)


def same_account_by_name(left: str, right: str) -> bool:
    """Whether two references name one account by their text alone, where no SID can be looked up
    (the agent compares SIDs on the host): the same name in the same domain, a bare name and
    ``.\\name`` both meaning this computer. SIDs and UPNs match only as written."""
    try:
        first, second = parse_account(left), parse_account(right)
    except ValueError:
        return False
    if first.sid or second.sid or first.upn_suffix or second.upn_suffix:
        return names_equal(first.text, second.text)
    local = {None, "."}
    same_domain = (first.domain in local and second.domain in local) or (
        first.domain is not None and second.domain is not None and names_equal(first.domain, second.domain)
    )
    return same_domain and names_equal(first.name, second.name)


def qualified_name(name: str, domain: str | None) -> str:
    """``DOMAIN\\name`` as Windows' NTAccount prints it; a bare name when there is no domain."""
    return f"{domain}\\{name}" if domain else name


@dataclass(frozen=True)
class AccountRecord:
    """One account a host knows: its SID, name and domain (the computer's name for local ones)."""

    sid: str
    name: str
    domain: str
    type: str  # user | group | well_known


def account_domain(sid: str, declared: str | None, hostname: str) -> str:
    """The domain part of an account's NT name: as declared, BUILTIN for S-1-5-32, else the host."""
    if declared:
        return declared
    if is_sid(sid) and is_builtin_group(sid):
        return BUILTIN_DOMAIN
    return hostname


def _is_local(record: AccountRecord, hostname: str) -> bool:
    return names_equal(record.domain, hostname) or names_equal(record.domain, BUILTIN_DOMAIN)


def _upn_matches(record: AccountRecord, suffix: str) -> bool:
    # A UPN suffix is a DNS name (corp.example.com); the NetBIOS domain is usually its first label.
    return names_equal(record.domain, suffix) or names_equal(record.domain, suffix.split(".", 1)[0])


def resolve_account(text: str, records: Iterable[AccountRecord], hostname: str) -> AccountRecord:
    """The one account ``text`` names among ``records``, with Windows' matching rules.

    Raises AccountError: ACCOUNT_NOT_FOUND, ACCOUNT_AMBIGUOUS, or DOMAIN_UNREACHABLE for a
    ``DOMAIN\\name`` or UPN whose domain the host does not know.
    """
    try:
        wanted = parse_account(text)
    except ValueError as error:
        raise AccountError(ACCOUNT_NOT_FOUND, f"account '{text}': {error}") from None
    records = list(records)
    if wanted.sid is not None:
        for record in records:
            if normalize_sid(record.sid) == wanted.sid:
                return record
        raise AccountError(ACCOUNT_NOT_FOUND, f"account '{text}': no account has the SID {wanted.sid} on {hostname}")
    same_name = [r for r in records if names_equal(r.name, wanted.name)]
    known_domains = {r.domain.casefold() for r in records} | {hostname.casefold(), BUILTIN_DOMAIN.casefold()}
    if wanted.domain is not None:
        domain = hostname if wanted.domain == "." else wanted.domain
        if domain.casefold() not in known_domains:
            raise AccountError(
                DOMAIN_UNREACHABLE, f"account '{text}': the domain '{domain}' cannot be reached from {hostname} to resolve it"
            )
        candidates = [r for r in same_name if names_equal(r.domain, domain)]
        if not candidates and names_equal(domain, hostname):
            # HOST\Administrators resolves to BUILTIN\Administrators on Windows too.
            candidates = [r for r in same_name if names_equal(r.domain, BUILTIN_DOMAIN)]
    elif wanted.upn_suffix is not None:
        candidates = [r for r in same_name if _upn_matches(r, wanted.upn_suffix)]
        if not candidates and not any(_upn_matches(r, wanted.upn_suffix) for r in records):
            raise AccountError(
                DOMAIN_UNREACHABLE,
                f"account '{text}': the domain '{wanted.upn_suffix}' cannot be reached from {hostname} to resolve it",
            )
    else:
        candidates = same_name
        if len(candidates) > 1:
            # Windows looks in BUILTIN and the local accounts before any domain.
            local = [r for r in candidates if _is_local(r, hostname)]
            candidates = local or candidates
    if not candidates:
        raise AccountError(ACCOUNT_NOT_FOUND, f"account '{text}' does not exist on {hostname}")
    if len(candidates) > 1:
        found = ", ".join(sorted(qualified_name(r.name, r.domain) for r in candidates))
        raise AccountError(
            ACCOUNT_AMBIGUOUS, f"account '{text}' is ambiguous on {hostname}: it names {found}; give DOMAIN\\name or a SID"
        )
    return candidates[0]


def resolve_local_group(text: str, groups: Mapping[str, str], hostname: str) -> tuple[str, str] | None:
    """A local group ``(sid, name)`` from a name or SID, among ``groups`` (SID -> local name).

    The local name wins; an English BUILTIN name (``Administrators``) falls back to its
    well-known SID, so one task converges hosts in any language. None when there is no such group.
    """
    raw = text.strip()
    by_sid = {normalize_sid(sid): name for sid, name in groups.items()}
    if is_sid(raw):
        sid = normalize_sid(raw)
        return (sid, by_sid[sid]) if sid in by_sid else None
    name = raw
    if "\\" in raw:
        domain, _sep, name = raw.partition("\\")
        if domain != "." and not names_equal(domain, BUILTIN_DOMAIN) and not names_equal(domain, hostname):
            return None  # a domain group is not a local group
    for sid, local_name in by_sid.items():
        if names_equal(local_name, name):
            return sid, local_name
    alias = well_known_group_sid(name)
    if alias is not None and alias in by_sid:
        return alias, by_sid[alias]
    return None


def group_ref(sid: str, name: str) -> dict:
    """A group as the modules return it."""
    return {"name": name, "sid": sid}


def same_account(reference: str, name: str, domain: str, hostname: str) -> bool:
    """Whether ``reference`` (as the Service Control Manager shows a logon account: ``.\\name``,
    ``HOST\\name``, ``DOMAIN\\name``, a UPN or a SID) names the account ``domain\\name`` of a host
    called ``hostname``, by text alone (where no SID is at hand)."""
    try:
        wanted = parse_account(reference)
    except ValueError:
        return False
    account_name = name.rpartition("\\")[2]
    if wanted.sid is not None or wanted.upn_suffix is not None:
        return names_equal(wanted.text, name) or names_equal(wanted.text, account_name)
    if not names_equal(wanted.name, account_name):
        return False
    local = wanted.domain in (None, ".") or names_equal(wanted.domain or "", hostname)
    if local:
        return not domain or names_equal(domain, hostname) or names_equal(domain, BUILTIN_DOMAIN)
    return names_equal(wanted.domain or "", domain)
