#!/usr/bin/python
# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: worker_agent_info
short_description: What the Deadline Cloud worker agent will do with WORKER_AGENT_USER jobs on a Windows worker, and why
version_added: 0.1.0
description:
  - Reads, in one remote call, everything the agent's decision depends on - its version (from the Python that
    hosts the service), the service and its own C(Environment) value, the machine's C(DEADLINE_WORKER_*)
    variables, the logon account's groups and rights, and the bytes of C(worker.toml) - and returns the
    agent's verdict as RV(findings), in the agent's own terms.
  - The agent fails WORKER_AGENT_USER jobs on Windows with "Worker Agent is running with Administrator
    privileges" without ever looking at privileges; only C([os] run_jobs_as_agent_user = true) (agent 0.27.3
    or later) decides it. The findings say which setting decides it on this host, and from where.
  - Settings are resolved as the agent under its service resolves them - no command-line arguments, then
    environment variables (the service's own C(Environment) values over the logon account's user variables over
    machine variables), then C(worker.toml), then the default.
  - Changes nothing. Runs in check mode.
  - Runs on the controller; it reaches the worker through its Windows connection, or the
    C(deadline_cloud.cmf.simulated_worker) connection.
options:
  account:
    description:
      - The account whose groups and rights are reported (a name, V(.\\name), V(DOMAIN\\name) or a SID).
      - Defaults to the service's logon account.
    type: str
  details:
    description:
      - Also return RV(reading) (for the O(deadline_cloud.cmf.worker_toml#module:reading) option of the other modules),
        RV(account.effective_rights) and RV(config.entries).
      - Left out by default, so that a look at a worker shows the verdict and the findings within a screen.
      - With O(details=true) the result (the reading makes it tens of kilobytes) is registered whole, but at the default
        verbosity it is kept out of the output and of job events, as C(no_log) would keep it out; C(-v) shows it.
        A failure, and a worker that cannot be reached, still say why.
    type: bool
    default: false
attributes:
  bypass_host_loop:
    support: none
  action:
    support: full
    details: The module runs as an action plugin on the controller, which reads the worker in one remote call and judges it.
  action_group:
    support: full
    membership: [deadline_cloud.cmf.worker, deadline_cloud.cmf.all]
  async:
    support: none
  check_mode:
    support: full
    details: Read-only; the same in check mode.
  diff_mode:
    support: none
    details: It changes nothing.
  platform:
    support: full
    platforms: windows
    details: Windows workers, reached through any Windows connection or the simulated worker.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - ansible.builtin.action_common_attributes.actiongroups
  - deadline_cloud.cmf.worker_agent
  - deadline_cloud.cmf.worker_agent.config_path
notes:
  - A machine environment variable reaches services only after a reboot; a service's own C(Environment)
    value at the service's next start. The verdict reads both from the registry, i.e. as the agent will see
    them at its next start after that.
  - C(ready) is true when no finding is a C(blocker).
seealso:
  - module: deadline_cloud.cmf.worker_agent_service
  - module: deadline_cloud.cmf.worker_toml
requirements:
  - tomli >= 2.0.1 on a controller with Python 3.10, to read worker.toml as the agent does (Python 3.11 and later have C(tomllib)).
  - The collection ansible.windows (3.3.0 or later) for real Windows workers, whose M(ansible.windows.win_powershell) runs each
    remote operation; the C(deadline_cloud.cmf.simulated_worker) connection needs neither it nor Windows.
author:
  - Contributors to deadline_cloud.cmf (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Read what the agent will do on this worker
  deadline_cloud.cmf.worker_agent_info:
  register: agent

- name: Stop on what the role cannot fix
  ansible.builtin.fail:
    msg: "{{ agent.findings | selectattr('severity', 'eq', 'blocker') | map(attribute='message') | list }}"
  when: not agent.ready

- name: Inspect another account and service name
  deadline_cloud.cmf.worker_agent_info:
    service: DeadlineWorker
    account: .\deadline-worker
"""

RETURN = r"""
ready:
  description: True when a WORKER_AGENT_USER job would run once the agent loads what is on disk now (no blocker).
  returned: always
  type: bool
verdict:
  description:
    - One line for a person - V(ready) or V(not ready), with the count and ids of the findings that say why (blockers when
      not ready; security findings and warnings when ready).
  returned: always
  type: str
  sample: "not ready: 2 blockers (AGENT_OPT_IN_MISSING, ENV_OVERRIDE)"
agent:
  description: The installed agent.
  returned: always
  type: dict
  contains:
    installed:
      description: Whether the Python that hosts the service imports C(deadline_worker_agent).
      type: bool
    version:
      description: Its C(__version__), or null.
      type: str
      sample: 0.33.2
    location:
      description: The folder of the C(deadline_worker_agent) package.
      type: str
    python:
      description: The Python that hosts the service.
      type: str
service:
  description: The agent's service.
  returned: always
  type: dict
  contains:
    name: {description: The service name., type: str, sample: DeadlineWorker}
    exists: {description: Whether the service exists., type: bool}
    state: {description: V(running) or V(stopped) (other states as Windows names them)., type: str}
    start_mode: {description: "V(auto), V(manual) or V(disabled).", type: str}
    account: {description: The logon account as the Service Control Manager shows it., type: str, sample: .\deadline-worker}
    environment:
      description: The service's own C(Environment) value, C(NAME=value) entries.
      type: list
      elements: str
      sample: [AWS_DEFAULT_REGION=us-west-2]
    pid: {description: "The service's process id while it runs, else null.", type: int}
    started_at: {description: "When the running service process started (UTC, ISO 8601), else null.", type: str}
    token_administrators:
      description:
        - Whether the running service process's token holds Administrators (S-1-5-32-544) as an enabled group, which the
          agent and its WORKER_AGENT_USER jobs have until the service restarts, whatever the account's groups are now.
        - Null when the service does not run, or when its token cannot be read (C(service.token_error) in RV(reading) says why).
      type: bool
account:
  description: The account (the service's logon account by default); null when it cannot be resolved (see RV(account_error)).
  returned: always
  type: dict
  contains:
    name: {description: Its qualified name., type: str, sample: WORKER-01\deadline-worker}
    domain: {description: Its domain (the computer name for a local account)., type: str}
    sid: {description: Its SID., type: str, sample: S-1-5-21-3623811015-3361044348-30300820-1001}
    groups:
      description: Its local groups, each C({name, sid}).
      type: list
      elements: dict
      sample: [{name: Administrators, sid: S-1-5-32-544}]
    rights: {description: The rights it holds directly., type: list, elements: str, sample: [SeServiceLogonRight]}
    effective_rights:
      description: >-
        Every right it holds, with its source - C(direct), the local C(groups) (C({name, sid})) it comes through, and
        C(denied) when the matching deny right overrides it.
      returned: with O(details)
      type: dict
      sample: {SeShutdownPrivilege: {direct: false, groups: [{name: Administrators, sid: S-1-5-32-544}], denied: false}}
    token_groups:
      description:
        - Every group its service logon carries, C({name, sid, scope}); C(scope) is V(local), V(domain) (domain groups, nested
          ones included, as a domain controller reports them) or V(well_known) (Everyone, Authenticated Users and SERVICE,
          which every service logon carries).
      returned: with O(details)
      type: list
      elements: dict
      sample: [{name: CORP\Render Admins, sid: S-1-5-21-1004336348-1177238915-682003330-1120, scope: domain}]
    token_groups_known:
      description: False when its domain groups could not be read (see V(DOMAIN_UNREACHABLE) and V(TOKEN_GROUPS_UNKNOWN)).
      type: bool
    policy_rights:
      description:
        - The rights a domain Group Policy defines on the host (its resultant set of policy), right to holders
          C({sid, name}); at each policy refresh each of these rights gets exactly these holders. C({}) when no policy
          defines any; null when the host is a domain member whose policy result cannot be read.
      type: dict
      sample: {SeServiceLogonRight: [{sid: S-1-5-80-0, name: NT SERVICE\ALL SERVICES}]}
account_error:
  description: >-
    Why the account could not be read, C({code, message}); C(code) is V(ACCOUNT_NOT_FOUND), V(ACCOUNT_AMBIGUOUS),
    V(DOMAIN_UNREACHABLE) (no domain controller answered), V(ACCOUNT_LOOKUP_FAILED) or V(LSA_ERROR).
  returned: when the account does not resolve
  type: dict
  sample: {code: ACCOUNT_NOT_FOUND, message: "account 'deadline-worker' does not exist on WORKER-01"}
config:
  description: C(worker.toml) as the agent reads it.
  returned: always
  type: dict
  contains:
    path: {description: The file., type: str}
    exists: {description: Whether it exists., type: bool}
    modified_at: {description: "When the file was last written (UTC, ISO 8601); null when it is missing.", type: str}
    encoding: {description: "V(utf-8), V(utf-8-bom), V(utf-16) or V(invalid); null when the file is missing.", type: str}
    parse_error:
      description: Where TOML parsing stops, C({message, line, column}); null when it parses.
      type: dict
      sample: {message: "Expected '=' after a key in a key/value pair (at line 3, column 5)", line: 3, column: 5}
    errors:
      description: What the agent's configuration model refuses (a missing table, a removed key, a wrong type).
      type: list
      elements: str
      sample: ["os -> run_jobs_as_agent_user: value could not be parsed to a boolean"]
    entries:
      description:
        - For every key the agent knows, by table, the value it would load (null when absent or refused).
        - Named C(entries), not C(values), so that C(result.config.entries) in a template is this dict and not a method.
      returned: with O(details)
      type: dict
      sample: {os: {run_jobs_as_agent_user: null, shutdown_on_stop: true, windows_job_user: null}}
environment:
  description: The agent's variables (C(DEADLINE_WORKER_*)) the service process gets, each C({value, source}); source is
    V(machine), V(user) (the logon account's own user variables, when the host could read them) or V(service); a user
    variable wins over a machine variable, and the service's own value over both.
  returned: always
  type: dict
  sample: {DEADLINE_WORKER_RUN_JOBS_AS_AGENT_USER: {value: "false", source: machine}}
settings:
  description: The settings that decide WORKER_AGENT_USER jobs, as the agent resolves them, each C({value, source, variable});
    source is V(default), V(file), V(machine), V(user) or V(service). Null when C(worker.toml) cannot be read as TOML.
  returned: always
  type: dict
  sample: {run_jobs_as_agent_user: {value: false, source: default, variable: null}}
startup:
  description: Whether the agent gets past its configuration at its next start, C({starts, error, stage}); C(error) is the agent's own text.
  returned: always
  type: dict
  sample: {starts: false, stage: validate, error: Cannot specify a windows job user when the option to run jobs as the agent user is enabled.}
findings:
  description:
    - Each C({id, severity, message, fix}); severity is V(blocker), V(security), V(warning) or V(info), blockers first.
    - Ids - V(AGENT_OPT_IN_MISSING), V(ENV_OVERRIDE), V(JOB_USER_CONFLICT), V(LEGACY_IMPERSONATION_KEY), V(CONFIG_ENCODING),
      V(CONFIG_INVALID), V(CONFIG_MISSING), V(AGENT_VERSION_UNSUPPORTED), V(SERVICE_MISSING), V(SERVICE_DISABLED), V(ACCOUNT_MISSING),
      V(ACCOUNT_UNREADABLE) (the account could not be read for another cause than its absence, such as access denied),
      V(ACCOUNT_DISABLED), V(SERVICE_LOGON_RIGHT_MISSING), V(RIGHT_DENIED), V(AGENT_STARTUP_ERROR) (blockers); V(AGENT_USER_IS_ADMIN),
      V(AGENT_USER_IS_SYSTEM), V(AGENT_TOKEN_STALE) (security); V(MISPLACED_KEY), V(SHUTDOWN_RIGHT_MISSING), V(GROUP_POLICY_UNREADABLE),
      V(CONFIG_NOT_LOADED) (warnings);
      V(RIGHT_OWNED_BY_POLICY) (a blocker for the logon right as it is now, else a warning);
      V(DOMAIN_UNREACHABLE) (a blocker when the account itself does not resolve, a security finding when its domain groups
      cannot be read), V(TOKEN_GROUPS_UNKNOWN) (security, its domain groups could not be read for another cause);
      V(ENV_USER_VARIABLE) (a blocker when it turns the opt-in off or sets a job user, else a warning);
      V(MESSAGE_IS_MISLEADING) (info).
    - A finding names a cause, not what follows from another one. V(AGENT_OPT_IN_MISSING) is not listed where worker.toml is
      missing or the agent refuses its model (V(CONFIG_MISSING), V(CONFIG_INVALID)), nor where the file sets the opt-in and a
      variable turns it off (V(ENV_OVERRIDE), V(ENV_USER_VARIABLE)). Where the domain groups of the account cannot be read, a
      right it may hold through one of them is not called missing or taken by a policy (V(DOMAIN_UNREACHABLE) or
      V(TOKEN_GROUPS_UNKNOWN) names the cause).
    - V(RIGHT_DENIED) says that the account holds C(SeDenyServiceLogonRight) (directly or through the group it names), which
      overrides C(SeServiceLogonRight) however that is held; the fix removes the deny right (Local Security Policy or the GPO
      that sets it), not a grant.
    - V(ENV_USER_VARIABLE) says that a setting comes from the logon account's own user variables (C(HKU\\<SID>\\Environment));
      whether the service process gets them is not verified, so the finding says where the variable is and how to remove it.
    - V(RIGHT_OWNED_BY_POLICY) says that a domain Group Policy defines a right the account needs outside Administrators
      (C(SeServiceLogonRight), C(SeShutdownPrivilege) when the agent shuts the host down, and the rights the installer
      grants) without the account or a group it keeps, or gives it the deny right; each policy refresh resets such a
      right to the policy's holders, so a direct grant does not last. The fix is in that GPO.
    - V(CONFIG_NOT_LOADED) says that C(worker.toml) was written after the running agent started; the agent reads it
      only at start, so a restart is due.
    - V(AGENT_TOKEN_STALE) says that the running agent's process still has Administrators in its token although its
      account left the group after the service started (a process keeps the token it started with), so its jobs run as
      an administrator until the service restarts, which is the fix (the role restarts it, when idle).
    - V(AGENT_STARTUP_ERROR) carries the agent's error when it would stop at start for a reason no other finding names
      (e.g. no farm_id anywhere, an unparsable environment value).
  returned: always
  type: list
  elements: dict
  sample:
    - id: AGENT_OPT_IN_MISSING
      severity: blocker
      message: "run_jobs_as_agent_user resolves to false (it is not set anywhere, and the default is false): ..."
      fix: Set [os] run_jobs_as_agent_user = true in worker.toml (deadline_cloud.cmf.worker_toml) and restart the service.
sessions:
  description: >-
    The render sessions the agent runs now, C({busy, count, ids, worker_id}); busy means the agent service process has
    descendant processes (its session directories and the worker id of C(worker.json) are reported too).
  returned: always
  type: dict
  sample: {busy: true, count: 1, ids: [session-0123], worker_id: worker-0123456789abcdef0123456789abcdef}
reading:
  description:
    - The host's answer as read, for the O(deadline_cloud.cmf.worker_toml#module:reading) option of this collection's
      other modules (they then need not read the host again). Its shape is internal and may change in any release.
  returned: with O(details)
  type: dict
error_code:
  description: A stable code for why the remote call failed, V(HOST_ERROR) when the host could not run it at all; C(msg) says more.
  returned: on failure of the remote call
  type: str
  sample: HOST_ERROR
"""
