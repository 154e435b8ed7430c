# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations


class ModuleDocFragment:
    """The worker agent's service and worker.toml, named the same in every module that takes them."""

    # deadline_cloud.cmf.worker_agent
    DOCUMENTATION = r"""
options:
  service:
    description: The name of the agent's Windows service.
    type: str
    default: DeadlineWorker
"""

    # deadline_cloud.cmf.worker_agent.config_path
    CONFIG_PATH = r"""
options:
  config_path:
    description:
      - Path of the agent's C(worker.toml) on the worker.
      - The agent itself reads only C(%PROGRAMDATA%\Amazon\Deadline\Config\worker.toml); another path is
        a copy, useful to prepare or inspect one.
    type: str
    default: C:\ProgramData\Amazon\Deadline\Config\worker.toml
"""
