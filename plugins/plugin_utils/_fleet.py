# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Readings of many workers turned into one report, and what keeps the role from fixing one worker.

Pure Python, no Ansible: the filter plugins of the collection (``fleet_summary``,
``fleet_report_lines``, ``fleet_report_csv``, ``worker_findings_lines``, ``fleet_converge_summary``...) are
thin wrappers of the functions here. A *reading* is what ``deadline_cloud.cmf.worker_agent_info``
returned for a host (``findings`` and ``ready``), or a failed or unreachable task result, or None
when the host has no reading at all. A *plan* is the role's (``deadline_worker_agent_user_result.plan``):
with it, each finding says what converge will do about it.

Internal to this collection: not a public API; it may change in any release.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from typing import Any

from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._agent import deadline_api

SEVERITIES = ("blocker", "security", "warning", "info")
_VIEW_FIELDS = ("checked", "busy", "status", "active_sessions", "reason")


_MAX_NAMES = 6


def _severity_rank(severity: str) -> int:
    try:
        return SEVERITIES.index(severity)
    except ValueError:
        return len(SEVERITIES)


def _findings(reading: Mapping[str, Any]) -> list[dict]:
    found = reading.get("findings") or []
    return [f for f in found if isinstance(f, Mapping) and f.get("id")]


def host_entry(host: str, reading: Any, plan: Any = None) -> dict:
    """One host's line of the report: its status, readiness and findings (with what converge does
    about each, when the role's plan for the host is given)."""
    entry: dict[str, Any] = {"host": host, "status": "no_reading", "ready": False, "findings": [], "error": "", "converge": ""}
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
            "converge": converge_action(str(f["id"]), plan),
        }
        for f in _findings(reading)
    ]
    ready = bool(reading.get("ready"))
    entry.update(status="ready" if ready else "not_ready", ready=ready, findings=findings)
    if isinstance(plan, Mapping) and plan:
        refused = [r for r in plan.get("refused") or [] if isinstance(r, Mapping)]
        entry["converge"] = (
            "refuses: " + ", ".join(str(r.get("id")) for r in refused)
            if refused
            else ("fixes" if plan.get("act") else "nothing to do")
        )
    return entry


def converge_action(finding_id: str, plan: Any) -> str:
    """What converge does about one finding: it ``fixes`` it, ``refuses`` the host for it, or
    ``leaves`` it (a warning it does not touch); empty without a plan."""
    if not isinstance(plan, Mapping) or not plan:
        return ""
    if finding_id in {str(r.get("id")) for r in plan.get("refused") or [] if isinstance(r, Mapping)}:
        return "refuses"
    if plan.get("refused"):
        return "leaves"
    return "leaves" if finding_id in set(plan.get("predicted_ids") or []) else "fixes"


def summarize(readings: Mapping[str, Any], plans: Mapping[str, Any] | None = None) -> dict:
    """The whole run: how many hosts are ready, and which findings hold how many hosts back."""
    plans = {host: (p.get("plan") if isinstance(p, Mapping) and "plan" in p else p) for host, p in (plans or {}).items()}
    hosts = [host_entry(str(host), reading, plans.get(host)) for host, reading in readings.items()]
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
                    "converge": finding["converge"],
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


def findings_lines(reading: Any, host: str = "", plan: Any = None) -> list[str]:
    """One host's findings, one line each: severity, id, message, then the fix (and what converge
    does about it, given the role's plan)."""
    entry = host_entry(host, reading, plan)
    if entry["status"] in ("unreachable", "error", "no_reading"):
        return [f"{entry['status']}: {entry['error']}"]
    lines = ["ready: a WORKER_AGENT_USER job would run" if entry["ready"] else "not ready"]
    for f in sorted(entry["findings"], key=lambda f: (_severity_rank(f["severity"]), f["id"])):
        lines.append(f"{f['severity'].upper()} {f['id']}: {f['message']}")
        if f["fix"]:
            lines.append(f"  fix: {f['fix']}")
        if f["converge"]:
            lines.append(f"  converge {f['converge']} it")
    return lines


CSV_COLUMNS = ("host", "status", "ready", "finding", "severity", "converge", "message", "fix")


def report_csv(summary: Mapping[str, Any]) -> str:
    """One row per host and finding (a host without findings has one row with an empty finding)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for entry in summary["hosts"]:
        rows = entry["findings"] or [{"id": "", "severity": "", "converge": "", "message": entry["error"], "fix": ""}]
        for f in rows:
            writer.writerow(
                (
                    entry["host"],
                    entry["status"],
                    str(entry["ready"]).lower(),
                    f["id"],
                    f["severity"],
                    f["converge"],
                    f["message"],
                    f["fix"],
                )
            )
    return out.getvalue()


def report_json(summary: Mapping[str, Any]) -> str:
    return json.dumps(summary, indent=2, sort_keys=False) + "\n"


# ---------------------------------------------------------------------------------------------
# The converge run: what happened to each host


CONVERGE_STATUSES = ("fixed", "already_fine", "restart_pending", "refused", "failed", "not_ready", "unreachable")
_CONVERGE_TITLES = {
    "fixed": "fixed",
    "already_fine": "already fine",
    "restart_pending": "restart pending",
    "refused": "refused",
    "failed": "failed",
    "not_ready": "not ready",
    "unreachable": "unreachable or not run",
}


def converge_entry(host: str, result: Any) -> dict:
    """One host of a converge run, from its ``deadline_worker_agent_user_result`` (None: no result)."""
    if not isinstance(result, Mapping) or not result.get("status"):
        return {"host": host, "status": "unreachable", "detail": "no result: the host was not reached or the role did not run", "sessions": 0}
    status = str(result["status"])
    if status == "would_change":
        status = "fixed"
    if status == "planned":  # the run stopped on this host before its changes were done
        status, result = "unreachable", {**result, "error": "the run stopped on this host before its changes were done"}
    detail = ""
    if status == "refused":
        detail = " | ".join(f"{r.get('id')}: {r.get('message')} Fix: {r.get('fix')}" for r in result.get("refused") or [])
    elif status in {"failed", "not_ready", "unreachable"}:
        blockers = [f"{f.get('id')}: {f.get('message')}" for f in result.get("findings_after") or [] if f.get("severity") == "blocker"]
        detail = str(result.get("error") or "") or " | ".join(blockers)
    elif status == "restart_pending":
        detail = str(result.get("restart_pending_reason") or "")
    elif status == "fixed":
        detail = "; ".join(result.get("changes") or [])
    sessions = 0
    reason = str(result.get("restart_pending_reason") or "")
    if status == "restart_pending" and reason.startswith("busy"):
        try:
            sessions = int(reason.split()[1])
        except (IndexError, ValueError):
            sessions = 1
    return {
        "host": host,
        "status": status,
        "detail": detail,
        "sessions": sessions,
        "interrupted_sessions": int(result.get("interrupted_sessions") or 0),
        "service_view": result.get("service_view") if isinstance(result.get("service_view"), Mapping) else None,
    }


def converge_summary(results: Mapping[str, Any]) -> dict:
    """Every host of a converge run by status, with counts (JSON, CSV and set_stats take this)."""
    hosts = sorted((converge_entry(str(h), r) for h, r in results.items()), key=lambda e: e["host"])
    counts = dict.fromkeys(CONVERGE_STATUSES, 0)
    for entry in hosts:
        counts[entry["status"]] = counts.get(entry["status"], 0) + 1
    views = [deadline_api.ServiceView(**{k: v for k, v in e["service_view"].items() if k in _VIEW_FIELDS}) for e in hosts if e.get("service_view")]
    return {
        "total": len(hosts),
        "counts": counts,
        "interrupted_sessions": sum(e.get("interrupted_sessions", 0) for e in hosts),
        # said once for the run, not per host (the same controller asks for every host)
        "service_api": deadline_api.not_asked_notice(views) or ("the Deadline Cloud API confirmed it for every host restarted" if views else ""),
        "hosts": hosts,
    }


def converge_lines(summary: Mapping[str, Any]) -> list[str]:
    """The converge summary for a terminal: counts, then each host that needs a look."""
    counts = summary["counts"]
    head = f"{_plural(int(summary['total']), 'host')}: " + ", ".join(
        f"{counts[s]} {_CONVERGE_TITLES[s]}" for s in CONVERGE_STATUSES if counts.get(s) or s in ("fixed", "already_fine")
    )
    lines = [head]
    if summary.get("interrupted_sessions"):
        lines.append(f"sessions interrupted: {summary['interrupted_sessions']}")
    if summary.get("service_api"):
        lines.append(f"busy or idle: {summary['service_api']}")
    for status in ("refused", "failed", "not_ready", "restart_pending", "unreachable"):
        group = [e for e in summary["hosts"] if e["status"] == status]
        if group:
            lines.append(f"{_CONVERGE_TITLES[status]}:")
            lines.extend(f"  {e['host']}: {e['detail']}" for e in group)
    return lines


CONVERGE_CSV_COLUMNS = ("host", "status", "sessions", "detail")


def converge_csv(summary: Mapping[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CONVERGE_CSV_COLUMNS)
    for entry in summary["hosts"]:
        writer.writerow((entry["host"], entry["status"], entry["sessions"], entry["detail"]))
    return out.getvalue()


def over_threshold(results: Mapping[str, Any], max_fail_percentage: float) -> list[dict]:
    """The failed hosts when they are more than ``max_fail_percentage`` percent of the hosts run so
    far (refused hosts do not count: they are expected, and they were left as they were); else []."""
    entries = [converge_entry(str(h), r) for h, r in results.items() if isinstance(r, Mapping) and r.get("status")]
    failed = [e for e in entries if e["status"] in ("failed", "not_ready", "unreachable")]
    if not entries or not failed:
        return []
    return failed if 100.0 * len(failed) / len(entries) > float(max_fail_percentage) else []
