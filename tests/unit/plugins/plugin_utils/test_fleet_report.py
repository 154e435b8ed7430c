# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet report and the role's refusals, from readings written by hand."""

from __future__ import annotations

import csv
import io
import json

import pytest

from ansible_collections.deadline_cloud.cmf.plugins.filter.fleet_report import FilterModule
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils import _fleet as fleet_report


def finding(fid: str, severity: str = "blocker", message: str = "", fix: str = "") -> dict:
    return {"id": fid, "severity": severity, "message": message or f"{fid} message", "fix": fix or f"{fid} fix"}


def reading(*findings: dict, ready: bool = False, **facts: object) -> dict:
    base = {
        "changed": False,
        "ready": ready,
        "findings": list(findings),
        "service": {"exists": True, "state": "running"},
        "account": {"name": "deadline-worker", "sid": "S-1-5-21-1-2-3-1001"},
        "config": {"exists": True, "encoding": "utf-8", "parse_error": None},
        "agent": {"version": "0.33.2"},
    }
    base.update(facts)
    return base


INSTALLER = reading(
    finding("AGENT_OPT_IN_MISSING"),
    finding("AGENT_USER_IS_ADMIN", "security"),
    finding("MESSAGE_IS_MISLEADING", "info"),
)


def test_summary_counts_ready_and_groups_findings_by_id():
    summary = fleet_report.summarize(
        {
            "w1": INSTALLER,
            "w2": INSTALLER,
            "w3": reading(finding("ENV_OVERRIDE"), finding("AGENT_OPT_IN_MISSING")),
            "w4": reading(ready=True),
            "w5": {"unreachable": True, "msg": "timed out"},
            "w6": None,
        }
    )
    assert (summary["total"], summary["ready"], summary["not_ready"]) == (6, 1, 3)
    assert (summary["unreachable"], summary["errors"]) == (1, 1)
    ids = [f["id"] for f in summary["findings"]]
    # blockers first, the most widespread first within a severity; info last
    assert ids == ["AGENT_OPT_IN_MISSING", "ENV_OVERRIDE", "AGENT_USER_IS_ADMIN", "MESSAGE_IS_MISLEADING"]
    opt_in = summary["findings"][0]
    assert opt_in["count"] == 3 and opt_in["hosts"] == ["w1", "w2", "w3"]
    assert [f["id"] for f in summary["holding_back"]] == ["AGENT_OPT_IN_MISSING", "ENV_OVERRIDE"]
    status = {e["host"]: e["status"] for e in summary["hosts"]}
    assert status == {
        "w1": "not_ready",
        "w2": "not_ready",
        "w3": "not_ready",
        "w4": "ready",
        "w5": "unreachable",
        "w6": "no_reading",
    }


def test_a_failed_reading_is_an_error_with_its_message():
    summary = fleet_report.summarize({"w1": {"failed": True, "msg": "state file missing"}})
    assert summary["errors"] == 1
    assert summary["hosts"][0]["error"] == "state file missing"
    assert "w1: state file missing" in "\n".join(fleet_report.report_lines(summary))


def test_report_lines_read_well_in_a_terminal():
    summary = fleet_report.summarize({f"w{i:02}": INSTALLER for i in range(10)} | {"ok": reading(ready=True)})
    lines = fleet_report.report_lines(summary)
    assert lines[0] == "11 hosts: 1 ready, 10 not ready"
    assert "holding hosts back (blocker):" in lines
    line = next(x for x in lines if x.strip().startswith("AGENT_OPT_IN_MISSING"))
    assert "10 hosts" in line and "and 4 more" in line  # long host lists are cut short
    assert all(len(x) < 120 for x in lines)


def test_no_findings_says_so():
    lines = fleet_report.report_lines(fleet_report.summarize({"w1": reading(ready=True)}))
    assert lines == ["1 host: 1 ready, 0 not ready", "no findings"]


def test_csv_has_a_row_per_host_and_finding():
    summary = fleet_report.summarize(
        {"w1": INSTALLER, "w2": reading(ready=True), "w3": {"unreachable": True, "msg": "x"}}
    )
    rows = list(csv.DictReader(io.StringIO(fleet_report.report_csv(summary))))
    assert [r["host"] for r in rows] == ["w1", "w1", "w1", "w2", "w3"]
    assert rows[0]["finding"] == "AGENT_OPT_IN_MISSING" and rows[0]["ready"] == "false"
    assert rows[3]["status"] == "ready" and rows[3]["finding"] == ""
    assert rows[4]["status"] == "unreachable"


def test_json_round_trips():
    summary = fleet_report.summarize({"w1": INSTALLER})
    assert json.loads(fleet_report.report_json(summary)) == summary


def test_findings_lines_show_severity_id_and_fix():
    lines = fleet_report.findings_lines(INSTALLER)
    assert lines[0] == "not ready"
    assert lines[1] == "BLOCKER AGENT_OPT_IN_MISSING: AGENT_OPT_IN_MISSING message"
    assert lines[2] == "  fix: AGENT_OPT_IN_MISSING fix"
    assert fleet_report.findings_lines(reading(ready=True))[0].startswith("ready")


def test_filters_are_registered_and_reject_wrong_input():
    filters = FilterModule().filters()
    assert set(filters) >= {
        "fleet_summary",
        "fleet_report_lines",
        "fleet_report_csv",
        "worker_findings_lines",
        "fleet_converge_summary",
        "fleet_converge_lines",
        "fleet_converge_csv",
        "fleet_over_threshold",
    }
    from ansible.errors import AnsibleFilterError

    with pytest.raises(AnsibleFilterError):
        filters["fleet_summary"](["not", "a", "dict"])
    assert (
        filters["fleet_report_lines"](filters["fleet_summary"]({"w1": INSTALLER}))[0] == "1 host: 0 ready, 1 not ready"
    )


def outcome(status: str, **extra) -> dict:
    return {"status": status, "changes": [], "refused": [], "findings_after": [], "error": "", **extra}


def test_converge_summary_counts_each_status_and_names_what_needs_a_look():
    results = {
        "w1": outcome("fixed", changes=["granted SeIncreaseQuotaPrivilege", "restarted the service"]),
        "w2": outcome("already_fine"),
        "w3": outcome("restart_pending", restart_pending_reason="busy: 3 session(s) running"),
        "w4": outcome("refused", refused=[{"id": "ENV_OVERRIDE", "message": "DEADLINE_WORKER_RUN_JOBS_AS_AGENT_USER=false", "fix": "remove it"}]),
        "w5": outcome("failed", error="control_service failed on the host"),
        "w6": None,
        "w7": outcome("planned"),
    }
    summary = fleet_report.converge_summary(results)
    assert summary["counts"] == {
        "fixed": 1, "already_fine": 1, "restart_pending": 1, "refused": 1, "failed": 1, "not_ready": 0, "unreachable": 2,
    }
    by_host = {e["host"]: e for e in summary["hosts"]}
    assert by_host["w3"]["sessions"] == 3
    assert "ENV_OVERRIDE" in by_host["w4"]["detail"] and "remove it" in by_host["w4"]["detail"]
    lines = fleet_report.converge_lines(summary)
    assert lines[0] == "7 hosts: 1 fixed, 1 already fine, 1 restart pending, 1 refused, 1 failed, 2 unreachable or not run"
    assert "  w4: ENV_OVERRIDE: DEADLINE_WORKER_RUN_JOBS_AS_AGENT_USER=false Fix: remove it" in lines
    rows = list(csv.DictReader(io.StringIO(fleet_report.converge_csv(summary))))
    assert [r["status"] for r in rows] == ["fixed", "already_fine", "restart_pending", "refused", "failed", "unreachable", "unreachable"]


def test_refused_hosts_never_pass_the_failure_threshold_failed_ones_do():
    refused = outcome("refused", refused=[{"id": "AGENT_VERSION_UNSUPPORTED", "message": "0.26", "fix": "upgrade"}])
    assert fleet_report.over_threshold({"a": refused, "b": refused, "c": outcome("fixed")}, 0) == []
    failing = {"a": outcome("failed", error="boom"), "b": outcome("fixed"), "c": outcome("fixed"), "d": None}
    assert [e["host"] for e in fleet_report.over_threshold(failing, 30)] == ["a"]  # 1 of 3 run so far
    assert fleet_report.over_threshold(failing, 34) == []
