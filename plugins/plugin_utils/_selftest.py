# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""worker_selftest: every remote operation, along the paths a converge takes, in a sandbox, each answer
held to the host contract: the sandbox; files (read, create, a stale hash refused, a replace without and
with a backup, with nothing left beside the file, which the sandbox's removal lists); the account
(its reading, an unknown right refused, a privilege and a logon right granted and revoked, a
membership added and removed); the agent (the reading, also of a named account, and a start that
changes nothing on a running service).

The sequence and the expectations are here, pure: :func:`run_selftest` takes anything with
``call(operation, **parameters)`` (a Host), so tests drive it with a fake. Each step yields one line,
``<step>: ok`` or ``<step>: <what differs>``; a step is named after its operation first.

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
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._windows.accounts import is_sid, names_equal, normalize_sid

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
    def call(self, operation: str, /, **parameters: Any) -> dict: ...


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

    @property
    def ok(self) -> bool:
        return not self.differences

    @property
    def line(self) -> str:
        if self.skipped:
            return f"{self.name}: skipped ({self.skipped})"
        return f"{self.name}: " + ("ok" if self.ok else "; ".join(self.differences))

    def as_dict(self) -> dict:
        return {"step": self.name, "operation": self.operation, "ok": self.ok, "skipped": self.skipped, "differences": list(self.differences)}


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


def membership_differences(report: dict, group_sid: str, member: bool) -> list[str]:
    groups = report.get("groups")
    if not isinstance(groups, list):
        return [f"groups is {type(groups).__name__}, not a list"]
    sids = [normalize_sid(str(g.get("sid"))) for g in groups if isinstance(g, dict) and is_sid(str(g.get("sid")))]
    if (normalize_sid(group_sid) in sids) != member:
        return [f"groups are {sids}: {group_sid} should {'' if member else 'not '}be among them"]
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


def reading_checks(report: dict, sid: str) -> list[str]:
    """An account report inside a reading (read_agent_info's ``account``) of the account ``sid``."""
    found = shape_differences("read_account", report)
    if normalize_sid(str(report.get("sid"))) != normalize_sid(sid):
        found.append(f"account.sid is {report.get('sid')!r}, not {sid}")
    return found


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
            step.differences.append(f"the call failed: {error}")
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

        self.step("read_account sandbox user", "read_account", {"account": user_sid}, same_account)
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
            self.step(f"read_account groups {state}", "read_account", {"account": user_sid},
                      lambda a, member=member: membership_differences(a, group_sid, member))

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
        # The reading of a named account, as a converge that names deadline_worker_agent_user_account takes it.
        # (Seam: the domain-farm reading, policy-defined rights and the group closure, adds its fields to
        # V2_SHAPES["read_account"] and its checks to reading_checks below, for this step and read_account's.)
        if self.user_sid:
            self.step("read_agent_info sandbox account", "read_agent_info",
                      {"service": service, "config_path": config_path, "account": self.user_sid},
                      lambda a: reading_checks(a.get("account") or {}, self.user_sid))
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
