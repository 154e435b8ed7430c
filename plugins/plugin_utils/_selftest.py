# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""worker_selftest: every remote operation, along the paths a converge takes, in a sandbox, each answer
held to the host contract: the sandbox; files (read, create, a stale hash refused, a replace without and
with a backup, with nothing left beside the file, which the sandbox's removal lists); the account
(its reading, an unknown right refused, a privilege and a logon right granted and revoked, a
membership added and removed); what the domain-farm work adds to every account reading (the token
groups, the group closure, the rights a domain Group Policy defines), checked on the readings the
test takes anyway, of the sandbox user and of the agent's own account, so at no extra call; the agent
(the reading, also of a named account, and a start that changes nothing on a running service).

The sequence and the expectations are here, pure: :func:`run_selftest` takes anything with
``call(operation, **parameters)`` (a Host), so tests drive it with a fake. Each step yields one line,
``<step>: ok``, ``<step>: <what differs>``, ``<step>: skipped (<why>)``, or ``<step>: unknown (<why>)``
when the host answered as the contract says it must when it cannot know (a domain controller out of
reach): no difference, and not proven either. A step is named after its operation first.

Shapes: ``SHAPES`` holds the fields both implementations (PowerShell and the simulated worker)
return today, and are required; ``V2_SHAPES`` the fields host contract v2 adds. A v2 field is
checked for its type when it is present, and required only with ``require_v2`` (switch it on once
every host implements v2).

Internal to this collection: not a public API; it may change in any release.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host import sha256_hex
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host.errors import FILE_CHANGED, HostOperationError
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._windows.accounts import (
    DOMAIN_UNREACHABLE,
    IMPLICIT_GROUPS,
    TOKEN_GROUPS_FAILED,
    is_domain_account,
    is_sid,
    names_equal,
    normalize_sid,
)
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._windows.user_rights import canonical_right

CALL_FAILED = "the call failed: "  # what a step says when its call raised instead of answering (the connection)

DEFAULT_SANDBOX = "cmf-selftest"
# A logon right and a privilege, as a converge grants both kinds (SeServiceLogonRight,
# SeIncreaseQuotaPrivilege ...): harmless on a disabled user that is deleted minutes later.
TEST_RIGHTS = ["SeBatchLogonRight", "SeIncreaseQuotaPrivilege"]
UNKNOWN_RIGHT_NAME = "SeCmfSelftestNoSuchRight"
# Non-ASCII and CRLF on purpose: the bytes must come back as they were sent, not re-encoded.
TEST_BYTES = "# deadline_cloud.cmf self-test\r\nkey = \"Grüße 👋\"\r\n".encode()
OTHER_BYTES = b"# not what the file holds\n"
REPLACED_BYTES = b"# replaced by the self-test, as a converge replaces worker.toml\n[os]\r\n"
FILE_NAME = "selftest.txt"
ABSENT_NAME = "absent.txt"
# What the sandbox folder must hold at the end: its marker file, the test file and the one backup.
# A temporary file or a swapped-out original of a replace (~cmf*.tmp, ~cmf*.old) is a difference.
SANDBOX_MARKER_FILE = ".deadline-cloud-cmf-sandbox"
SERVICE_TIMEOUT = 60

STR, BOOL, INT, LIST, DICT, NONE = str, bool, int, list, dict, type(None)

# field path -> accepted types; "a.b" is a key of a mapping, "a[].b" a key of each element of a list.
SHAPES: dict[str, dict[str, tuple]] = {
    "sandbox": {
        "user": (DICT,), "user.name": (STR,), "user.sid": (STR, NONE),
        "group": (DICT,), "group.name": (STR,), "group.sid": (STR, NONE),
        "folder": (STR,),
    },
    "read_file": {"exists": (BOOL,), "content": (STR,), "sha256": (STR,)},
    "write_file": {"sha256": (STR,), "backup_file": (STR, NONE)},
    "read_account": {
        "hostname": (STR,), "sid": (STR,), "name": (STR,), "domain": (STR,), "type": (STR,), "enabled": (BOOL,),
        "groups": (LIST,), "groups[].name": (STR,), "groups[].sid": (STR,),
        "rights": (LIST,), "group_rights": (DICT,),
        "local_groups": (LIST,), "local_groups[].name": (STR,), "local_groups[].sid": (STR,),
        "group_members": (DICT,), "connection_sid": (STR, NONE),
        # What the domain-farm work adds: both hosts give it, and the role's refusals rest on it.
        "token_groups": (LIST,), "token_groups[].sid": (STR,), "token_groups[].name": (STR,), "token_groups[].scope": (STR,),
        "token_groups_known": (BOOL,), "token_groups_error": (DICT, NONE), "token_groups_error.code": (STR,),
        "token_groups_error.message": (STR,),
        "group_policy": (DICT,), "group_policy.known": (BOOL,), "group_policy.domain_member": (BOOL,),
        "group_policy.rights": (DICT,), "group_policy.error": (STR, NONE),
    },
    "set_user_rights": {"added": (LIST,), "removed": (LIST,), "before": (LIST,), "report": (DICT,)},
    "set_group_membership": {"added": (LIST,), "removed": (LIST,), "before": (LIST,), "report": (DICT,)},
    "read_agent_info": {
        "agent": (DICT,), "agent.version": (STR, NONE), "agent.location": (STR, NONE), "agent.python": (STR, NONE),
        "agent.error": (STR, NONE),
        "service": (DICT,), "service.name": (STR,), "service.exists": (BOOL,),
        "machine_environment": (DICT,), "account": (DICT, NONE), "account_error": (DICT, NONE),
        "config": (DICT,), "config.path": (STR,), "config.exists": (BOOL,), "config.content": (STR,),
        "config.modified_at": (STR, NONE),
    },
    "control_service": {
        "changed": (BOOL,), "state": (STR,), "restarted": (BOOL,), "healthy": (BOOL,), "pid": (INT, NONE),
        "previous_pid": (INT, NONE), "error": (STR, NONE), "log_tail": (LIST,),
    },
}

# What host contract v2 adds (see the contract's NEW and CHANGED items).
V2_SHAPES: dict[str, dict[str, tuple]] = {
    "sandbox": {"files": (LIST,)},
    "write_file": {"warnings": (LIST,)},
    "read_account": {"groups[].indirect": (BOOL,)},
    "read_agent_info": {
        "user_environment": (DICT, NONE), "service.account_sid": (STR, NONE),
        "service.service_specific_exit_code": (INT, NONE), "config.sha256": (STR,),
        "service.token_administrators": (BOOL, NONE), "service.token_error": (STR, NONE),
        "sessions": (DICT,), "sessions.busy": (BOOL,), "sessions.count": (INT,), "sessions.ids": (LIST,),
        "sessions.processes": (LIST,), "sessions.directories": (LIST,), "sessions.root": (STR,),
        "sessions.worker_id": (STR, NONE),
    },
    "control_service": {
        "win32_error": (INT, NONE), "exit_code": (INT, NONE), "service_specific_exit_code": (INT, NONE),
        "busy": (BOOL,), "sessions": (DICT, NONE), "interrupted": (INT,), "events": (LIST,), "reading": (DICT, NONE),
    },
}


class Caller(Protocol):
    def call(self, operation: str, /, **parameters: Any) -> dict:
        """The answer of one remote operation (a Host's call)."""


_MISSING = object()


def _values(answer: Any, path: str) -> Iterator[tuple[str, Any]]:
    """Each value at ``path`` with its concrete name (``groups[0].sid``); _MISSING where a key is absent."""
    head, _dot, rest = path.partition(".")
    is_list = head.endswith("[]")
    key = head[:-2] if is_list else head
    if not isinstance(answer, dict):
        return
    value = answer.get(key, _MISSING)
    if value is _MISSING or not is_list:
        if not rest or value is _MISSING:
            yield key, value
        else:
            for name, inner in _values(value, rest):
                yield f"{key}.{name}", inner
        return
    if not isinstance(value, list):
        return  # the list's own type is checked by its own path
    for index, element in enumerate(value):
        for name, inner in _values(element, rest):
            yield f"{key}[{index}].{name}", inner


def _type_names(types: tuple) -> str:
    return " or ".join("null" if t is NONE else t.__name__ for t in types)


def _is_a(value: Any, types: tuple) -> bool:
    if isinstance(value, bool) and BOOL not in types:
        return False  # JSON's true is not a number
    return isinstance(value, types)


def shape_differences(operation: str, answer: Any, require_v2: bool = False) -> list[str]:
    """How ``answer`` differs from the shape the contract gives ``operation``'s result."""
    if not isinstance(answer, dict):
        return [f"the answer is {type(answer).__name__}, not an object"]
    found: list[str] = []
    for shapes, required in ((SHAPES, True), (V2_SHAPES, require_v2)):
        for path, types in shapes.get(operation, {}).items():
            for name, value in _values(answer, path):
                if value is _MISSING:
                    # a missing parent is reported once, by its own path
                    if required and name.count(".") == path.count("."):
                        found.append(f"{name} is missing")
                elif not _is_a(value, types):
                    found.append(f"{name} is {_type_names((type(value),))}, not {_type_names(types)}")
    return found


@dataclass
class Step:
    name: str  # "<operation> <what>"
    operation: str
    differences: list[str] = field(default_factory=list)
    skipped: str | None = None
    unknown: str | None = None  # the host said, as the contract has it, that it cannot know (and why)

    @property
    def ok(self) -> bool:
        return not self.differences

    @property
    def line(self) -> str:
        if self.skipped:
            return f"{self.name}: skipped ({self.skipped})"
        if self.ok and self.unknown:
            return f"{self.name}: unknown ({self.unknown})"
        return f"{self.name}: " + ("ok" if self.ok else "; ".join(self.differences))

    def as_dict(self) -> dict:
        return {
            "step": self.name, "operation": self.operation, "ok": self.ok, "skipped": self.skipped, "unknown": self.unknown,
            "differences": list(self.differences),
        }


class StepFailed(Exception):
    """A call failed in a way that leaves the following steps nothing to test: stop, then clean up."""


@dataclass
class Options:
    service: str
    config_path: str
    sandbox: str = DEFAULT_SANDBOX
    require_v2: bool = False


@dataclass
class Selftest:
    steps: list[Step] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(step.ok for step in self.steps)

    @property
    def lines(self) -> list[str]:
        return [step.line for step in self.steps]

    @property
    def failed_steps(self) -> list[str]:
        return [step.name for step in self.steps if not step.ok]

    @property
    def unknown_steps(self) -> list[Step]:
        return [step for step in self.steps if step.ok and step.unknown]


# Semantic checks: each takes the answer (and what it needs) and returns the differences.
def file_differences(answer: dict, data: bytes | None) -> list[str]:
    """A read_file answer against the bytes the file should hold (None: it should not exist)."""
    found: list[str] = []
    if data is None:
        if answer.get("exists") is not False:
            found.append("exists is not false for a file that does not exist")
        if answer.get("sha256") != "":
            found.append(f"sha256 is {answer.get('sha256')!r}, not '' for a file that does not exist")
        return found
    if answer.get("exists") is not True:
        return ["exists is not true for the file just written"]
    try:
        content = base64.b64decode(str(answer.get("content")), validate=True)
    except (binascii.Error, ValueError):
        return ["content is not base64"]
    if content != data:
        found.append(f"content reads back as {content[:40]!r}, not the {len(data)} bytes written")
    if str(answer.get("sha256")) != sha256_hex(data):
        found.append(f"sha256 is {answer.get('sha256')!r}, not {sha256_hex(data)} (lower-case hex of the bytes)")
    return found


def rights_differences(report: dict, rights_wanted: str | list[str], held: bool) -> list[str]:
    rights = report.get("rights")
    if not isinstance(rights, list):
        return [f"rights is {type(rights).__name__}, not a list"]
    found = []
    for right in [rights_wanted] if isinstance(rights_wanted, str) else rights_wanted:
        if any(names_equal(str(r), right) for r in rights) != held:
            found.append(f"rights are {rights}: {right} should {'' if held else 'not '}be held")
    return found


def membership_differences(report: dict, group_sid: str, member: bool, where: str = "groups") -> list[str]:
    """Whether the group ``group_sid`` is among the report's ``groups`` (or ``token_groups``) as it should be."""
    groups = report.get(where)
    if not isinstance(groups, list):
        return [f"{where} is {type(groups).__name__}, not a list"]
    entries = {normalize_sid(str(g["sid"])): g for g in groups if isinstance(g, dict) and is_sid(str(g.get("sid")))}
    if (normalize_sid(group_sid) in entries) != member:
        return [f"{where} are {list(entries)}: {group_sid} should {'' if member else 'not '}be among them"]
    scope = entries[normalize_sid(group_sid)].get("scope") if member else None
    if where == "token_groups" and member and scope != "local":
        return [f"token_groups gives {group_sid} the scope {scope!r}, not 'local' for a local group"]
    return []


def change_differences(answer: dict, added: list, removed: list, key: Callable[[Any], str] = str) -> list[str]:
    """set_user_rights / set_group_membership: exactly this was added and removed."""
    found = []
    for name, wanted in (("added", added), ("removed", removed)):
        got = answer.get(name)
        if isinstance(got, list) and sorted(key(g).casefold() for g in got) != sorted(key(w).casefold() for w in wanted):
            found.append(f"{name} is {got}, not {wanted}")
    return found


def write_differences(answer: dict, data: bytes, backup_expected: bool, folder: str) -> list[str]:
    """A write_file answer: the new bytes' hash, a backup file beside the target exactly when one was
    asked for, and nothing left behind (its warnings, where the host gives them)."""
    found = []
    if answer.get("sha256") != sha256_hex(data):
        found.append(f"sha256 is {answer.get('sha256')!r}, not {sha256_hex(data)}")
    backup = answer.get("backup_file")
    if not backup_expected and backup is not None:
        found.append(f"backup_file is {backup!r} without a backup")
    if backup_expected and not (isinstance(backup, str) and backup.casefold().startswith(f"{folder}\\{FILE_NAME}.".casefold())):
        found.append(f"backup_file is {backup!r}, not a file beside {FILE_NAME}")
    if answer.get("warnings"):
        found.append(f"the write left something behind: {answer['warnings']}")
    return found


def leftover_differences(answer: dict, expected: list[str]) -> list[str]:
    """The sandbox folder's files as its removal found them (sandbox absent's ``files``, where the host
    gives them): exactly ``expected``, so no temporary or swapped-out file of a replace was left."""
    files = answer.get("files")
    if not isinstance(files, list):
        return []  # a host before contract v2: its shape check says whether that is allowed
    extra = sorted(str(f) for f in files if str(f).casefold() not in {e.casefold() for e in expected})
    missing = sorted(e for e in expected if e.casefold() not in {str(f).casefold() for f in files})
    return [f"the sandbox folder held {extra}, left behind"] * bool(extra) + [f"the sandbox folder lacked {missing}"] * bool(missing)


def sandbox_differences(answer: dict, name: str, present: bool) -> list[str]:
    found = []
    user, group = answer.get("user") or {}, answer.get("group") or {}
    if isinstance(user, dict) and not names_equal(str(user.get("name", "")).rpartition("\\")[2], name):
        found.append(f"user.name is {user.get('name')!r}, not {name!r}")
    if isinstance(group, dict) and not names_equal(str(group.get("name", "")).rpartition("\\")[2], f"{name}g"):
        found.append(f"group.name is {group.get('name')!r}, not {name + 'g'!r}")
    if present:
        for what, entry in (("user", user), ("group", group)):
            if isinstance(entry, dict) and not is_sid(str(entry.get("sid"))):
                found.append(f"{what}.sid is {entry.get('sid')!r}, not a SID")
        if not str(answer.get("folder") or "").rstrip("\\").casefold().endswith("\\" + name.casefold()):
            found.append(f"folder is {answer.get('folder')!r}, not a folder called {name}")
    return found


# ---------------------------------------------------------------------------------------------
# What the domain-farm work adds to an account reading (read_account's report, and the account of
# read_agent_info): the token groups and whether they are known, the rights of each, and the rights a
# domain Group Policy defines. Checked against what the reading defines them to be (read_account.ps1).

TOKEN_GROUP_SCOPES = ("local", "domain", "well_known")
# Why a host leaves an account's domain groups unknown, as the contract names it.
TOKEN_GROUPS_ERROR_CODES = (DOMAIN_UNREACHABLE, TOKEN_GROUPS_FAILED)
# The answer's fields that hold this reading (each step on them names their shape differences too).
CLOSURE_FIELDS = ("token_groups", "token_groups_known", "token_groups_error", "group_rights")
POLICY_FIELDS = ("group_policy",)


def _sid_set(values: Any) -> set[str]:
    return {normalize_sid(str(v)) for v in values or [] if is_sid(str(v))}


def _entry_sids(entries: Any) -> set[str]:
    return _sid_set(e.get("sid") for e in entries or [] if isinstance(e, dict)) if isinstance(entries, list) else set()


def _who(report: dict) -> str:
    return f"{report.get('name') or report.get('sid')} ({report.get('sid')})"


def _named(error: Any) -> bool:
    return isinstance(error, dict) and error.get("code") in TOKEN_GROUPS_ERROR_CODES and bool(str(error.get("message") or "").strip())


def field_shape_differences(report: dict, fields: tuple[str, ...]) -> list[str]:
    """The shape differences of an account report in ``fields`` alone."""
    return [d for d in shape_differences("read_account", report) if d.split(" ", 1)[0].split(".", 1)[0].split("[", 1)[0] in fields]


def members_of(report: dict) -> dict[str, set[str]]:
    """group SID -> the SIDs of its members, as the reading lists them (the account's own local groups)."""
    members = report.get("group_members")
    if not isinstance(members, dict):
        return {}
    return {normalize_sid(str(k)): _entry_sids(v) for k, v in members.items() if is_sid(str(k))}


def closure_differences(report: dict, members_known: dict[str, set[str]] | None = None) -> list[str]:
    """The account's token groups against what the reading defines them to be: every group its service
    logon carries, as SIDs with a scope (local, domain, well_known); Everyone, Authenticated Users and
    SERVICE in any account's (not a group's); its local token groups exactly its ``groups``, each holding
    the account or a group of its token (``indirect`` when not the account itself); ``group_rights`` read
    for each token group and only those; known, or unknown with the contract's named error; a local
    account's always known and without domain groups (a domain group holds domain accounts only).
    ``members_known`` (group SID -> member SIDs, from the other readings of the run) adds: a local group
    that holds the account or a group of its token is among its token groups (Users, which holds
    Authenticated Users on Windows from its installation, whenever a reading lists its members)."""
    token = report.get("token_groups")
    if not isinstance(token, list):
        return []  # its shape difference says so
    found: list[str] = []
    sid = normalize_sid(str(report["sid"])) if is_sid(str(report.get("sid"))) else ""
    scopes: dict[str, Any] = {}
    for group in (g for g in token if isinstance(g, dict)):
        if not is_sid(str(group.get("sid"))):
            found.append(f"token_groups holds {group.get('sid')!r}, not a SID")
            continue
        key = normalize_sid(str(group["sid"]))
        if key in scopes:
            found.append(f"token_groups holds {key} twice")
        scopes[key] = group.get("scope")
        if group.get("scope") not in TOKEN_GROUP_SCOPES:
            found.append(f"token_groups gives {key} the scope {group.get('scope')!r}, not one of {', '.join(TOKEN_GROUP_SCOPES)}")
    if sid in scopes:
        found.append(f"token_groups holds the account's own SID {sid}")
    if report.get("type") != "group":
        for implicit, name in IMPLICIT_GROUPS.items():
            if scopes.get(implicit) != "well_known":
                found.append(
                    f"token_groups lacks {name} ({implicit}), which every service logon carries" if implicit not in scopes
                    else f"token_groups gives {name} ({implicit}) the scope {scopes[implicit]!r}, not 'well_known'"
                )

    known, error = report.get("token_groups_known"), report.get("token_groups_error")
    if known is True and error is not None:
        found.append(f"token_groups_error is {error!r} while token_groups_known is true")
    if known is False and not _named(error):
        found.append(f"token_groups_known is false and token_groups_error is {error!r}, not a code of {', '.join(TOKEN_GROUPS_ERROR_CODES)} "
                     "with a message: the reading must say why the groups are unknown")
    if not is_domain_account(str(report.get("sid") or ""), str(report.get("domain") or ""), str(report.get("hostname") or "")):
        if known is False:
            found.append(f"token_groups_known is false for {_who(report)}, an account of {report.get('domain')!r}: an account of the"
                         " host's own is in no domain group, so its groups are known without a domain controller")
        domain_scoped = sorted(k for k, scope in scopes.items() if scope == "domain")
        if domain_scoped:
            found.append(f"token_groups gives {_who(report)}, an account of the host's own, the domain groups {domain_scoped}:"
                         " a domain group holds domain accounts only")

    groups = [g for g in report.get("groups") or [] if isinstance(g, dict) and is_sid(str(g.get("sid")))]
    group_sids = {normalize_sid(str(g["sid"])) for g in groups}
    local = {k for k, scope in scopes.items() if scope == "local"}
    if local != group_sids:
        found.append(f"the local token groups are {sorted(local)} and groups are {sorted(group_sids)}: they must be the same")
    listed = _entry_sids(report.get("local_groups"))
    if local - listed:
        found.append(f"token_groups gives {sorted(local - listed)} the scope 'local', but local_groups does not list them")
    rights_of = report.get("group_rights")
    if isinstance(rights_of, dict):
        read = _sid_set(rights_of)
        if read != set(scopes):
            found.append(f"group_rights is read for {sorted(read)}, not for the token groups {sorted(scopes)}")
        found += [f"group_rights[{k}] is {type(v).__name__}, not list" for k, v in rights_of.items() if not isinstance(v, list)]

    members = members_of(report)
    carried = {sid} | set(scopes)
    for group in groups:
        key = normalize_sid(str(group["sid"]))
        held = members.get(key)
        if held is None:
            found.append(f"group_members lacks {group.get('name')} ({key}), one of the account's groups")
            continue
        if not held & carried:
            found.append(f"{group.get('name')} ({key}) is among groups, but its members hold neither the account nor a group of its token")
        elif isinstance(group.get("indirect"), bool) and group["indirect"] == (sid in held):
            found.append(f"groups gives {group.get('name')} ({key}) indirect {group['indirect']}, but the account is"
                         f" {'' if sid in held else 'not '}a member itself")
    for group_sid, held in (members_known or {}).items():
        through = held & ({sid} | {k for k, scope in scopes.items() if scope in ("well_known", "domain")})
        if group_sid in listed and group_sid not in scopes and through:
            found.append(f"{group_sid} holds {sorted(through)} (as another reading lists its members), but is not among token_groups")
    return found


def closure_unknown(report: dict) -> str | None:
    """Why the account's domain groups are unknown, when the host names it as the contract says."""
    error = report.get("token_groups_error")
    if report.get("token_groups_known") is False and _named(error):
        return f"the domain groups of {_who(report)} were not read, {error['code']}: {error['message']}"
    return None


def policy_differences(report: dict) -> list[str]:
    """``group_policy`` against what the reading defines: known without an error, or unknown with the
    error named, on a domain member only (a host outside a domain has no domain policy, so no right it
    defines); its rights known user-right names, each holder a SID (or null, with the name the policy
    gives, when the host cannot resolve it)."""
    policy = report.get("group_policy")
    if not isinstance(policy, dict):
        return []  # its shape difference says so
    found: list[str] = []
    known, member, error, rights = policy.get("known"), policy.get("domain_member"), policy.get("error"), policy.get("rights")
    if known is True and error is not None:
        found.append(f"group_policy.error is {error!r} while group_policy.known is true")
    if known is False and not str(error or "").strip():
        found.append("group_policy.known is false and group_policy.error does not say why")
    if known is False and member is False:
        found.append("group_policy.known is false on a host that is no domain member, which has no domain policy to read")
    if not isinstance(rights, dict):
        return found
    if rights and (known is False or member is False):
        found.append(f"group_policy.rights holds {sorted(rights)} on a host {'outside a domain' if member is False else 'whose policy is unknown'}")
    for right, holders in rights.items():
        if canonical_right(str(right)) is None:
            found.append(f"group_policy.rights names {right!r}, which is no user right")
        if not isinstance(holders, list):
            found.append(f"group_policy.rights.{right} is {type(holders).__name__}, not list")
            continue
        for index, holder in enumerate(holders):
            place = f"group_policy.rights.{right}[{index}]"
            if not isinstance(holder, dict):
                found.append(f"{place} is {type(holder).__name__}, not an object")
            elif holder.get("sid") is not None and not is_sid(str(holder.get("sid"))):
                found.append(f"{place}.sid is {holder.get('sid')!r}, not a SID")
            elif not (isinstance(holder.get("name"), str) and holder["name"].strip()):
                found.append(f"{place}.name is {holder.get('name')!r}, not the holder's name")
    return found


def policy_unknown(report: dict) -> str | None:
    policy = report.get("group_policy")
    if isinstance(policy, dict) and policy.get("known") is False and policy.get("domain_member") is True and str(policy.get("error") or "").strip():
        return f"the rights a domain Group Policy defines here were not read: {policy['error']}"
    return None


def _policy_view(report: dict) -> tuple:
    """group_policy as comparable: known, domain_member, right -> holder SIDs (or names)."""
    policy = report.get("group_policy") if isinstance(report.get("group_policy"), dict) else {}
    rights = policy.get("rights") if isinstance(policy.get("rights"), dict) else {}
    return (
        policy.get("known"),
        policy.get("domain_member"),
        {str(right).casefold(): sorted(str(h.get("sid") or h.get("name")) for h in holders if isinstance(h, dict))
         for right, holders in rights.items() if isinstance(holders, list)},
    )


def reading_checks(report: dict, sid: str, same_as: dict | None = None, members_known: dict[str, set[str]] | None = None) -> list[str]:
    """An account report inside a reading (read_agent_info's ``account``) of the account ``sid``: its
    shape, its token groups and group policy as :func:`closure_differences` and
    :func:`policy_differences` hold them, and the same token groups and policy as read_account gave
    for the account (``same_as``): both operations build one report."""
    found = shape_differences("read_account", report)
    if normalize_sid(str(report.get("sid"))) != normalize_sid(sid):
        found.append(f"account.sid is {report.get('sid')!r}, not {sid}")
    found += closure_differences(report, members_known) + policy_differences(report)
    if same_as:
        mine, theirs = _entry_sids(report.get("token_groups")), _entry_sids(same_as.get("token_groups"))
        if mine != theirs:
            found.append(f"account.token_groups are {sorted(mine)}, and read_account's were {sorted(theirs)}")
        if _policy_view(report) != _policy_view(same_as):
            found.append("account.group_policy differs from read_account's, though both read the one policy result of the host")
    return found


def _named_account_error(error: Any) -> bool:
    return isinstance(error, dict) and bool(str(error.get("code") or "").strip()) and bool(str(error.get("message") or "").strip())


def _sid_of(answer: dict, what: str) -> str:
    return str((answer.get(what) or {}).get("sid") or "")


class _Run:
    """One self-test run: the steps so far, and the sandbox once it exists."""

    def __init__(self, host: Caller, options: Options) -> None:
        self.host = host
        self.options = options
        self.result = Selftest()
        self.folder_files: list[str] | None = None  # what the sandbox folder should hold at the end, once known
        self.user_sid = ""
        self.group_sid = ""
        # What the run's account readings list as the members of local groups (the sandbox group left
        # out: the test changes it), for the closure each other reading must agree with.
        self.members_known: dict[str, set[str]] = {}
        self.user_reading: dict = {}  # the sandbox user's latest read_account report

    def step(self, name: str, operation: str, parameters: dict, check: Callable[[dict], list[str]] | None = None, *,
             refusal: str | None = None) -> dict:
        """One call: its shape and ``check``'s semantics, or the refusal code it must raise."""
        step = Step(name, operation)
        self.result.steps.append(step)
        try:
            answer = self.host.call(operation, **parameters)
        except HostOperationError as error:
            if refusal is not None and error.code == refusal:
                return {}
            step.differences.append(f"refused with {error.code}: {error.message}" if refusal is None
                                    else f"refused with {error.code}, not {refusal}: {error.message}")
            raise StepFailed(name) from None
        except Exception as error:  # the connection itself: nothing after this step can be trusted
            step.differences.append(f"{CALL_FAILED}{error}")
            raise StepFailed(name) from None
        if refusal is not None:
            step.differences.append(f"succeeded where the contract says {refusal}")
            return answer
        step.differences.extend(shape_differences(operation, answer, self.options.require_v2))
        if check is not None and isinstance(answer, dict):
            step.differences.extend(check(answer))
        return answer

    def skip(self, name: str, operation: str, why: str) -> None:
        self.result.steps.append(Step(name, operation, skipped=why))

    def observe(self, name: str, operation: str, report: Any, *, fields: tuple[str, ...], check: Callable[[dict], list[str]],
                unknown: Callable[[dict], str | None] | None = None) -> None:
        """A step on an answer already taken (no call): the shape of ``fields`` and ``check``'s semantics;
        ``unknown`` says why the host could not know, when it said so as the contract has it."""
        if not isinstance(report, dict) or not report:
            self.skip(name, operation, "the reading it checks was not given")
            return
        step = Step(name, operation, differences=field_shape_differences(report, fields) + check(report))
        step.unknown = unknown(report) if unknown is not None else None
        self.result.steps.append(step)

    def learn_members(self, report: Any) -> None:
        if isinstance(report, dict):
            self.members_known.update({k: v for k, v in members_of(report).items() if k != self.group_sid})

    def sequence(self) -> None:
        name = self.options.sandbox
        box = self.step("sandbox present", "sandbox", {"name": name, "state": "present"},
                        lambda a: sandbox_differences(a, name, present=True))
        user_sid, group_sid, folder = _sid_of(box, "user"), _sid_of(box, "group"), str(box.get("folder") or "")
        if not (is_sid(user_sid) and is_sid(group_sid) and folder):
            raise StepFailed("sandbox present")
        self.user_sid = user_sid
        self.files(folder.rstrip("\\"))
        self.account(user_sid, group_sid)
        self.agent()

    def files(self, folder: str) -> None:
        absent, path = f"{folder}\\{ABSENT_NAME}", f"{folder}\\{FILE_NAME}"
        self.step("read_file absent", "read_file", {"path": absent}, lambda a: file_differences(a, None))
        content = base64.b64encode(TEST_BYTES).decode("ascii")
        self.step("write_file create", "write_file", {"path": path, "content": content, "expected_sha256": "", "backup": False},
                  lambda a: [f"sha256 is {a.get('sha256')!r}, not {sha256_hex(TEST_BYTES)}"] * (a.get("sha256") != sha256_hex(TEST_BYTES))
                  + [f"backup_file is {a.get('backup_file')!r} without a backup"] * (a.get("backup_file") is not None))
        self.step("read_file back", "read_file", {"path": path}, lambda a: file_differences(a, TEST_BYTES))
        other = base64.b64encode(OTHER_BYTES).decode("ascii")
        self.step("write_file stale hash", "write_file",
                  {"path": path, "content": other, "expected_sha256": sha256_hex(OTHER_BYTES), "backup": False}, refusal=FILE_CHANGED)
        self.step("read_file unchanged", "read_file", {"path": path}, lambda a: file_differences(a, TEST_BYTES))
        # What every converge does to worker.toml: File.Replace over the file that was read, without a
        # backup and with one; each leaves nothing else in the folder (checked when the sandbox goes).
        self.step("write_file replace", "write_file",
                  {"path": path, "content": base64.b64encode(REPLACED_BYTES).decode("ascii"), "expected_sha256": sha256_hex(TEST_BYTES),
                   "backup": False},
                  lambda a: write_differences(a, REPLACED_BYTES, backup_expected=False, folder=folder))
        self.step("read_file replaced", "read_file", {"path": path}, lambda a: file_differences(a, REPLACED_BYTES))
        written = self.step("write_file replace with backup", "write_file",
                            {"path": path, "content": content, "expected_sha256": sha256_hex(REPLACED_BYTES), "backup": True},
                            lambda a: write_differences(a, TEST_BYTES, backup_expected=True, folder=folder))
        self.step("read_file after the backup", "read_file", {"path": path}, lambda a: file_differences(a, TEST_BYTES))
        backup = written.get("backup_file")
        if isinstance(backup, str) and backup:
            self.step("read_file backup", "read_file", {"path": backup}, lambda a: file_differences(a, REPLACED_BYTES))
            self.folder_files = [SANDBOX_MARKER_FILE, FILE_NAME, backup.rpartition("\\")[2]]

    def account(self, user_sid: str, group_sid: str) -> None:
        def same_account(answer: dict) -> list[str]:
            found = rights_differences(answer, TEST_RIGHTS, held=False) + membership_differences(answer, group_sid, member=False)
            if normalize_sid(str(answer.get("sid"))) != normalize_sid(user_sid):
                found.append(f"sid is {answer.get('sid')!r}, not the sandbox user's {user_sid}")
            if answer.get("type") != "user":
                found.append(f"type is {answer.get('type')!r}, not 'user'")
            return found

        self.group_sid = normalize_sid(group_sid)
        reading = self.step("read_account sandbox user", "read_account", {"account": user_sid}, same_account)
        self.account_reading(reading, "", member=False)
        self.observe("read_account group policy", "read_account", reading, fields=POLICY_FIELDS, check=policy_differences, unknown=policy_unknown)
        # A name the LSA does not know is refused before anything is granted (the known one with it included).
        self.step("set_user_rights unknown right", "set_user_rights",
                  {"account": user_sid, "rights": [TEST_RIGHTS[0], UNKNOWN_RIGHT_NAME], "state": "present"}, refusal="UNKNOWN_RIGHT")
        for state, held in (("present", True), ("absent", False)):
            self.step(f"set_user_rights {state}", "set_user_rights", {"account": user_sid, "rights": list(TEST_RIGHTS), "state": state},
                      lambda a, held=held: change_differences(a, TEST_RIGHTS * held, TEST_RIGHTS * (not held))
                      + rights_differences(a.get("report") or {}, TEST_RIGHTS, held))
            self.step(f"read_account rights {state}", "read_account", {"account": user_sid},
                      lambda a, held=held: rights_differences(a, TEST_RIGHTS, held))
        wanted = [{"sid": group_sid}]
        for state, member in (("present", True), ("absent", False)):
            self.step(f"set_group_membership {state}", "set_group_membership", {"account": user_sid, "groups": [group_sid], "state": state},
                      lambda a, member=member: change_differences(a, wanted * member, wanted * (not member), _group_key)
                      + membership_differences(a.get("report") or {}, group_sid, member))
            reading = self.step(f"read_account groups {state}", "read_account", {"account": user_sid},
                                lambda a, member=member: membership_differences(a, group_sid, member))
            self.account_reading(reading, f" {state}", member=member)

    def account_reading(self, reading: dict, suffix: str, member: bool) -> None:
        """The token groups of a reading of the sandbox user: a local account's, so known without a
        domain controller, with Everyone, Authenticated Users and SERVICE, its sandbox group exactly
        while it is a member (a local group, as the group closure reads it), and every local group that
        another reading shows holding one of these (Users, on Windows)."""
        self.observe(f"read_account token groups{suffix}", "read_account", reading, fields=CLOSURE_FIELDS,
                     check=lambda r: closure_differences(r, self.members_known) + membership_differences(r, self.group_sid, member, "token_groups"))
        self.learn_members(reading)
        if isinstance(reading, dict) and reading:
            self.user_reading = reading

    def agent(self) -> None:
        service, config_path = self.options.service, self.options.config_path

        def about_the_service(answer: dict) -> list[str]:
            found = []
            seen = answer.get("service") or {}
            if isinstance(seen, dict) and seen.get("exists") is not True:
                found.append(f"the service {service} does not exist")
            if isinstance(seen, dict) and not names_equal(str(seen.get("name")), service):
                found.append(f"service.name is {seen.get('name')!r}, not {service!r}")
            config = answer.get("config") or {}
            if isinstance(config, dict) and str(config.get("path")) != config_path:
                found.append(f"config.path is {config.get('path')!r}, not {config_path!r}")
            return found

        info = self.step("read_agent_info", "read_agent_info", {"service": service, "config_path": config_path, "account": ""},
                         about_the_service)
        self.service_account(info)
        # The reading of a named account, as a converge that names deadline_worker_agent_user_account takes it.
        if self.user_sid:
            self.step("read_agent_info sandbox account", "read_agent_info",
                      {"service": service, "config_path": config_path, "account": self.user_sid},
                      lambda a: reading_checks(a.get("account") or {}, self.user_sid, self.user_reading, self.members_known))
        seen = info.get("service") or {}
        if not isinstance(seen, dict) or seen.get("state") != "running":
            self.skip("control_service started", "control_service",
                      f"{service} is {seen.get('state') if isinstance(seen, dict) else 'unknown'}; the self-test only "
                      "calls it on a running service, where started changes nothing")
            return

        def left_alone(answer: dict) -> list[str]:
            found = []
            for key, wanted in (("changed", False), ("state", "running"), ("healthy", True), ("restarted", False)):
                if answer.get(key) != wanted:
                    found.append(f"{key} is {answer.get(key)!r}, not {wanted!r} for a service that was running")
            if seen.get("pid") is not None and answer.get("pid") != seen.get("pid"):
                found.append(f"pid is {answer.get('pid')!r}, not {seen.get('pid')!r}: the service was restarted")
            return found

        self.step("control_service started", "control_service",
                  {"name": service, "state": "started", "timeout": SERVICE_TIMEOUT, "settle": 0, "if_idle": True,
                   "config_path": "", "account": ""}, left_alone)

    def service_account(self, info: dict) -> None:
        """The reading of the agent's own account, which on a domain farm is a domain account: the one
        reading in the run whose group closure comes from a domain controller.

        A domain controller out of reach leaves its domain groups unknown, and the host says so with
        DOMAIN_UNREACHABLE, as the contract requires: that is no difference, so the canary does not fail
        for it (a converge refuses such a host before any change, naming the cause, so passing is
        safe), but the line says ``unknown`` and why, never ``ok``: the path that reads domain groups was
        not proven on this host. An answer that is unknown without naming why is a difference."""
        account, error = info.get("account"), info.get("account_error")
        name = "read_agent_info service account token groups"
        if not isinstance(account, dict):
            if _named_account_error(error):
                step = Step(name, "read_agent_info", unknown=f"the service's account was not read, {error['code']}: {error['message']}")
                self.result.steps.append(step)
            elif error is not None:
                self.result.steps.append(Step(name, "read_agent_info", differences=[f"account_error is {error!r}, not {{code, message}}"]))
            else:
                self.skip(name, "read_agent_info", "the reading holds no account: the service has none to read")
            return
        self.observe(name, "read_agent_info", account, fields=CLOSURE_FIELDS, check=lambda r: closure_differences(r, self.members_known),
                     unknown=closure_unknown)
        self.learn_members(account)

        def one_policy(report: dict) -> list[str]:
            found = policy_differences(report)
            policy = report.get("group_policy") or {}
            if is_domain_account(str(report.get("sid") or ""), str(report.get("domain") or ""), str(report.get("hostname") or "")) \
                    and policy.get("domain_member") is False:
                found.append(f"group_policy.domain_member is false, yet the service runs as {_who(report)}, a domain account")
            if self.user_reading and _policy_view(report) != _policy_view(self.user_reading):
                found.append("group_policy differs from read_account's, though both read the one policy result of the host")
            return found

        self.observe("read_agent_info group policy", "read_agent_info", account, fields=POLICY_FIELDS, check=one_policy, unknown=policy_unknown)

    def cleanup(self) -> None:
        name = self.options.sandbox
        try:
            box = self.step("sandbox absent", "sandbox", {"name": name, "state": "absent"},
                            lambda a: sandbox_differences(a, name, present=False)
                            + (leftover_differences(a, self.folder_files) if self.folder_files is not None else []))
            self.step("sandbox absent again", "sandbox", {"name": name, "state": "absent"},
                      lambda a: [f"{what}.sid is {_sid_of(a, what)!r} after the sandbox was removed"
                                 for what in ("user", "group") if _sid_of(a, what)])
            user_sid = _sid_of(box, "user")
            if is_sid(user_sid):
                self.step("read_account removed user", "read_account", {"account": user_sid}, refusal="ACCOUNT_NOT_FOUND")
        except StepFailed:
            pass


def run_selftest(host: Caller, options: Options) -> Selftest:
    """The whole sequence; the sandbox is removed whatever happened before."""
    run = _Run(host, options)
    try:
        run.sequence()
    except StepFailed:
        pass
    finally:
        run.cleanup()
    return run.result


def _group_key(group: Any) -> str:
    """A group as the host answers it ({name, sid}) or as asked (a SID), compared by SID."""
    return str(group.get("sid") if isinstance(group, dict) else group)
