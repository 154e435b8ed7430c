# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""deadline_cloud.cmf.worker_agent_info: one read of the host, the agent's verdict on it."""

from __future__ import annotations

from typing import ClassVar

from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils import agent_rules
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils.action import CmfAction
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils.agent_config import CONFIG_PATH
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils.host import Host

ARGUMENT_SPEC = {
    "service": {"type": "str", "default": agent_rules.DEFAULT_SERVICE},
    "config_path": {"type": "str", "default": CONFIG_PATH},
    "account": {"type": "str"},
}


class ActionModule(CmfAction):
    ARGUMENT_SPEC: ClassVar[dict] = ARGUMENT_SPEC

    def execute(self, host: Host, params: dict, task_vars: dict) -> dict:
        result = agent_rules.read_agent_info(host, params["service"], params["config_path"], params["account"])
        result["changed"] = False
        return result
