# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that turn worker_agent_info readings into reports; the logic is in plugin_utils.fleet_report."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils import fleet_report


def _mapping(value: Any, name: str) -> Mapping:
    if not isinstance(value, Mapping):
        raise AnsibleFilterError(f"{name} expects a dictionary, got {type(value).__name__}")
    return value


def fleet_summary(readings: Any) -> dict:
    return fleet_report.summarize(_mapping(readings, "fleet_summary"))


def fleet_report_lines(summary: Any) -> list[str]:
    return fleet_report.report_lines(_mapping(summary, "fleet_report_lines"))


def fleet_report_csv(summary: Any) -> str:
    return fleet_report.report_csv(_mapping(summary, "fleet_report_csv"))


def worker_findings_lines(reading: Any) -> list[str]:
    return fleet_report.findings_lines(reading)


def worker_refusals(reading: Any, min_agent_version: str = "0.27.3", rights: Any = None) -> list[dict]:
    return fleet_report.refusals(_mapping(reading, "worker_refusals"), str(min_agent_version), list(rights or []))


def worker_refusal_message(refusals: Any) -> str:
    return fleet_report.refusal_message(list(refusals or []))


def worker_not_ready_message(findings: Any) -> str:
    return fleet_report.not_ready_message(list(findings or []))


def worker_shutdown_on_stop(reading: Any) -> bool:
    return fleet_report.shutdown_on_stop(_mapping(reading, "worker_shutdown_on_stop"))


def worker_role_outcome(before: Any, **results: Any) -> dict:
    return fleet_report.outcome(before, **results)


class FilterModule:
    def filters(self) -> dict:
        return {
            "fleet_summary": fleet_summary,
            "fleet_report_lines": fleet_report_lines,
            "fleet_report_csv": fleet_report_csv,
            "worker_findings_lines": worker_findings_lines,
            "worker_refusals": worker_refusals,
            "worker_refusal_message": worker_refusal_message,
            "worker_not_ready_message": worker_not_ready_message,
            "worker_shutdown_on_stop": worker_shutdown_on_stop,
            "worker_role_outcome": worker_role_outcome,
        }
