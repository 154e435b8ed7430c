# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The remote operations a worker offers: one name, one parameter set, one script each.

This registry is the contract between the Python side and the host: the PowerShell
implementation runs ``powershell/<name>.ps1`` with exactly these parameters, the simulated
worker implements the same names, and a test holds every script's ``param()`` block to it.

Internal to this collection: not a public API; it may change in any release.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Operation:
    name: str
    parameters: frozenset[str]
    changes_host: bool  # such operations are never called in check mode

    def check_parameters(self, given: dict) -> None:
        missing = self.parameters - given.keys()
        unknown = given.keys() - self.parameters
        if missing or unknown:
            raise ValueError(
                f"operation {self.name}: missing parameters {sorted(missing)}, unknown {sorted(unknown)}"
            )


def _op(name: str, *parameters: str, changes_host: bool) -> Operation:
    return Operation(name, frozenset(parameters), changes_host)


OPERATIONS: dict[str, Operation] = {
    op.name: op
    for op in (
        # files
        _op("read_file", "path", changes_host=False),
        _op("write_file", "path", "content", "expected_sha256", "backup", changes_host=True),
        # accounts: rights and local groups
        _op("read_account", "account", changes_host=False),
        _op("set_user_rights", "account", "rights", "state", changes_host=True),
        _op("set_group_membership", "account", "groups", "state", changes_host=True),
        # the agent and its service
        _op("read_agent_info", "service", "config_path", "account", changes_host=False),
        _op(
            "control_service",
            "name",
            "state",
            "timeout",
            "settle",
            "if_idle",
            "config_path",
            "account",
            changes_host=True,
        ),
        # the self-test's sandbox (worker_selftest): a throw-away user, group and folder
        _op("sandbox", "name", "state", changes_host=True),
    )
}
