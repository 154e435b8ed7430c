# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that turn worker readings and role outcomes into reports; the logic is in plugin_utils._fleet."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils import _fleet as fleet_report


def _mapping(value: Any, name: str) -> Mapping:
    if not isinstance(value, Mapping):
        raise AnsibleFilterError(f"{name} expects a dictionary, got {type(value).__name__}")
    return value


def fleet_summary(readings: Any, plans: Any = None) -> dict:
    return fleet_report.summarize(_mapping(readings, "fleet_summary"), _mapping(plans or {}, "fleet_summary's plans"))


def fleet_report_lines(summary: Any) -> list[str]:
    return fleet_report.report_lines(_mapping(summary, "fleet_report_lines"))


def fleet_report_csv(summary: Any) -> str:
    return fleet_report.report_csv(_mapping(summary, "fleet_report_csv"))


def worker_findings_lines(reading: Any, plan: Any = None) -> list[str]:
    return fleet_report.findings_lines(reading, plan=plan)


def fleet_converge_summary(results: Any) -> dict:
    return fleet_report.converge_summary(_mapping(results, "fleet_converge_summary"))


def fleet_converge_lines(summary: Any) -> list[str]:
    return fleet_report.converge_lines(_mapping(summary, "fleet_converge_lines"))


def fleet_converge_csv(summary: Any) -> str:
    return fleet_report.converge_csv(_mapping(summary, "fleet_converge_csv"))


def fleet_over_threshold(results: Any, max_fail_percentage: Any = 100) -> list[dict]:
    return fleet_report.over_threshold(_mapping(results, "fleet_over_threshold"), float(max_fail_percentage))


def fleet_host_values(hosts: Any, hostvars: Any, name: str) -> dict:
    """Host name to ``hostvars[host][name]``, None where the host has no such variable (a host that
    was not reached, or not run yet): safe under any strategy, where some hosts have not run."""
    values: dict = {}
    for host in hosts or []:
        found = None
        try:
            host_vars = hostvars[host]
            if name in host_vars:
                found = host_vars[name]
        except (KeyError, TypeError):
            found = None
        values[str(host)] = found
    return values


class FilterModule:
    def filters(self) -> dict:
        return {
            "fleet_summary": fleet_summary,
            "fleet_report_lines": fleet_report_lines,
            "fleet_report_csv": fleet_report_csv,
            "worker_findings_lines": worker_findings_lines,
            "fleet_converge_summary": fleet_converge_summary,
            "fleet_converge_lines": fleet_converge_lines,
            "fleet_converge_csv": fleet_converge_csv,
            "fleet_over_threshold": fleet_over_threshold,
            "fleet_host_values": fleet_host_values,
        }
