#!/usr/bin/python
# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: worker_agent_service
short_description: Restart, start or stop the Deadline Cloud worker agent's service and prove it stays up
version_added: 0.1.0
description:
  - Stops and starts the agent's Windows service and waits, on the host and inside one remote call, until the
    service has stayed running for O(settle) seconds with the same process.
  - A configuration error stops the agent before it writes its log, and the Service Control Manager then
    restarts it with a backoff, so "service started" proves nothing. Healthy means still running after
    O(settle) seconds with the same process id.
  - When the service is not healthy the task fails; its C(msg) names the cause found by a
    M(deadline_cloud.cmf.worker_agent_info) reading of the host (one more remote call, only then), and the last
    lines of C(worker-agent.log).
  - Runs on the controller; it reaches the worker through its Windows connection, or the
    C(deadline_cloud.cmf.simulated_worker) connection.
options:
  name:
    description: The service.
    type: str
    default: DeadlineWorker
  state:
    description:
      - V(restarted) - stop the service if it runs, then start it. Always a change.
      - V(started) - start it if it is stopped.
      - V(stopped) - stop it if it runs.
    type: str
    choices: [restarted, started, stopped]
    default: restarted
  timeout:
    description: Seconds to wait for the service to stop, and again to start.
    type: int
    default: 300
  settle:
    description: Seconds the service must stay running, with the same process, to count as healthy.
    type: int
    default: 15
attributes:
  check_mode:
    support: full
    description: Can run in check mode and return what would change without changing the host.
    details: Reads the service (one read-only call) and reports what would happen, without doing it; warns when the agent would not stay up.
  diff_mode:
    support: none
    description: Returns what changed (or would change in check mode) as before and after, when in diff mode.
seealso:
  - module: deadline_cloud.cmf.worker_agent_info
author:
  - Deadline Cloud CMF maintainers
"""

EXAMPLES = r"""
- name: Restart the agent and prove it came back
  deadline_cloud.cmf.worker_agent_service:
    state: restarted
    settle: 20

- name: Stop the agent
  deadline_cloud.cmf.worker_agent_service:
    name: DeadlineWorker
    state: stopped
"""

RETURN = r"""
state:
  description: V(running) or V(stopped) at the end (what it would be, in check mode).
  returned: always
  type: str
  sample: running
restarted:
  description: Whether the service was (would be) restarted.
  returned: always
  type: bool
healthy:
  description: >-
    For V(restarted) and V(started), whether it is still running after O(settle) seconds with the same process; for
    V(stopped), whether it is stopped. Null in check mode.
  returned: always
  type: bool
pid:
  description: The process id of the running service, else null.
  returned: always
  type: int
  sample: 4100
log_tail:
  description: The last lines of C(%PROGRAMDATA%\Amazon\Deadline\Logs\worker-agent.log) (empty in check mode).
  returned: always
  type: list
  elements: str
findings:
  description: The findings of M(deadline_cloud.cmf.worker_agent_info), read when the service is not healthy.
  returned: on failure
  type: list
  elements: dict
"""
