# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Readings of many workers turned into one report, and what keeps the role from fixing one worker.

Pure Python, no Ansible: the filter plugins of the collection (``fleet_summary``,
``fleet_report_lines``, ``fleet_report_csv``, ``worker_findings_lines``, ``worker_refusals``) are
thin wrappers of the functions here. A *reading* is what ``deadline_cloud.cmf.worker_agent_info``
returned for a host (``findings`` and ``ready``), or a failed or unreachable task result, or None
when the host has no reading at all.

Internal to this collection: not a public API; it may change in any release.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping
from typing import Any

from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils.agent_rules import parse_version
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils.user_rights import DENY_OVERRIDES

SEVERITIES = ("blocker", "security", "warning", "info")

# The blockers the role fixes by itself (see its README); every other blocker refuses the host
# before any change, so a blocker this list does not know is refused, not run into.
# - the opt-in, a job user beside it and the removed impersonation key: its one worker_toml write
# - a BOM or UTF-16: worker_toml rewrites the file as UTF-8 (bytes that are not text stay refused)
# - the logon right: it grants SeServiceLogonRight (a deny right against it is refused below)
ROLE_FIXES = frozenset({"AGENT_OPT_IN_MISSING", "JOB_USER_CONFLICT", "LEGACY_IMPERSONATION_KEY", "CONFIG_ENCODING", "SERVICE_LOGON_RIGHT_MISSING"})


_MAX_NAMES = 6


def _severity_rank(severity: str) -> int:
    try:
        return SEVERITIES.index(severity)
    except ValueError:
        return len(SEVERITIES)


def _findings(reading: Mapping[str, Any]) -> list[dict]:
    found = reading.get("findings") or []
    return [f for f in found if isinstance(f, Mapping) and f.get("id")]


def host_entry(host: str, reading: Any) -> dict:
    """One host's line of the report: its status, readiness and findings."""
    entry: dict[str, Any] = {"host": host, "status": "no_reading", "ready": False, "findings": [], "error": ""}
    if not isinstance(reading, Mapping) or not reading:
        entry["error"] = "no reading: the host was not reached, or it failed before it was read"
        return entry
    if reading.get("unreachable"):
        entry.update(status="unreachable", error=str(reading.get("msg") or "unreachable"))
        return entry
    if reading.get("failed") and "findings" not in reading:
        entry.update(status="error", error=str(reading.get("msg") or "the reading failed"))
        return entry
    findings = [
        {
            "id": str(f["id"]),
            "severity": str(f.get("severity") or "info"),
            "message": str(f.get("message") or ""),
            "fix": str(f.get("fix") or ""),
        }
        for f in _findings(reading)
    ]
    ready = bool(reading.get("ready"))
    entry.update(status="ready" if ready else "not_ready", ready=ready, findings=findings)
    return entry


def summarize(readings: Mapping[str, Any]) -> dict:
    """The whole run: how many hosts are ready, and which findings hold how many hosts back."""
    hosts = [host_entry(str(host), reading) for host, reading in readings.items()]
    by_id: dict[str, dict] = {}
    for entry in hosts:
        for finding in entry["findings"]:
            item = by_id.setdefault(
                finding["id"],
                {
                    "id": finding["id"],
                    "severity": finding["severity"],
                    "hosts": [],
                    "message": finding["message"],
                    "fix": finding["fix"],
                },
            )
            if entry["host"] not in item["hosts"]:
                item["hosts"].append(entry["host"])
    findings = sorted(by_id.values(), key=lambda f: (_severity_rank(f["severity"]), -len(f["hosts"]), f["id"]))
    for item in findings:
        item["count"] = len(item["hosts"])
    counts = dict.fromkeys(("ready", "not_ready", "unreachable", "error", "no_reading"), 0)
    for entry in hosts:
        counts[entry["status"]] += 1
    return {
        "total": len(hosts),
        "ready": counts["ready"],
        "not_ready": counts["not_ready"],
        "unreachable": counts["unreachable"],
        "errors": counts["error"] + counts["no_reading"],
        "holding_back": [f for f in findings if f["severity"] == "blocker"],
        "findings": findings,
        "hosts": sorted(hosts, key=lambda e: e["host"]),
    }


def _names(hosts: list[str]) -> str:
    shown = ", ".join(hosts[:_MAX_NAMES])
    if len(hosts) > _MAX_NAMES:
        shown += f" and {len(hosts) - _MAX_NAMES} more"
    return shown


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def report_lines(summary: Mapping[str, Any]) -> list[str]:
    """The summary as lines for a terminal: totals, then findings by severity and host count."""
    total = int(summary["total"])
    head = f"{_plural(total, 'host')}: {summary['ready']} ready, {summary['not_ready']} not ready"
    if summary["unreachable"]:
        head += f", {summary['unreachable']} unreachable"
    if summary["errors"]:
        head += f", {summary['errors']} without a reading"
    lines = [head]
    findings = list(summary["findings"])
    if not findings:
        lines.append("no findings")
    width = max((len(f["id"]) for f in findings), default=0)
    for severity in SEVERITIES:
        group = [f for f in findings if f["severity"] == severity]
        if not group:
            continue
        title = {
            "blocker": "holding hosts back (blocker)",
            "security": "security",
            "warning": "warnings",
            "info": "information",
        }[severity]
        lines.append(f"{title}:")
        for item in group:
            lines.append(f"  {item['id']:<{width}}  {_plural(item['count'], 'host'):>9}  {_names(item['hosts'])}")
    failed = [e for e in summary["hosts"] if e["status"] in ("unreachable", "error", "no_reading")]
    if failed:
        lines.append("without a reading:")
        lines.extend(f"  {e['host']}: {e['error']}" for e in failed)
    return lines


def findings_lines(reading: Any, host: str = "") -> list[str]:
    """One host's findings, one line each: severity, id, message, then the fix."""
    entry = host_entry(host, reading)
    if entry["status"] in ("unreachable", "error", "no_reading"):
        return [f"{entry['status']}: {entry['error']}"]
    lines = ["ready: a WORKER_AGENT_USER job would run" if entry["ready"] else "not ready"]
    for f in sorted(entry["findings"], key=lambda f: (_severity_rank(f["severity"]), f["id"])):
        lines.append(f"{f['severity'].upper()} {f['id']}: {f['message']}")
        if f["fix"]:
            lines.append(f"  fix: {f['fix']}")
    return lines


CSV_COLUMNS = ("host", "status", "ready", "finding", "severity", "message", "fix")


def report_csv(summary: Mapping[str, Any]) -> str:
    """One row per host and finding (a host without findings has one row with an empty finding)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for entry in summary["hosts"]:
        rows = entry["findings"] or [{"id": "", "severity": "", "message": entry["error"], "fix": ""}]
        for f in rows:
            writer.writerow(
                (
                    entry["host"],
                    entry["status"],
                    str(entry["ready"]).lower(),
                    f["id"],
                    f["severity"],
                    f["message"],
                    f["fix"],
                )
            )
    return out.getvalue()


def report_json(summary: Mapping[str, Any]) -> str:
    return json.dumps(summary, indent=2, sort_keys=False) + "\n"


# ---------------------------------------------------------------------------------------------
# What the role refuses to touch


def version_older(version: str, minimum: str) -> bool | None:
    """True when ``version`` is older than ``minimum``; None when either cannot be read."""
    have, want = parse_version(version), parse_version(minimum)
    if have is None or want is None:
        return None
    return have < want


def _get(mapping: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(mapping, Mapping):
            return None
        mapping = mapping.get(key)
    return mapping


# allow right -> the deny right that overrides it
DENY_RIGHTS = {allow: deny for deny, allow in DENY_OVERRIDES.items()}


def refusals(
    reading: Mapping[str, Any], min_agent_version: str = "0.27.3", rights: Iterable[str] | None = None
) -> list[dict]:
    """The blockers the role cannot fix on a host, each ``{id, message, fix}``; empty when it can go on.

    The causes are worker_agent_info's findings (agent_rules decides them, once). The role adds
    only what depends on its own variables: a minimum agent version above the agent's own, and a
    deny right against a right the role is asked to grant.
    """
    found: dict[str, dict] = {}

    def add(fid: str, message: str, fix: str) -> None:
        found.setdefault(fid, {"id": fid, "message": message, "fix": fix})

    def fixed_by_role(fid: str) -> bool:
        if fid == "CONFIG_ENCODING":
            return _get(reading, "config", "encoding") != "invalid"
        if fid == "SERVICE_LOGON_RIGHT_MISSING":
            return "SeServiceLogonRight" in set(rights or ())
        if fid == "AGENT_STARTUP_ERROR":  # the job user's own checks: the role comments windows_job_user out
            return _get(reading, "startup", "stage") == "job_user"
        return fid in ROLE_FIXES

    for f in _findings(reading):
        fid = str(f["id"])
        if f.get("severity") == "blocker" and not fixed_by_role(fid):
            add(fid, str(f.get("message") or ""), str(f.get("fix") or ""))

    held = _get(reading, "account", "effective_rights") or {}
    direct = _get(reading, "account", "rights") or []
    for right in rights or ():
        deny = DENY_RIGHTS.get(str(right))
        if deny and isinstance(held, Mapping) and (deny in held or deny in direct):
            source = held.get(deny) if isinstance(held.get(deny), Mapping) else {}
            via = ", ".join(str(g.get("name")) for g in source.get("groups") or [] if isinstance(g, Mapping))
            add(
                "RIGHT_DENIED",
                f"the account holds {deny}" + (f" (through {via})" if via else "") + f", which overrides {right}:"
                " granting it would not let the account use it",
                f"remove {deny} from the account and its groups (Local Security Policy or the GPO that sets it)",
            )
    version = _get(reading, "agent", "version")
    if version and version_older(str(version), min_agent_version):
        add(
            "AGENT_VERSION_UNSUPPORTED",
            f"the worker agent is {version}; this run asks for {min_agent_version} or newer",
            f"upgrade deadline-cloud-worker-agent to {min_agent_version} or newer",
        )
    return sorted(found.values(), key=lambda f: f["id"])


def refusal_message(host_refusals: Iterable[Mapping[str, Any]]) -> str:
    """The message the role fails with: every refusal, with its fix."""
    parts = [f"{r['id']}: {r['message']}" + (f" Fix: {r['fix']}" if r.get("fix") else "") for r in host_refusals]
    return "the role changed nothing on this host, because it cannot fix: " + " | ".join(parts)


def not_ready_message(findings: Iterable[Mapping[str, Any]]) -> str:
    """The message the role fails with when the host is not ready after converging."""
    parts = [
        f"{f['id']} ({f.get('severity', '')}): {f.get('message', '')}" + (f" Fix: {f['fix']}" if f.get("fix") else "")
        for f in findings
        if f.get("severity") == "blocker"
    ] or ["worker_agent_info reports ready: false without a blocker finding"]
    return "the worker is not ready for WORKER_AGENT_USER jobs: " + " | ".join(parts)


def shutdown_on_stop(reading: Mapping[str, Any]) -> bool:
    """Whether the agent would shut the host down when told to stop (its resolved setting, else the file's)."""
    resolved = _get(reading, "settings", "shutdown_on_stop")
    if isinstance(resolved, Mapping) and "value" in resolved:
        return resolved.get("value") is True
    return _get(reading, "config", "values", "os", "shutdown_on_stop") is True


def _result(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _ran(result: Mapping[str, Any]) -> bool:
    return bool(result) and not result.get("skipped")


def outcome(
    before: Any,
    *,
    after: Any = None,
    rights: Any = None,
    groups: Any = None,
    config: Any = None,
    restart: Any = None,
    refusals: Any = None,
    check_mode: bool = False,
    error: str = "",
) -> dict:
    """The role's outcome on one host, from the results its tasks registered (empty when a task did not run).

    ``changes`` says what changed (what would, in check mode); ``findings_before`` is the first
    reading; ``findings_after`` and ``ready`` come from the second reading, or from the first when
    nothing changed (then it is the verification); they are None when no reading describes the host
    as it is now (check mode with changes, a failure, or verification turned off).
    """
    before, after = _result(before), _result(after)
    rights, groups, config, restart = _result(rights), _result(groups), _result(config), _result(restart)
    changes: list[str] = []
    rights_added = list(rights.get("added") or [])
    if rights_added:
        changes.append("granted " + ", ".join(rights_added))
    groups_left = [dict(g) for g in groups.get("removed") or []]
    if groups_left:
        changes.append("left " + ", ".join(str(g.get("name") or g.get("sid")) for g in groups_left))
    if config.get("changed"):
        changes.append(
            "set [os] run_jobs_as_agent_user = true in worker.toml, without windows_job_user and impersonation"
        )
    restarted = bool(restart.get("restarted") or (restart.get("changed") and _ran(restart)))
    if restarted:
        changes.append("restarted the service")
    changed = any(bool(r.get("changed")) for r in (rights, groups, config, restart))
    final: Mapping[str, Any] = {}
    verified_by = None
    if _ran(after) and "findings" in after:
        final, verified_by = after, "second reading"
    elif not changed and not error and "findings" in before:
        final, verified_by = before, "first reading"
    return {
        "changed": changed,
        "check_mode": bool(check_mode),
        "refused": [dict(r) for r in refusals or []],
        "error": str(error or ""),
        "changes": changes,
        "rights_added": rights_added,
        "groups_left": groups_left,
        "worker_toml": {
            "changed": bool(config.get("changed")),
            "previous": config.get("previous") or {},
            "warnings": list(config.get("warnings") or []),
            "backup_file": config.get("backup_file") or "",
        },
        "restarted": restarted,
        "service": {
            "state": restart.get("state") if _ran(restart) else _get(before, "service", "state"),
            "healthy": restart.get("healthy") if _ran(restart) else None,
            "pid": restart.get("pid") if _ran(restart) else _get(before, "service", "pid"),
        },
        "account": {"name": _get(before, "account", "name"), "sid": _get(before, "account", "sid")},
        "findings_before": list(before.get("findings") or []),
        "ready_before": bool(before.get("ready")) if "ready" in before else None,
        "findings_after": list(final.get("findings") or []) if final else None,
        "ready": bool(final.get("ready")) if final else None,
        "verified_by": verified_by,
    }
