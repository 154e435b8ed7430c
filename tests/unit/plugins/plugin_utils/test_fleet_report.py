# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet report and the role's refusals, from readings written by hand."""

from __future__ import annotations

import csv
import io
import json

import pytest
import simworker

from ansible_collections.deadline_cloud.cmf.plugins.filter.fleet_report import FilterModule
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils import agent_rules, fleet_report
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils.host._simulated import SimulatedState
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils.host._simulated_agent import read_agent_info


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


@pytest.mark.parametrize(
    ("version", "minimum", "older"),
    [
        ("0.27.2", "0.27.3", True),
        ("0.27.3", "0.27.3", False),
        ("0.33.2", "0.27.3", False),
        ("0.9", "0.27.3", True),
        ("1.0", "0.27.3", False),
        ("0.28.0rc1", "0.27.3", False),
        ("x", "0.27.3", None),
    ],
)
def test_version_older(version, minimum, older):
    assert fleet_report.version_older(version, minimum) is older


def test_the_installers_state_is_not_refused():
    assert fleet_report.refusals(INSTALLER) == []


def test_a_bom_or_utf16_file_is_not_refused_but_bytes_that_are_not_text_are():
    bom = reading(finding("CONFIG_ENCODING"), config={"exists": True, "encoding": "utf-8-bom"})
    assert fleet_report.refusals(bom) == []
    broken = reading(finding("CONFIG_ENCODING"), config={"exists": True, "encoding": "invalid"})
    assert [r["id"] for r in fleet_report.refusals(broken)] == ["CONFIG_ENCODING"]


@pytest.mark.parametrize(
    ("facts", "finding_id", "expected"),
    [
        ({"service": {"exists": False}}, "SERVICE_MISSING", "SERVICE_MISSING"),
        ({"account": None}, "ACCOUNT_MISSING", "ACCOUNT_MISSING"),
        ({"config": {"exists": False, "path": "C:\\w.toml"}}, "CONFIG_MISSING", "CONFIG_MISSING"),
        ({"config": {"exists": True, "parse_error": "line 3 column 1"}}, "CONFIG_INVALID", "CONFIG_INVALID"),
        ({"agent": {"version": "0.27.1"}}, "AGENT_VERSION_UNSUPPORTED", "AGENT_VERSION_UNSUPPORTED"),
        ({}, "ENV_OVERRIDE", "ENV_OVERRIDE"),
    ],
)
def test_refusals_from_findings(facts, finding_id, expected):
    found = [finding(finding_id)] if finding_id else []
    assert [r["id"] for r in fleet_report.refusals(reading(*found, **facts))] == [expected]


def _real_reading(state: dict) -> dict:
    """worker_agent_info's result for a simulated worker, as the role gets it."""
    raw = read_agent_info(SimulatedState(state), {"service": "DeadlineWorker", "config_path": simworker.WORKER_TOML, "account": ""})
    return agent_rules.describe(raw)


def _installer(change) -> dict:
    state = simworker.example_state()
    change(state)
    return state


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda s: s["services"].pop("DeadlineWorker"), ["SERVICE_MISSING"]),
        (lambda s: s["services"]["DeadlineWorker"].update(account=r".\ghost"), ["ACCOUNT_MISSING"]),
        (lambda s: s.update(files={}), ["CONFIG_MISSING"]),
        (lambda s: simworker.set_file_bytes(s, b"[worker\nfarm_id = \n"), ["CONFIG_INVALID"]),
        (lambda s: simworker.set_file_bytes(s, b"\xff\xfe[\x00\xd8"), ["CONFIG_ENCODING"]),
        (lambda s: s["agent"].update(version="0.26.0"), ["AGENT_VERSION_UNSUPPORTED"]),
        (lambda s: s.update(environment={"DEADLINE_WORKER_RUN_JOBS_AS_AGENT_USER": "false"}), ["ENV_OVERRIDE"]),
        (lambda s: simworker.set_file_bytes(s, b"\xef\xbb\xbf" + simworker.file_bytes(s)), []),  # the role removes a BOM
        (lambda s: None, []),
    ],
)
def test_refusals_come_from_the_findings_of_a_real_reading(change, expected):
    assert [r["id"] for r in fleet_report.refusals(_real_reading(_installer(change)))] == expected


def test_a_job_user_that_stops_the_agent_is_not_refused_the_role_comments_it_out():
    def job_user_is_the_agent(state):
        data = simworker.file_bytes(state).replace(b"\n[os]\n", b'\n[os]\nwindows_job_user = "deadline-worker"\n', 1)
        simworker.set_file_bytes(state, data)

    before = _real_reading(_installer(job_user_is_the_agent))
    assert before["startup"]["stage"] == "job_user" and "AGENT_STARTUP_ERROR" in {f["id"] for f in before["findings"]}
    assert fleet_report.refusals(before) == []


def test_the_minimum_version_is_the_callers():
    assert fleet_report.refusals(reading(agent={"version": "0.30.0"}), "0.31.0")[0]["id"] == "AGENT_VERSION_UNSUPPORTED"
    assert fleet_report.refusals(reading(agent={"version": "0.30.0"}), "0.27.3") == []


def test_refusal_message_names_each_cause_and_fix():
    env = finding(
        "ENV_OVERRIDE",
        message="DEADLINE_WORKER_RUN_JOBS_AS_AGENT_USER=false in the service's Environment",
        fix="remove it from HKLM\\SYSTEM\\CurrentControlSet\\Services\\DeadlineWorker Environment",
    )
    message = fleet_report.refusal_message(fleet_report.refusals(reading(env)))
    assert message.startswith("the role changed nothing on this host")
    assert "DEADLINE_WORKER_RUN_JOBS_AS_AGENT_USER" in message and "Fix: remove it" in message


def test_not_ready_message_lists_blockers_only():
    message = fleet_report.not_ready_message(INSTALLER["findings"])
    assert "AGENT_OPT_IN_MISSING" in message and "MESSAGE_IS_MISLEADING" not in message
    assert "without a blocker" in fleet_report.not_ready_message([])


def test_filters_are_registered_and_reject_wrong_input():
    filters = FilterModule().filters()
    assert set(filters) >= {
        "fleet_summary",
        "fleet_report_lines",
        "fleet_report_csv",
        "worker_findings_lines",
        "worker_refusals",
        "worker_refusal_message",
        "worker_not_ready_message",
    }
    from ansible.errors import AnsibleFilterError

    with pytest.raises(AnsibleFilterError):
        filters["fleet_summary"](["not", "a", "dict"])
    assert (
        filters["fleet_report_lines"](filters["fleet_summary"]({"w1": INSTALLER}))[0] == "1 host: 0 ready, 1 not ready"
    )


def test_a_deny_right_against_a_needed_right_is_refused():
    denied = reading(
        account={
            "sid": "S-1-5-21-1-2-3-1001",
            "rights": ["SeServiceLogonRight"],
            "effective_rights": {"SeDenyServiceLogonRight": {"direct": False, "groups": [{"name": "Guests"}]}},
        }
    )
    found = fleet_report.refusals(denied, rights=["SeServiceLogonRight", "SeIncreaseQuotaPrivilege"])
    assert [r["id"] for r in found] == ["RIGHT_DENIED"]
    assert "through Guests" in found[0]["message"]
    assert fleet_report.refusals(denied, rights=["SeIncreaseQuotaPrivilege"]) == []


def test_shutdown_on_stop_prefers_the_resolved_setting():
    assert fleet_report.shutdown_on_stop({"settings": {"shutdown_on_stop": {"value": True}}}) is True
    assert (
        fleet_report.shutdown_on_stop(
            {
                "settings": {"shutdown_on_stop": {"value": False}},
                "config": {"values": {"os": {"shutdown_on_stop": True}}},
            }
        )
        is False
    )
    assert fleet_report.shutdown_on_stop({"settings": None, "config": {"values": {"os": {"shutdown_on_stop": True}}}})
    assert fleet_report.shutdown_on_stop({}) is False


def test_outcome_uses_the_first_reading_when_nothing_changed_and_none_in_check_mode():
    ok = reading(ready=True)
    same = fleet_report.outcome(ok, rights={"changed": False}, config={"changed": False})
    assert same["ready"] is True and same["verified_by"] == "first reading" and same["changes"] == []
    planned = fleet_report.outcome(
        INSTALLER,
        rights={"changed": True, "added": ["SeIncreaseQuotaPrivilege"]},
        check_mode=True,
        restart={"changed": True, "restarted": True},
    )
    assert planned["changed"] and planned["ready"] is None and planned["findings_after"] is None
    assert planned["changes"] == ["granted SeIncreaseQuotaPrivilege", "restarted the service"]
    failed = fleet_report.outcome(INSTALLER, error="dropped")
    assert failed["error"] == "dropped" and failed["ready"] is None


def test_a_blocker_the_role_does_not_know_is_refused_not_run_into():
    assert [r["id"] for r in fleet_report.refusals(reading(finding("A_FUTURE_BLOCKER")))] == ["A_FUTURE_BLOCKER"]
    assert fleet_report.refusals(reading(finding("A_FUTURE_WARNING", "warning"))) == []


def test_a_missing_logon_right_is_fixed_only_when_the_role_grants_it():
    missing = reading(finding("SERVICE_LOGON_RIGHT_MISSING"))
    assert fleet_report.refusals(missing, rights=["SeServiceLogonRight", "SeIncreaseQuotaPrivilege"]) == []
    assert [r["id"] for r in fleet_report.refusals(missing, rights=["SeIncreaseQuotaPrivilege"])] == ["SERVICE_LOGON_RIGHT_MISSING"]
