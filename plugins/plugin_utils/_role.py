# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The decisions of the role deadline_worker_agent_user, as pure functions.

Internal to this collection: not a public API; it may change in any release.

The role reads a worker once (worker_agent_info) and hands the reading to :func:`plan`, which
decides everything before the first change: what it would change, and what it refuses. It
refuses by *simulating its own fix*: it applies the changes it would make to a copy of the host's
reading (rights granted, groups left, worker.toml as worker_toml would write it, the agent
restarted) and runs the agent's rules on that copy. Whatever still blocks WORKER_AGENT_USER
jobs there is something the role cannot fix, and it refuses the host before touching it. The
same prediction is check mode's answer. :func:`outcome` turns what the tasks did into the fact
``deadline_worker_agent_user_result``.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import datetime
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._agent import rules as agent_rules
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._agent.config_file import CONFIG_PATH
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._agent.worker_toml import (
    ABSENT,
    PRESENT,
    Setting,
    WorkerTomlError,
    apply_settings,
    validate,
)
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host import sha256_hex
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._windows import user_rights
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._windows.accounts import (
    ADMINISTRATORS,
    DOMAIN_UNREACHABLE,
    GROUP_NOT_FOUND,
    TOKEN_GROUPS_FAILED,
    AccountError,
    same_account,
    same_sid,
    sid_key,
)
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._windows.groups import plan_membership, report_with_groups, resolve_groups

PREFIX = "deadline_worker_agent_user_"

# The one worker.toml write of the role: the opt-in and the removal of what conflicts with it. The plan
# carries it (worker_toml_settings) to the task that writes it and to the outcome that says so.
SETTINGS: tuple[Setting, ...] = (
    Setting("os", "run_jobs_as_agent_user", True, PRESENT),
    Setting("os", "windows_job_user", None, ABSENT),
    Setting("os", "impersonation", None, ABSENT),
)


def settings_text(settings: Iterable[Mapping[str, Any]]) -> str:
    """``[os] run_jobs_as_agent_user = true in worker.toml, without windows_job_user and impersonation``."""
    settings = list(settings)
    present = [f"[{s['table']}] {s['key']} = {json.dumps(s['value'])}" for s in settings if s.get("state", PRESENT) == PRESENT]
    absent = [str(s["key"]) for s in settings if s.get("state") == ABSENT]
    return ", ".join(present) + " in worker.toml" + (f", without {' and '.join(absent)}" if absent else "")


RESTART_WHEN = ("idle", "always", "never")
WHEN_BUSY = ("skip", "interrupt")
# A stop of a busy agent waits for the longest cancelation the agent allows: NOTIFY_THEN_TERMINATE's
# 600 s notify period, plus the environments' onExit actions (5 min default each; one is assumed).
INTERRUPT_STOP_TIMEOUT = 600 + 300

_TRUE = frozenset({"yes", "on", "1", "true", "y", "t"})
_FALSE = frozenset({"no", "off", "0", "false", "n", "f"})


class RoleVariableError(ValueError):
    """A role variable with a value the role cannot use; the message names the variable."""


# ---------------------------------------------------------------------------------------------
# The role's variables, checked before any remote call


@dataclass(frozen=True)
class RoleVariables:
    account: str
    service: str
    config_path: str
    rights: tuple[str, ...]
    shutdown_rights: tuple[str, ...]
    leave_groups: tuple[str, ...]
    restart_when: str
    idle_timeout: int
    idle_poll: int
    when_busy: str
    ask_service: bool
    force_restart: bool
    restart_timeout: int
    restart_settle: int
    verify: bool
    min_agent_version: str
    backup: bool
    fail_unless_ready: bool


# What YAML's double quotes make of a backslash before these letters ("\\a" is a bell): a Windows
# name or path written ".\\agent" or "C:\\temp" in double quotes arrives with a control character.
_YAML_ESCAPES = {"\a": "a", "\b": "b", "\t": "t", "\n": "n", "\v": "v", "\f": "f", "\r": "r", "\x1b": "e", "\x00": "0"}


def _control_characters(name: str, value: str) -> None:
    found = [ch for ch in value if not ch.isprintable()]
    if not found:
        return
    escapes = sorted({"\\" + _YAML_ESCAPES[ch] for ch in found if ch in _YAML_ESCAPES})
    meant = "".join("\\" + _YAML_ESCAPES[ch] if ch in _YAML_ESCAPES else ch for ch in value)
    raise RoleVariableError(
        f"{PREFIX}{name} holds a control character ({', '.join(repr(ch) for ch in dict.fromkeys(found))}) in {value!r}"
        + (
            f": in YAML double quotes {' and '.join(escapes)} is an escape, not a backslash and a letter;"
            f" write the value in single quotes ('{meant}') or without quotes"
            if escapes
            else ""
        )
    )


def _text(values: Mapping, name: str, *, empty: bool = False) -> str:
    value = values.get(PREFIX + name, "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise RoleVariableError(f"{PREFIX}{name} must be a string, not {type(value).__name__} {value!r}")
    if not empty and not value.strip():
        raise RoleVariableError(f"{PREFIX}{name} must not be empty")
    _control_characters(name, value)
    return value.strip()


def _looks_like_a_list(text: str) -> bool:
    """A list written as text, as ``-e name=[a, b]`` or ``-e 'name=["a"]'`` passes it."""
    text = text.strip()
    return text.startswith("[") and text.endswith("]")


def _strings(values: Mapping, name: str) -> tuple[str, ...]:
    value = values.get(PREFIX + name)
    if isinstance(value, str) and _looks_like_a_list(value):
        raise RoleVariableError(
            f"{PREFIX}{name} must be a list of strings, not the text {value!r}: -e name=value passes text;"
            f" pass a list as JSON, e.g. -e '{{\"{PREFIX}{name}\": [\"SeServiceLogonRight\"]}}', or in a vars file"
        )
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise RoleVariableError(
            f"{PREFIX}{name} must be a list of strings, not {type(value).__name__} {value!r}"
            + (f" (write it as a YAML list: [{value}])" if isinstance(value, str) else "")
        )
    items = []
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise RoleVariableError(f"{PREFIX}{name} must hold only non-empty strings, not {item!r}")
        _control_characters(name, item)
        items.append(item.strip())
    return tuple(items)


def _rights(values: Mapping, name: str) -> tuple[str, ...]:
    try:
        return tuple(user_rights.canonical_rights(_strings(values, name)))
    except user_rights.UnknownRightError as error:
        raise RoleVariableError(f"{PREFIX}{name}: {error}") from None


def _flag(values: Mapping, name: str) -> bool:
    value = values.get(PREFIX + name)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise RoleVariableError(f"{PREFIX}{name} must be a boolean (true or false), not {value!r}")


def _seconds(values: Mapping, name: str, minimum: int) -> int:
    value = values.get(PREFIX + name)
    if isinstance(value, bool):
        raise RoleVariableError(f"{PREFIX}{name} must be a whole number of seconds, not {value!r}")
    try:
        number = int(str(value).strip()) if isinstance(value, str) else value
    except ValueError:
        number = None
    if not isinstance(number, int):
        raise RoleVariableError(f"{PREFIX}{name} must be a whole number of seconds, not {value!r}")
    if number < minimum:
        raise RoleVariableError(f"{PREFIX}{name} must be at least {minimum}, not {number}")
    return number


def _choice(values: Mapping, name: str, choices: tuple[str, ...]) -> str:
    value = values.get(PREFIX + name)
    if value not in choices:
        raise RoleVariableError(f"{PREFIX}{name} must be one of {', '.join(choices)}, not {value!r}")
    return str(value)


def check_variables(values: Mapping[str, Any]) -> RoleVariables:
    """The role's variables, checked and normalized; RoleVariableError names the first bad one."""
    version = _text(values, "min_agent_version")
    if agent_rules.parse_version(version) is None:
        raise RoleVariableError(f"{PREFIX}min_agent_version must be a version such as 0.27.3, not {version!r}")
    restart_when = _choice(values, "restart_when", RESTART_WHEN)
    if not _flag(values, "restart"):
        restart_when = "never"  # the older switch, kept: false means the operator restarts
    return RoleVariables(
        account=_text(values, "account", empty=True),
        service=_text(values, "service"),
        config_path=_text(values, "config_path"),
        rights=_rights(values, "rights"),
        shutdown_rights=_rights(values, "shutdown_rights"),
        leave_groups=_strings(values, "leave_groups"),
        restart_when=restart_when,
        idle_timeout=_seconds(values, "idle_timeout", 0),
        idle_poll=_seconds(values, "idle_poll", 1),
        when_busy=_choice(values, "when_busy", WHEN_BUSY),
        ask_service=_flag(values, "ask_service"),
        force_restart=_flag(values, "force_restart"),
        restart_timeout=_seconds(values, "restart_timeout", 1),
        restart_settle=_seconds(values, "restart_settle", 0),
        verify=_flag(values, "verify"),
        min_agent_version=version,
        backup=_flag(values, "backup"),
        fail_unless_ready=_flag(values, "fail_unless_ready"),
    )


# ---------------------------------------------------------------------------------------------
# The plan


def _refusal(fid: str, message: str, fix: str) -> dict:
    return {"id": fid, "message": message, "fix": fix}


def _finding_refusal(findings: Iterable[Mapping], fid: str) -> dict | None:
    """The first reading's blocker ``fid`` as a refusal: where the plan meets the cause a rule already
    names, the rule's message and fix say it best (one wording for one cause)."""
    found = next((f for f in findings if f.get("id") == fid and f.get("severity") == "blocker"), None)
    return _refusal(fid, str(found.get("message") or ""), str(found.get("fix") or "")) if found else None


def _finding_ids(findings: Iterable[Mapping]) -> set[str]:
    return {str(f.get("id")) for f in findings}


def _config_bytes(raw: Mapping) -> bytes | None:
    config = raw.get("config") or {}
    return base64.b64decode(config.get("content") or "") if config.get("exists") else None


def _wrong_account(raw: Mapping, variables: RoleVariables) -> dict | None:
    """An account given by the operator that is not the one the service logs on as (issue: the
    wrong account would be 'fixed' and the real agent account left an administrator)."""
    account, service = raw.get("account") or {}, raw.get("service") or {}
    if not variables.account or not account or not service.get("exists") or not service.get("account"):
        return None
    logon, logon_sid = str(service["account"]), service.get("account_sid")
    if logon_sid:
        if same_sid(logon_sid, account.get("sid")):
            return None
    elif same_account(logon, str(account.get("name") or ""), str(account.get("domain") or ""), str(account.get("hostname") or "")):
        return None
    return _refusal(
        "ACCOUNT_NOT_SERVICE_ACCOUNT",
        f"{PREFIX}account names {account.get('name')} ({account.get('sid')}), but {service.get('name')} logs on as"
        f" {logon}" + (f" ({logon_sid})" if logon_sid else "") + ": converging the named account would leave the"
        " agent's own account as it is",
        f"leave {PREFIX}account empty (the role then uses the service's logon account), or set it to {logon}",
    )


def _future(seconds: int) -> str:
    return (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=seconds)).isoformat()


def predicted_reading(raw: Mapping, rights_added: Iterable[str], groups_left: Iterable[Mapping], config: bytes | None) -> dict:
    """The host's reading as it would be after the role's changes and a restart of the agent."""
    after = copy.deepcopy(dict(raw))
    account = after.get("account")
    if account:
        left = {sid_key(g["sid"]) for g in groups_left}
        account = after["account"] = report_with_groups(account, [g for g in account.get("groups") or [] if sid_key(g.get("sid")) not in left])
        account["rights"] = user_rights.held_rights([*(account.get("rights") or []), *rights_added])
    now = _future(0)
    if config is not None:
        after["config"] = {**(after.get("config") or {}), "exists": True, "content": base64.b64encode(config).decode("ascii"),
                           "sha256": sha256_hex(config), "modified_at": now}
    service = after.get("service") or {}
    if service.get("exists"):
        service.update(state="running", started_at=_future(1), pid=service.get("pid") or 0)
        if account and "token_administrators" in service:  # the restarted process logs on with the groups left to it
            service["token_administrators"] = any(same_sid(g.get("sid"), ADMINISTRATORS) for g in account.get("groups") or [])
    after["sessions"] = {**(after.get("sessions") or {}), "busy": False, "count": 0}
    return after


def plan(before: Mapping[str, Any], values: Mapping[str, Any]) -> dict:
    """What the role does on this host, decided from its first reading (worker_agent_info's result)."""
    variables = check_variables(values)
    if before.get("unreachable") or "findings" not in before:
        # No reading: nothing is planned, and the outcome says why.
        return {"refused": [], "act": False, "restart": False, "unread": str(before.get("msg") or "the host was not read")}
    raw = before.get("reading")
    if not isinstance(raw, Mapping) or not raw:
        # A summary without the host's answer (worker_agent_info without details): never plan from a guess.
        return {"refused": [], "act": False, "restart": False, "unread": "worker_agent_info returned no reading (run it with details: true)"}
    findings_before = list(before.get("findings") or [])
    refusals: list[dict] = []
    account = raw.get("account")
    service = raw.get("service") or {}

    wrong = _wrong_account(raw, variables)
    if wrong:
        refusals.append(wrong)
    version = (raw.get("agent") or {}).get("version")
    want = agent_rules.parse_version(variables.min_agent_version)
    if want is not None and agent_rules.older_than(version, want):  # None: unreadable, a finding of its own
        refusals.append(
            _refusal(
                "AGENT_VERSION_UNSUPPORTED",
                f"the worker agent is {version}; this run asks for {variables.min_agent_version} or newer",
                f"upgrade deadline-cloud-worker-agent to {variables.min_agent_version} or newer",
            )
        )

    shutdown = (before.get("settings") or {}).get("shutdown_on_stop") or {}
    rights_wanted = list(variables.rights) + (list(variables.shutdown_rights) if shutdown.get("value") is True else [])
    rights_wanted = list(dict.fromkeys(rights_wanted))
    rights_to_grant: list[str] = []
    groups_to_leave: list[dict] = []
    # A right a domain policy defines is held through the policy's holders (or refused below): a direct
    # grant would be undone at the next refresh, and granted again at every run.
    direct_rights = [r for r in rights_wanted if r not in (user_rights.policy_rights(account or {}) or {})]
    if account and not wrong:  # the wrong account's own state is beside the point
        rights_to_grant = user_rights.plan_rights(account.get("rights") or [], direct_rights, user_rights.PRESENT).added
        if variables.leave_groups:
            try:
                groups_to_leave = plan_membership(account, variables.leave_groups, ABSENT).removed
            except AccountError as error:
                # Groups the host could not read: the predicted finding (DOMAIN_UNREACHABLE, TOKEN_GROUPS_UNKNOWN)
                # names that cause with its fix, and is refused below; any other refusal is the plan's own.
                if error.code not in (DOMAIN_UNREACHABLE, TOKEN_GROUPS_FAILED):
                    refusals.append(_refusal(error.code, error.message.replace(", nothing was changed", ""), _group_fix(error)))
        no_shutdown = agent_rules.no_shutdown_fix(agent_rules.read_host(raw))
        policy = _policy_refusal(
            account, rights_wanted, groups_to_leave, shuts_down=shutdown.get("value") is True, service=variables.service, no_shutdown=no_shutdown
        )
        if policy:
            refusals.append(policy)

    data = _config_bytes(raw)
    path = str((raw.get("config") or {}).get("path") or variables.config_path or CONFIG_PATH)
    edit = None
    toml_warnings: list[str] = []
    if data is not None:
        try:
            edit = apply_settings(data, list(SETTINGS), path)
        except WorkerTomlError as error:
            fid = "CONFIG_ENCODING" if "CONFIG_ENCODING" in _finding_ids(findings_before) else "CONFIG_INVALID"
            refusals.append(
                _finding_refusal(findings_before, fid)
                or _refusal(fid, str(error).replace("; nothing was changed", ""), error.fix or "correct worker.toml by hand")
            )
        else:
            toml_warnings = list(edit.warnings)
            checked = validate(edit.text, path, edit.original_text)  # as worker_toml will check it
            toml_warnings += checked.warnings
            if checked.errors:
                refusals.append(
                    _finding_refusal(findings_before, "CONFIG_INVALID") or _refusal("CONFIG_INVALID", "; ".join(checked.errors), "correct worker.toml by hand")
                )

    # Judged against the rights this run converges to, not the collection's default list: a right the
    # operator left out of deadline_worker_agent_user_rights is no warning of the host the run leaves.
    predicted = agent_rules.describe(
        predicted_reading(raw, rights_to_grant, groups_to_leave, edit.data if edit else None), final_rights=tuple(rights_wanted)
    )
    known = _finding_ids(refusals)
    for f in [] if wrong else predicted["findings"]:  # for the wrong account, that is the cause to fix first
        if (f.get("severity") == "blocker" or f["id"] in _REFUSED_BEYOND_BLOCKERS) and f["id"] not in known:
            refusals.append(_refusal(str(f["id"]), str(f.get("message") or ""), str(f.get("fix") or "")))
            known.add(str(f["id"]))

    toml_changes = bool(edit and edit.changed)
    changes = bool(rights_to_grant or groups_to_leave or toml_changes)
    ids_before = _finding_ids(findings_before)
    why_restart = []
    if changes:
        why_restart.append("the host changed")
    if "CONFIG_NOT_LOADED" in ids_before:
        why_restart.append("the running agent still has the worker.toml it read before its last change")
    if "AGENT_TOKEN_STALE" in ids_before:
        why_restart.append("the running agent still has the Administrators token it started with, from before the account left the group")
    if service.get("exists") and service.get("state") != "running":
        why_restart.append(f"it is {service.get('state') or 'not running'}")
    if variables.force_restart:
        why_restart.append(f"{PREFIX}force_restart is true")
    sessions = raw.get("sessions") or {}
    refused = bool(refusals)
    return {
        "refused": refusals,
        "rights": direct_rights,
        "rights_wanted": rights_wanted,
        "rights_to_grant": [] if refused else rights_to_grant,
        "groups_to_leave": [] if refused else groups_to_leave,
        "worker_toml": not refused and toml_changes,
        "worker_toml_settings": [dataclasses.asdict(setting) for setting in SETTINGS],
        "worker_toml_warnings": toml_warnings,
        "worker_toml_previous": edit.previous if edit else {},
        "restart": not refused and bool(why_restart),
        "restart_reasons": why_restart,
        "restart_when": variables.restart_when,
        "idle_timeout": variables.idle_timeout if variables.restart_when == "idle" else 0,
        "when_busy": "interrupt" if variables.restart_when == "always" else variables.when_busy,
        "busy": bool(sessions.get("busy")),
        "sessions": int(sessions.get("count") or 0),
        "act": not refused and (changes or bool(why_restart)),
        "account_sid": (account or {}).get("sid"),
        "leaves_administrators": _leaves_administrators(account, variables),
        "predicted_findings": predicted["findings"],
        "predicted_ids": sorted(_finding_ids(predicted["findings"])),
        "predicted_ready": bool(predicted["ready"]) and not refused,
    }


def _leaves_administrators(account: Mapping | None, variables: RoleVariables) -> bool:
    """Whether the role takes the account out of Administrators on this host (its leave_groups name it)."""
    if not account:
        return False
    try:
        wanted = resolve_groups(variables.leave_groups, account.get("local_groups") or [], str(account.get("hostname") or ""))
    except AccountError:  # a group the host does not have: refused as GROUP_NOT_FOUND
        return False
    return any(same_sid(g.get("sid"), ADMINISTRATORS) for g in wanted)


def _unsafe(findings: Iterable[Mapping] | None, plan: Mapping[str, Any]) -> bool:
    """The account would run WORKER_AGENT_USER jobs as SYSTEM, or as an administrator where the role was
    to take it out of Administrators: not the role's final state, whatever the agent accepts."""
    found = _finding_ids(findings or [])
    return "AGENT_USER_IS_SYSTEM" in found or ("AGENT_USER_IS_ADMIN" in found and bool(plan.get("leaves_administrators")))


# Findings below blocker that the role refuses: what no change of the role can clear (the host is
# refused rather than left unsafe), and what it cannot tell (it never changes a host on a guess).
_REFUSED_BEYOND_BLOCKERS = frozenset({"AGENT_USER_IS_SYSTEM", "DOMAIN_UNREACHABLE", "TOKEN_GROUPS_UNKNOWN", "GROUP_POLICY_UNREADABLE"})


def _policy_refusal(account: Mapping, rights: list[str], leaving: list[dict], *, shuts_down: bool, service: str, no_shutdown: str) -> dict | None:
    """A right the account is to hold outside the groups it leaves that a domain policy would take from
    it at the next refresh (or a deny right a policy gives it): refused before the first change."""
    gaps = user_rights.policy_gaps(account, rights, [g["sid"] for g in leaving])
    if not gaps:
        return None
    account = dict(account)
    return _refusal(
        "RIGHT_OWNED_BY_POLICY",
        " | ".join(agent_rules.policy_gap_message(account, gap, shuts_down, service) for gap in gaps),
        " | ".join(agent_rules.policy_gap_fix_text(account, gap, shuts_down, no_shutdown) for gap in gaps),
    )


def _group_fix(error: AccountError) -> str:
    if error.code == GROUP_NOT_FOUND:
        return f"name groups that exist on the host in {PREFIX}leave_groups (S-1-5-32-544 is Administrators in any language)"
    return error.fix or "correct what the message names, then run again"


# ---------------------------------------------------------------------------------------------
# The outcome


def _result(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _judged(info: Mapping[str, Any], plan: Mapping[str, Any]) -> list[dict]:
    """The findings of a worker_agent_info result, judged against the rights the run converges to (the
    plan's rights_wanted) where its reading is at hand; else as the module gave them."""
    reading = info.get("reading")
    if isinstance(reading, Mapping) and reading and isinstance(plan.get("rights_wanted"), list):
        return list(agent_rules.describe(dict(reading), final_rights=tuple(plan["rights_wanted"]))["findings"])
    return list(info.get("findings") or [])


def _ran(result: Mapping[str, Any]) -> bool:
    return bool(result) and not result.get("skipped")


# The change tasks in the order they run; a step the connection dropped in stops the ones after it.
CHANGE_STEPS = ("rights", "groups", "config", "restart")
_STEP_TEXT = {
    "rights": "granting the rights",
    "groups": "leaving the groups",
    "config": "writing worker.toml",
    "restart": "the restart",
}


def sentence(text: str) -> str:
    """``text`` ending with a full stop (or the question or exclamation mark it has)."""
    text = str(text or "").strip()
    return text if not text or text.endswith((".", "!", "?")) else text + "."


def _pending_reason(before: Mapping[str, Any], plan: Mapping[str, Any], sessions: Mapping | None, busy_skip: bool) -> str:
    # restart_when never (or restart false) first: a busy host is not restarted by the next run either.
    service = (before.get("service") or {}).get("name") or "the agent's service"
    if plan.get("restart_when") == "never":
        return (
            f"{PREFIX}restart_when is never (or {PREFIX}restart is false): restart {service} yourself"
            " when no render runs, so that the agent loads its new configuration"
        )
    if busy_skip or plan.get("busy"):
        return f"busy: {_sessions_running(plan, sessions, busy_skip)} session(s) running"
    return "the restart task did not run (left out with --tags or --skip-tags): run again to restart the service"


def _sessions_running(plan: Mapping[str, Any], sessions: Mapping | None, busy_skip: bool) -> int:
    """The sessions the agent ran when the restart was left pending for them (the last look, else the
    first reading); 0 when it was left pending for another reason (restart_when never, tags)."""
    if plan.get("restart_when") == "never" or not (busy_skip or plan.get("busy")):
        return 0
    return int((sessions or {}).get("count") or plan.get("sessions") or 1)


def outcome(
    before: Any,
    plan: Any,
    *,
    rights: Any = None,
    groups: Any = None,
    config: Any = None,
    restart: Any = None,
    check_mode: bool = False,
    error: str = "",
    stage: str = "done",
) -> dict:
    """The fact deadline_worker_agent_user_result, from the first reading, the plan and what the
    change tasks registered (an empty dictionary, or a skipped result, for a task that did not run).
    A change task whose connection dropped (``unreachable``, registered with ignore_unreachable) makes
    the host unreachable; the tasks after it did not run."""
    before, plan = _result(before), _result(plan)
    rights, groups, config, restart = _result(rights), _result(groups), _result(config), _result(restart)
    steps = {"rights": rights, "groups": groups, "config": config, "restart": restart}
    cut = next((name for name in CHANGE_STEPS if steps[name].get("unreachable")), None)
    if cut:
        error = f"unreachable during {_STEP_TEXT[cut]}: {steps[cut].get('msg') or 'the connection dropped'}"
        steps = {name: (result if CHANGE_STEPS.index(name) < CHANGE_STEPS.index(cut) else {}) for name, result in steps.items()}
        rights, groups, config, restart = (steps[name] for name in CHANGE_STEPS)
    refused = [dict(r) for r in plan.get("refused") or []]
    changes: list[str] = []
    rights_added = list(rights.get("added") or [])
    groups_left = [dict(g) for g in groups.get("removed") or []]
    # In check mode the change tasks report what they would do, and nothing is restarted: say so.
    grant, leave, write, restart_text = (
        ("would grant", "would leave", "would set", "would restart the service")
        if check_mode
        else ("granted", "left", "set", "restarted the service")
    )
    if rights_added:
        changes.append(f"{grant} " + ", ".join(rights_added))
    if groups_left:
        changes.append(f"{leave} " + ", ".join(str(g.get("name") or g.get("sid")) for g in groups_left))
    if config.get("changed"):
        changes.append(f"{write} " + settings_text(plan.get("worker_toml_settings") or [dataclasses.asdict(setting) for setting in SETTINGS]))
    restarted = not check_mode and bool(_ran(restart) and restart.get("restarted"))
    would_restart = check_mode and bool(plan.get("restart") and plan.get("restart_when") != "never")
    if restarted or would_restart:
        changes.append(restart_text)
    changed = any(bool(r.get("changed")) for r in (rights, groups, config)) or restarted or would_restart
    wanted_restart = bool(plan.get("restart"))
    busy_skip = bool(_ran(restart) and restart.get("restart_pending"))
    pending = wanted_restart and not restarted and not error and not refused and not check_mode and stage == "done"
    verification = restart.get("info") if _ran(restart) and isinstance(restart.get("info"), Mapping) else None

    if verification is not None:
        findings_after, ready, verified_by = _judged(verification, plan), bool(verification.get("ready")), "reading after the restart"
    elif check_mode and not refused:
        findings_after, ready, verified_by = list(plan.get("predicted_findings") or []), bool(before.get("ready")), "prediction (check mode)"
    elif restarted and restart.get("healthy") and "predicted_findings" in plan:
        # verification turned off: the prediction, now that the agent came back with the changes
        findings_after, ready, verified_by = list(plan["predicted_findings"]), bool(plan.get("predicted_ready")), "prediction (verification off)"
    elif not changed and not pending and not error and "findings" in before:
        findings_after, ready, verified_by = _judged(before, plan), bool(before.get("ready")), "first reading"
    else:
        findings_after, ready, verified_by = None, False, None
    if restarted and not restart.get("healthy") and not check_mode:
        ready = False
    if ready and _unsafe(findings_after, plan):
        ready = False
    if pending and not check_mode:
        ready = False

    if plan.get("unread") and not error:
        error = f"unreachable: {plan['unread']}" if before.get("unreachable") else str(plan["unread"])
    if refused:
        status = "refused"
    elif before.get("unreachable") or cut:
        status = "unreachable"
    elif error or (_ran(restart) and restart.get("failed")):
        status = "failed"
    elif stage == "planned" and plan.get("act") and not check_mode:
        status = "planned"  # the change tasks have yet to run: a host cut off here is not done
    elif check_mode:
        status = "would_change" if (changed or wanted_restart) else ("already_fine" if ready else "not_ready")
    elif pending:
        status = "restart_pending"
    elif ready:
        status = "fixed" if changed else "already_fine"
    else:
        status = "not_ready"
    sessions = restart.get("sessions") if _ran(restart) and isinstance(restart.get("sessions"), Mapping) else None
    result = {
        "status": status,
        "ready": ready,
        "changed": changed,
        "check_mode": bool(check_mode),
        "refused": refused,
        "error": str(error or ""),
        "changes": changes,
        "rights_added": rights_added,
        "groups_left": groups_left,
        "worker_toml": {
            "changed": bool(config.get("changed")),
            "previous": config.get("previous") or plan.get("worker_toml_previous") or {},
            "warnings": list(config.get("warnings") or plan.get("worker_toml_warnings") or []),
            "backup_file": config.get("backup_file") or "",
        },
        "restarted": restarted,
        "restart_pending": pending,
        "restart_pending_reason": _pending_reason(before, plan, sessions, busy_skip) if pending else "",
        # the sessions the restart was left pending for ("busy: N session(s) running"), else 0
        "sessions_running": _sessions_running(plan, sessions, busy_skip) if pending else 0,
        "interrupted_sessions": int(restart.get("interrupted") or 0) if _ran(restart) else 0,
        "service_view": restart.get("service_view") if _ran(restart) else None,
        "service": {
            "state": restart.get("state") if _ran(restart) else (before.get("service") or {}).get("state"),
            "healthy": restart.get("healthy") if _ran(restart) else None,
            "pid": restart.get("pid") if _ran(restart) else (before.get("service") or {}).get("pid"),
        },
        "account": {"name": (before.get("account") or {}).get("name"), "sid": (before.get("account") or {}).get("sid")},
        "findings_before": list(before.get("findings") or []),
        "ready_before": bool(before.get("ready")),
        "findings_after": findings_after,
        "verified_by": verified_by,
        "plan": dict(plan),
    }
    result["cause"] = failure_message(result) if should_fail(result) else ""
    return result


def failure_message(result: Mapping[str, Any]) -> str:
    """The one message the role fails a host with: the refusal, the error, or what still blocks it."""
    refused = result.get("refused") or []
    if refused:
        parts = [f"{r['id']}: {sentence(r['message'])}" + (f" Fix: {sentence(r['fix'])}" if r.get("fix") else "") for r in refused]
        return "the role changed nothing on this host, because it cannot fix: " + " | ".join(parts)
    if result.get("error"):
        done = [str(c) for c in result.get("changes") or []]  # a host that stopped part-way keeps them: say so first
        return f"changed before it stopped ({'; '.join(done)}), then {result['error']}" if done else str(result["error"])
    if result.get("status") == "planned":
        return "the run stopped on this host after its plan, before its changes were done: run it again"
    blockers = [f for f in result.get("findings_after") or [] if f.get("severity") == "blocker"]
    parts = [f"{f['id']}: {sentence(f.get('message', ''))}" + (f" Fix: {sentence(f['fix'])}" if f.get("fix") else "") for f in blockers]
    if parts:
        return "the worker is not ready for WORKER_AGENT_USER jobs: " + " | ".join(parts)
    if _unsafe(result.get("findings_after"), _result(result.get("plan"))):
        return "the worker would run WORKER_AGENT_USER jobs as SYSTEM or as an administrator: " + " | ".join(
            f"{f['id']}: {sentence(f.get('message', ''))}" for f in result.get("findings_after") or [] if f.get("severity") == "security"
        )
    return "the worker is not ready for WORKER_AGENT_USER jobs: the agent did not come back healthy after the restart"


def should_fail(result: Mapping[str, Any]) -> bool:
    """Whether the role fails the host: refused, failed, or not ready (a pending restart is not a failure)."""
    return result.get("status") in ("refused", "failed", "not_ready", "unreachable", "planned")
