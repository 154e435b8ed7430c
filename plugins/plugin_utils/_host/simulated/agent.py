# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The agent and its service on the simulated worker, as read_agent_info.ps1 and control_service.ps1
do them. A start is decided by _agent.startup's verdict on what is on disk (STATE.md).

Internal to this collection: not a public API; it may change in any release.
"""

from __future__ import annotations

import base64
import datetime
import json

from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._agent import config_file as agent_config
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._agent import rules as agent_rules
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._agent import settings as agent_settings
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._agent.config_file import decode_config, parse_toml
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host import sha256_hex
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host.errors import HostOperationError
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host.simulated.accounts import (
    account_entry,
    account_report,
    apply_group_policy,
    resolve_sid,
    token_group_sids,
)
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host.simulated.state import now_utc, utc_now
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._windows.accounts import ADMINISTRATORS, same_sid

SERVICE_NOT_FOUND = "SERVICE_NOT_FOUND"
LOG_FILE_NAME = "worker-agent.log"
DEFAULT_SESSION_ROOT = r"C:\ProgramData\Amazon\OpenJD"
WORKER_JSON = r"C:\ProgramData\Amazon\Deadline\Cache\worker.json"
DEFAULT_DISPLAY_NAME = "AWS Deadline Cloud Worker"
FIRST_SESSION_PID = 20000  # fake pids of session processes, apart from the agent's own
# What the Service Control Manager's StartService reports (Win32 error and its system message).
ERROR_SERVICE_DISABLED = 1058
SERVICE_DISABLED_ERROR = (
    "The service cannot be started, either because it is disabled or because it has no enabled devices associated with it."
)
ERROR_SERVICE_LOGON_FAILED = 1069
ERROR_PROCESS_ABORTED = 1067  # the exit code of a service whose process ended without reporting a stop
EVENT_TERMINATED_UNEXPECTEDLY = 7034
# Where the simulated agent is installed unless the state says otherwise (agent.location / agent.python).
DEFAULT_PYTHON = r"C:\Program Files\Python311\python.exe"
DEFAULT_LOCATION = r"C:\Program Files\Python311\Lib\site-packages\deadline_worker_agent"
FIRST_PID = 4100
# A running service whose state file gives no start time has run since before anything the
# simulator wrote (files it writes get a `modified` time; hand-written ones have none).
STARTED_BEFORE_ANY_WRITE = "2000-01-01T00:00:00.000000+00:00"


def _service(state, name: str) -> tuple[str, dict] | None:
    for key, entry in (state.data.get("services") or {}).items():
        if str(key).casefold() == name.casefold() and isinstance(entry, dict):
            return str(key), entry
    return None


def _machine_environment(state) -> dict[str, str]:
    return {str(k): str(v) for k, v in (state.data.get("environment") or {}).items() if agent_settings.is_agent_variable(str(k))}


def _config_value(state, table: str, key: str, config_path: str = "") -> str | None:
    """A path setting of worker.toml as the agent reads it, None when absent or unreadable."""
    data = state.read_bytes(config_path or agent_config.CONFIG_PATH)
    decoded = decode_config(data) if data is not None else None
    if decoded is None or decoded.text is None or not decoded.agent_reads_bytes:
        return None
    document, _error = parse_toml(decoded.text)
    value = ((document or {}).get(table) or {}).get(key)
    return str(value) if isinstance(value, str) and value else None


def _log_path(state) -> str:
    folder = _config_value(state, "logging", "worker_logs_dir")
    return folder.rstrip("\\") + "\\" + LOG_FILE_NAME if folder else agent_rules.LOG_PATH


# Render sessions (STATE.md) --------------------------------------------------------------


def _due(moment: object, now: datetime.datetime) -> bool:
    return bool(moment) and datetime.datetime.fromisoformat(str(moment).replace("Z", "+00:00")) <= now


# The service process's token (STATE.md: services.<name>.token_groups) -------------------------


def _stopped(entry: dict, **fields) -> None:
    """The service's process is gone: its token with it."""
    entry.update(state="stopped", pid=None, **fields)
    entry.pop("token_groups", None)


def _record_token(state, entry: dict) -> None:
    """What the process started now runs with: the groups of its account's service logon now."""
    groups = token_group_sids(state, str(entry.get("account") or ""))
    if groups is None:
        entry.pop("token_groups", None)
    else:
        entry["token_groups"] = groups


def pin_running_tokens(state, account_sid: str) -> None:
    """Before the groups of ``account_sid`` change: each running service of that account that has no
    token recorded (it ran before the state file said how it started) keeps the groups it has now."""
    for entry in (state.data.get("services") or {}).values():
        running = isinstance(entry, dict) and entry.get("state") == "running" and "token_groups" not in entry
        if running and _logon_sid(state, entry.get("account")) == account_sid:
            _record_token(state, entry)


def _token_report(state, entry: dict) -> dict:
    """read_agent_info's token_administrators and token_error of a service: whether its running process's
    token holds Administrators (the recorded token_groups, else the account's groups now)."""
    if entry.get("state") != "running":
        return {"token_administrators": None, "token_error": None}
    groups = entry.get("token_groups")
    if groups is None:
        groups = token_group_sids(state, str(entry.get("account") or "")) or []
    return {"token_administrators": any(same_sid(g, ADMINISTRATORS) for g in groups), "token_error": None}


def _crash(entry: dict) -> dict:
    """The service's process ended without telling the Service Control Manager: the state is stopped,
    the exit code ERROR_PROCESS_ABORTED, and the System log gets event 7034. Returns the event."""
    _stopped(entry, exit_code=ERROR_PROCESS_ABORTED)
    entry.pop("exits_at", None)
    entry["crashes"] = int(entry.get("crashes") or 0) + 1
    name = entry.get("display_name") or DEFAULT_DISPLAY_NAME
    return _event(EVENT_TERMINATED_UNEXPECTEDLY, f"The {name} service terminated unexpectedly.  It has done this {entry['crashes']} time(s).")


def settle_services(state) -> None:
    """What the services did since the last call: a pending start or stop that has finished
    (``pending_until``), a process that exited on its own (``exits_at``). Run at each remote call."""
    now = now_utc()
    for entry in (state.data.get("services") or {}).values():
        if not isinstance(entry, dict):
            continue
        if _due(entry.get("pending_until"), now):
            if entry.get("state") == "stop_pending":
                _stopped(entry)
            elif entry.get("state") == "start_pending":
                entry["state"] = "running"
            entry.pop("pending_until")
        if entry.get("state") == "running" and _due(entry.get("exits_at"), now):
            _crash(entry)


def end_finished_sessions(state) -> None:
    """Drops every service's sessions whose time has come; run at each remote call, before the
    operation. A session's ``ends_after_s`` becomes ``ends_at`` the first time a call sees it."""
    now = now_utc()
    for entry in (state.data.get("services") or {}).values():
        if not isinstance(entry, dict) or not entry.get("sessions"):
            continue
        left = []
        for item in entry["sessions"]:
            session = item if isinstance(item, dict) else {"id": str(item)}
            if "ends_after_s" in session and "ends_at" not in session:
                session["ends_at"] = (now + datetime.timedelta(seconds=float(session.pop("ends_after_s")))).isoformat()
            ends = session.get("ends_at")
            if ends and datetime.datetime.fromisoformat(str(ends).replace("Z", "+00:00")) <= now:
                continue
            left.append(session)
        entry["sessions"] = left


def _running_sessions(entry: dict) -> list[dict]:
    """The sessions the agent runs now: none unless its service runs."""
    if entry.get("state") != "running":
        return []
    return [s if isinstance(s, dict) else {"id": str(s)} for s in entry.get("sessions") or []]


def _worker_id(state) -> str | None:
    data = state.read_bytes(WORKER_JSON)
    try:
        value = json.loads(data.decode("utf-8")).get("worker_id") if data is not None else None
    except (ValueError, AttributeError):
        return None
    return str(value) if value else None


def sessions_report(state, entry: dict | None, config_path: str = "") -> dict:
    """What read_agent_info reports of the render sessions (contract: ``sessions``); the session
    root is worker.toml's (``config_path``, else the agent's default path)."""
    running = _running_sessions(entry) if entry is not None else []
    root = _config_value(state, "worker", "session_root_dir", config_path) or DEFAULT_SESSION_ROOT
    ids = [str(s.get("id")) for s in running]
    return {
        "busy": bool(running),
        "count": len(running),
        "ids": ids,
        "processes": [{"pid": FIRST_SESSION_PID + 4 * n, "name": "python.exe"} for n in range(len(running))],
        "directories": [root.rstrip("\\") + "\\" + session_id for session_id in ids],
        "root": root,
        "worker_id": _worker_id(state),
    }


def _interrupt(entry: dict) -> int:
    """A stop ends the sessions left, as the real agent's stop does; their ids are kept for tests."""
    sessions = _running_sessions(entry)
    if sessions:
        entry["interrupted_sessions"] = [*(entry.get("interrupted_sessions") or []), *(str(s.get("id")) for s in sessions)]
    if "sessions" in entry:
        entry["sessions"] = []
    return len(sessions)


# read_agent_info -------------------------------------------------------------------------


def _logon_sid(state, logon_account: str | None) -> str | None:
    if not logon_account:
        return None
    try:
        return resolve_sid(state, logon_account)
    except HostOperationError:
        return None


def _user_environment(state, sid: str | None) -> dict[str, str] | None:
    """DEADLINE_* of the logon account's own variables; None when its entry has no ``environment``
    (on Windows: the hive is not loaded, or the account is a service account)."""
    entry = account_entry(state, sid) if sid else None
    if entry is None or not isinstance(entry.get("environment"), dict):
        return None
    return {str(k): str(v) for k, v in entry["environment"].items() if agent_settings.is_agent_variable(str(k))}


def read_agent_info(state, parameters: dict) -> dict:
    service_name = parameters["service"]
    found = _service(state, service_name)
    agent = state.data.get("agent") or {}
    version = agent.get("version")
    service: dict = {"name": service_name, "exists": found is not None}
    logon_sid = None
    if found is not None:
        key, entry = found
        running = entry.get("state") == "running"
        logon_sid = _logon_sid(state, entry.get("account"))
        service.update(
            name=key,
            state=entry.get("state", "stopped"),
            start_mode=entry.get("start_mode", "auto"),
            account=entry.get("account"),
            account_sid=logon_sid,
            environment=[str(e) for e in entry.get("environment") or []],
            pid=entry.get("pid") if running else None,
            started_at=(entry.get("started_at") or STARTED_BEFORE_ANY_WRITE) if running else None,
            exit_code=int(entry.get("exit_code") or 0),
            service_specific_exit_code=0,
            **_token_report(state, entry),
        )
    account_name = parameters["account"] or service.get("account")
    account = None
    account_error = None
    if account_name:
        try:
            account = account_report(state, account_name)
        except HostOperationError as error:
            account_error = {"code": error.code, "message": error.message}
    data = state.read_bytes(parameters["config_path"])
    return {
        "agent": {
            "version": None if version is None else str(version),
            "location": agent.get("location", DEFAULT_LOCATION) if version is not None else None,
            "python": agent.get("python", DEFAULT_PYTHON) if version is not None else None,
            "error": None if version is not None else "deadline_worker_agent is not installed",
        },
        "service": service,
        "machine_environment": _machine_environment(state),
        "user_environment": _user_environment(state, logon_sid),
        "account": account,
        "account_error": account_error,
        "config": {
            "path": parameters["config_path"],
            "exists": data is not None,
            "content": base64.b64encode(data or b"").decode("ascii"),
            "modified_at": state.modified_at(parameters["config_path"]),
            "sha256": sha256_hex(data) if data is not None else "",
        },
        "sessions": sessions_report(state, found[1] if found is not None else None, parameters["config_path"]),
    }


# control_service -------------------------------------------------------------------------


def _append_log(state, lines: list[str]) -> None:
    path = _log_path(state)
    current = state.read_bytes(path) or b""
    state.write_bytes(path, current + "".join(f"{line}\r\n" for line in lines).encode("utf-8"))


def _event(event_id: int, message: str) -> dict:
    return {"id": event_id, "time": utc_now(), "message": message}


def _start(state, key: str, entry: dict) -> dict:
    """What a start does: the Service Control Manager refuses a disabled service or an account
    without the logon right; the agent stops at a configuration error; else it runs.
    Returns the failure fields of control_service's result."""
    failure = {"win32_error": None, "error": None, "events": []}
    # control_service.ps1 reports a refused Start() as "Start: <the system's text for the code>".
    if str(entry.get("start_mode", "auto")).casefold() == "disabled":
        return {**failure, "win32_error": ERROR_SERVICE_DISABLED, "error": f"Start: {SERVICE_DISABLED_ERROR}"}
    # A start stands for the reboot or the hours that pass before it on a real farm: a Group Policy
    # refresh has happened, and what the LSA was told about a right the policy defines is undone.
    apply_group_policy(state)
    raw = read_agent_info(state, {"service": key, "config_path": agent_config.CONFIG_PATH, "account": ""})
    verdict = agent_rules.read_host(raw).verdict
    if not verdict.starts and verdict.stage == "logon":
        _stopped(entry, last_error=verdict.error, exit_code=ERROR_SERVICE_LOGON_FAILED)
        return {**failure, "win32_error": ERROR_SERVICE_LOGON_FAILED, "error": f"Start: {verdict.error}"}
    if not verdict.starts:
        # The agent exits before it configures logging: its log gets nothing (domain notes 1.3).
        _stopped(entry, last_error=verdict.error, exit_code=1)
        entry["crashes"] = int(entry.get("crashes") or 0) + 1
        name = entry.get("display_name") or DEFAULT_DISPLAY_NAME
        message = f"The {name} service terminated unexpectedly.  It has done this {entry['crashes']} time(s)."
        return {**failure, "error": verdict.error, "events": [_event(EVENT_TERMINATED_UNEXPECTEDLY, message)]}
    pid = int(state.data.get("next_pid") or FIRST_PID)
    state.data["next_pid"] = pid + 4
    entry.update(state="running", pid=pid, started_at=utc_now(), exit_code=0)
    entry.pop("last_error", None)
    _record_token(state, entry)  # the process logs on with the account's groups as they are now
    now = now_utc()
    if float(entry.get("start_seconds") or 0) > 0:
        # The process runs, and reports running only once its start-up is done.
        entry.update(state="start_pending", pending_until=(now + datetime.timedelta(seconds=float(entry["start_seconds"]))).isoformat())
    if entry.get("exits_after_s") is not None:
        entry["exits_at"] = (now + datetime.timedelta(seconds=float(entry["exits_after_s"]))).isoformat()
    agent = state.data.get("agent") or {}
    _append_log(
        state,
        [
            "[INFO] 👋 Worker Agent starting",
            f"[INFO] AgentInfo Agent Version: {agent.get('version')} Installed at:"
            f" {agent.get('location', DEFAULT_LOCATION)} Running as user: {entry.get('account')}",
        ],
    )
    return failure


def _reading(state, key: str, parameters: dict) -> dict | None:
    if not parameters["config_path"]:
        return None
    return read_agent_info(state, {"service": key, "config_path": parameters["config_path"], "account": parameters["account"]})


def control_service(state, parameters: dict) -> dict:
    name, wanted = parameters["name"], parameters["state"]
    if wanted not in ("restarted", "started", "stopped"):
        raise HostOperationError("INVALID_STATE", f"state must be restarted, started or stopped, not {wanted!r}")
    found = _service(state, name)
    if found is None:
        raise HostOperationError(SERVICE_NOT_FOUND, f"the service {name} does not exist on {state.hostname}")
    key, entry = found
    was_running = entry.get("state") == "running"
    before_pid = entry.get("pid") if was_running else None
    stops = wanted in ("stopped", "restarted") and was_running
    result = {
        "changed": False,
        "state": "running" if was_running else "stopped",
        "restarted": False,
        "healthy": was_running != (wanted == "stopped"),
        "pid": before_pid,
        "previous_pid": before_pid,
        "error": None,
        "win32_error": None,
        "exit_code": int(entry.get("exit_code") or 0),
        "service_specific_exit_code": 0,
        "busy": False,
        "interrupted": 0,
        "log_tail": [],
        "events": [],
    }
    if stops and parameters["if_idle"] and _running_sessions(entry):
        sessions = sessions_report(state, entry, parameters["config_path"])
        return {**result, "healthy": True, "busy": True, "sessions": sessions, "reading": _reading(state, key, parameters)}
    log_path = _log_path(state)
    log_before = len(state.read_bytes(log_path) or b"")
    failure = {"win32_error": None, "error": None, "events": []}
    timeout, settle = float(parameters["timeout"]), float(parameters["settle"])
    if stops:
        result["interrupted"] = _interrupt(entry)
        result["changed"] = True
        stop_seconds = float(entry.get("stop_seconds") or 0)
        if stop_seconds > timeout:
            # Still stopping when the wait ends: no start follows (control_service.ps1 does the same).
            until = now_utc() + datetime.timedelta(seconds=stop_seconds)
            entry.update(state="stop_pending", pending_until=until.isoformat())
            failure = {**failure, "error": f"{name} did not stop within {parameters['timeout']} seconds"}
        else:
            _stopped(entry)
    if failure["error"] is None and (wanted == "restarted" or (wanted == "started" and not was_running)):
        if wanted == "restarted":
            entry["restarts"] = int(entry.get("restarts") or 0) + 1
        failure = _start(state, key, entry)
        result["changed"] = True
        result["restarted"] = wanted == "restarted"
        if failure["error"] is None and entry.get("state") == "start_pending" and float(entry["start_seconds"]) > timeout:
            failure = {**failure, "error": f"{name} did not reach running within {parameters['timeout']} seconds (it is start_pending)"}
        elif failure["error"] is None and entry.get("exits_after_s") is not None and float(entry["exits_after_s"]) <= settle:
            # It ended within the settle time, before the call looked again: unhealthy, with the code it left.
            failure = {**failure, "events": [_crash(entry)]}
    running = entry.get("state") == "running"
    log = state.read_bytes(log_path) or b""
    healthy = failure["error"] is None and (running if wanted != "stopped" else entry.get("state") == "stopped")
    error = failure["error"] or (None if running or wanted == "stopped" else entry.get("last_error"))
    if error is None and not healthy:
        # As control_service.ps1 words it when the service itself says nothing more.
        error = f"the service's last exit code is {int(entry.get('exit_code') or 0)} (service-specific 0, state {entry.get('state')})"
    result.update(
        state=str(entry.get("state") or "stopped"),
        healthy=healthy,
        pid=entry.get("pid") if running else None,
        error=error,
        win32_error=failure["win32_error"],
        exit_code=int(entry.get("exit_code") or 0),
        events=failure["events"],
        log_tail=log[log_before:].decode("utf-8", errors="replace").splitlines() if len(log) > log_before else [],
        sessions=sessions_report(state, entry, parameters["config_path"]),
        reading=_reading(state, key, parameters),
    )
    return result


OPERATIONS = {"read_agent_info": read_agent_info, "control_service": control_service}
