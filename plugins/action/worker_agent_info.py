# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""deadline_cloud.cmf.worker_agent_info: one read of the host, the agent's verdict on it."""

from __future__ import annotations

from typing import ClassVar

from ansible.utils.display import Display

from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._action import CmfAction
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._agent import rules as agent_rules
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._agent.config_file import CONFIG_PATH
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host import Host

ARGUMENT_SPEC = {
    "service": {"type": "str", "default": agent_rules.DEFAULT_SERVICE},
    "config_path": {"type": "str", "default": CONFIG_PATH},
    "account": {"type": "str"},
    "details": {"type": "bool", "default": False},
}

# What a person rarely reads and the other modules and the role do: left out unless details is true,
# so that a quick look (ansible -m ...) shows the verdict and the findings within a screen.
DETAILS = (("reading",), ("account", "effective_rights"), ("account", "token_groups"), ("config", "entries"))


class ActionModule(CmfAction):
    ARGUMENT_SPEC: ClassVar[dict] = ARGUMENT_SPEC

    def execute(self, host: Host, params: dict, task_vars: dict) -> dict:
        result = agent_rules.read_agent_info(host, params["service"], params["config_path"], params["account"])
        result["changed"] = False
        if not params["details"]:
            for *parents, key in DETAILS:
                holder = result
                for parent in parents:
                    holder = holder.get(parent) or {}
                holder.pop(key, None)
        elif Display().verbosity < 1:
            # The reading is for the tasks after this one (register): kept out of the output and of AWX's
            # job events, as no_log would keep it. Set on this result, not on the task, so that a connection
            # that fails is not censored as well (ssh hides its own error under a task's no_log).
            result["_ansible_no_log"] = True
        return result
