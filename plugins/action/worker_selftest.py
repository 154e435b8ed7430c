# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""deadline_cloud.cmf.worker_selftest: every remote operation once, in a sandbox, held to the contract."""

from __future__ import annotations

from typing import ClassVar

from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._action import CmfAction
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._agent import rules as agent_rules
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._agent.config_file import CONFIG_PATH
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host import Host
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._selftest import CALL_FAILED, DEFAULT_SANDBOX, Options, run_selftest

ARGUMENT_SPEC = {
    "service": {"type": "str", "default": agent_rules.DEFAULT_SERVICE},
    "config_path": {"type": "str", "default": CONFIG_PATH},
    "sandbox_name": {"type": "str", "default": DEFAULT_SANDBOX},
    "require_contract_v2": {"type": "bool", "default": False},
}


class ActionModule(CmfAction):
    ARGUMENT_SPEC: ClassVar[dict] = ARGUMENT_SPEC

    def execute(self, host: Host, params: dict, task_vars: dict) -> dict:
        if self.check_mode:
            return {
                "failed": True,
                "msg": "worker_selftest does not run in check mode: it creates and removes a sandbox user, group "
                "and folder to test the operations that change a host; run it without --check",
            }
        options = Options(
            service=params["service"],
            config_path=params["config_path"],
            sandbox=params["sandbox_name"],
            require_v2=params["require_contract_v2"],
        )
        outcome = run_selftest(host, options)
        # Only the sandbox changed, and it is gone again: nothing outside it was changed.
        result: dict = {"changed": False, "lines": outcome.lines, "steps": [step.as_dict() for step in outcome.steps]}
        if outcome.unknown_steps:
            # Not a failure (the host answered as the contract says it must when it cannot know), but
            # what the canary could not prove on this host is said, where an operator sees it.
            result["warnings"] = [f"the self-test could not prove {step.name} on this worker: {step.unknown}" for step in outcome.unknown_steps]
        if not outcome.ok:
            result["failed"] = True
            unreached = _unreached(outcome.steps)
            if unreached:  # not one answer came back: there is nothing to compare with the contract
                result["msg"] = f"the worker could not be reached, so nothing was tested: {unreached}"
            else:
                result["msg"] = "the worker's answers differ from the host contract in: " + ", ".join(outcome.failed_steps) + (
                    ". " + " | ".join(step.line for step in outcome.steps if not step.ok)
                )
        return result


def _unreached(steps: list) -> str:
    """The connection's error when every call the self-test made failed before the worker answered it
    (the sandbox's clean-up included), else ""."""
    calls = [step for step in steps if not step.skipped]
    failures = [d for step in calls for d in step.differences]
    if not calls or not all(step.differences for step in calls) or not all(d.startswith(CALL_FAILED) for d in failures):
        return ""
    return failures[0].removeprefix(CALL_FAILED)
