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
  - A stop interrupts every render session the agent runs (the service then reschedules them), so every stop and
    restart first looks whether the agent runs one, in the same remote call, and does what O(when_busy) says when it
    does; by default the task fails and nothing is stopped. Only O(when_busy=interrupt) stops a busy agent.
  - When the service is not healthy the task fails; its C(msg) names the cause found by a
    M(deadline_cloud.cmf.worker_agent_info) reading of the host (one more remote call, only then), and the last
    lines of C(worker-agent.log).
  - Runs on the controller; it reaches the worker through its Windows connection, or the
    C(deadline_cloud.cmf.simulated_worker) connection.
options:
  service:
    aliases: [name]
    description:
      - The name of the agent's Windows service.
      - Named as in M(deadline_cloud.cmf.worker_agent_info); O(name), its former name, stays valid as an alias.
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
  idle_timeout:
    description:
      - Seconds to wait for a busy agent to run no render session before it is stopped (for V(restarted) and V(stopped));
        then O(when_busy) decides. V(0) looks once and does not wait.
      - The host checks for sessions at the moment it would stop the service (the agent service process's descendant
        processes), so no session starts between the check and the stop. While the agent is busy the module looks again
        every O(poll_interval) seconds, one remote call each, on the controller (no connection is held open meanwhile).
      - An idle agent costs one remote call, as a plain stop would.
      - Before 0.2.0 an unset O(idle_timeout) stopped the service whatever it ran, interrupting its sessions; set
        O(when_busy=interrupt) for that.
    type: int
    default: 0
  poll_interval:
    description:
      - Seconds between two looks at a busy agent.
      - Unset, the task's C(poll) when it runs with C(async), else V(30).
    type: int
  when_busy:
    description:
      - What to do when the agent still runs a session after O(idle_timeout) seconds (at once with the default V(0)).
      - V(skip) - nothing is stopped; the result says RV(restart_pending) (not a failure).
      - V(interrupt) - a normal service stop whose timeout covers the agent's longest cancelation (600 s notify period plus
        exit actions); the agent is never killed. It interrupts the sessions, and the service reschedules them.
      - V(fail) - nothing is stopped, and the task fails. The default, so that no render is interrupted unless the
        operator chose to.
    type: str
    choices: [skip, interrupt, fail]
    default: fail
  config_path:
    description:
      - When set, the same remote call reads the host again after the operation and returns RV(info), the result
        M(deadline_cloud.cmf.worker_agent_info) would give (the verification, with no second call).
    type: str
  account:
    description: The account RV(info) reports on (default the service's logon account).
    type: str
  ask_service:
    description:
      - While waiting for idle (O(idle_timeout)), also ask the AWS Deadline Cloud API whether the worker runs work
        (C(GetWorker) status, C(ListSessionsForWorker)); busy wins when the host and the service disagree.
      - Needs boto3, AWS credentials and a region on the controller, and O(reading) for the farm, fleet and worker ids (worker.toml's
        C([worker]), the host's C(worker.json)); without them the host's own view decides and RV(service_view) says why.
    type: bool
    default: false
attributes:
  bypass_host_loop:
    support: none
  action:
    support: full
    details: The module runs as an action plugin on the controller; the host waits for the service inside one remote call.
  action_group:
    support: full
    membership: [deadline_cloud.cmf.worker, deadline_cloud.cmf.all]
  async:
    support: partial
    details:
      - With C(async) and a C(poll) above 0, the task's async seconds bound the whole task, the wait for idle included
        (it ends early enough for the stop, start and settle to fit; an async too short for them is refused before any
        call), and C(poll) is the interval between two looks at a busy agent unless O(poll_interval) is set.
      - The wait stays on the controller, one short remote call per look, and the result is the one the task returns
        without async; no job is started on the host.
      - C(poll=0) is refused before any call, because a restart nobody waits for is never verified.
  check_mode:
    support: full
    details:
      - Reads the service (one read-only call) and reports what would happen, without doing it; warns when the agent would
        not stay up, and when it runs sessions now that a stop would fail on, leave or interrupt (O(when_busy)).
  diff_mode:
    support: none
    details: A service state is reported in RV(state), not as a diff.
  platform:
    support: full
    platforms: windows
    details: Windows workers, reached through any Windows connection or the simulated worker.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - ansible.builtin.action_common_attributes.actiongroups
  - deadline_cloud.cmf.worker_agent
  - deadline_cloud.cmf.reading
seealso:
  - module: deadline_cloud.cmf.worker_agent_info
requirements:
  - tomli >= 2.0.1 on a controller with Python 3.10, to read worker.toml as the agent does (Python 3.11 and later have C(tomllib)).
  - The collection ansible.windows (3.3.0 or later) for real Windows workers, whose M(ansible.windows.win_powershell) runs each
    remote operation; the C(deadline_cloud.cmf.simulated_worker) connection needs neither it nor Windows.
  - Optional, only with O(ask_service=true) and the worker's ids known - boto3 with the C(deadline) service on the controller,
    and AWS credentials allowed C(deadline:GetWorker) and C(deadline:ListSessionsForWorker); without them the host's own
    view decides whether the agent is busy.
author:
  - Contributors to deadline_cloud.cmf (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Restart the agent if it runs no render, and prove it came back (a busy agent fails the task, nothing stopped)
  deadline_cloud.cmf.worker_agent_service:
    state: restarted
    settle: 20

- name: Restart the agent now, interrupting what it runs (the service reschedules the interrupted work)
  deadline_cloud.cmf.worker_agent_service:
    state: restarted
    when_busy: interrupt

- name: Stop the agent when it runs no render (service; name, its former name, is an alias)
  deadline_cloud.cmf.worker_agent_service:
    service: DeadlineWorker
    state: stopped

- name: Restart the agent when it runs no render, waiting up to an hour; leave it running if it stays busy
  deadline_cloud.cmf.worker_agent_service:
    state: restarted
    idle_timeout: 3600
    poll_interval: 60
    when_busy: skip
    config_path: C:\ProgramData\Amazon\Deadline\Config\worker.toml
  register: restart

- name: The same, bounded by async (the wait for idle ends in time for the restart to fit in 2 hours)
  deadline_cloud.cmf.worker_agent_service:
    state: restarted
    idle_timeout: 7200
    when_busy: skip
  async: 7200
  poll: 60
"""

RETURN = r"""
state:
  description:
    - V(running) or V(stopped) at the end (what it would be, in check mode).
    - V(start_pending) or V(stop_pending) when the wait for the start or the stop ran out of O(timeout) first; the task then fails saying so.
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
  description: The lines C(worker-agent.log) got since the stop (empty in check mode).
  returned: always
  type: list
  elements: str
busy:
  description: Whether the agent still ran a session when the module gave up waiting (O(when_busy=skip) or V(fail)).
  returned: always
  type: bool
restart_pending:
  description: True when O(when_busy=skip) left a busy agent running (its restart, or its stop, is pending).
  returned: always
  type: bool
sessions:
  description: The sessions the host saw at the last look, C({busy, count, ids}).
  returned: always
  type: dict
interrupted:
  description: How many sessions were running when the service was stopped (interrupted by the stop).
  returned: success
  type: int
polls:
  description: How many remote calls the module made (one per look while the agent was busy).
  returned: success
  type: int
win32_error:
  description: The Win32 error the Service Control Manager refused a start or stop with (1069 logon failure, 1058 disabled, ...), else null.
  returned: success
  type: int
events:
  description: The Service Control Manager's System event log entries about the service since the stop, each C({id, time, message}).
  returned: success
  type: list
  elements: dict
service_view:
  description: What the Deadline Cloud API said, C({checked, busy, status, active_sessions, reason}); null when it was not to be asked.
  returned: success
  type: dict
info:
  description: The result of M(deadline_cloud.cmf.worker_agent_info) read after the operation, in the same call; with O(config_path) only.
  returned: when O(config_path) is set
  type: dict
findings:
  description: The findings of M(deadline_cloud.cmf.worker_agent_info), read when the service is not healthy.
  returned: when the service is not healthy and the host could be read
  type: list
  elements: dict
  sample:
    - id: JOB_USER_CONFLICT
      severity: blocker
      message: >-
        windows_job_user = 'job-user' (from worker.toml's [os] windows_job_user) is set together with run_jobs_as_agent_user = true;
        the agent refuses to start: 'Cannot specify a windows job user when the option to run jobs as the agent user is enabled.'
      fix: Remove windows_job_user (comment it out in [os]; unset the variable if it comes from the environment).
info_error:
  description: Why the M(deadline_cloud.cmf.worker_agent_info) reading that explains a failure could not be made; the task fails anyway.
  returned: when the service is not healthy and the host could not be read
  type: str
warnings:
  description:
    - In check mode, that the service would not stay running, with the agent's own error.
    - In check mode, that the agent runs sessions now, and what the stop would do about them (O(when_busy)).
  returned: in check mode, when the agent would stop at its next start or runs sessions now
  type: list
  elements: str
  sample: ["DeadlineWorker would not stay running: Cannot specify a windows job user when the option to run jobs as the agent user is enabled."]
error_code:
  description: A stable code for why a remote operation failed - V(SERVICE_NOT_FOUND), or V(HOST_ERROR) when the host could not run it at all; C(msg) says more.
  returned: on failure of a remote operation
  type: str
  sample: SERVICE_NOT_FOUND
"""
