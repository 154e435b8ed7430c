#!/usr/bin/python
# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: worker_selftest
short_description: Test every remote operation of the collection on one worker, in a sandbox, before the fleet
version_added: 0.1.0
description:
  - >-
    A canary for operators. Calls each remote operation the other modules use, in a sandbox, along the paths a
    converge takes, and compares each answer with the host contract - the fields and their types, and what the
    answer means (what was written reads back byte for byte, a stale hash is refused, a file is replaced over
    the bytes that were read without and with a backup and nothing else is left beside it, an unknown right is
    refused before any grant, rights and a membership that were granted are seen, then gone again, the reading
    of a named account). Returns one line per step, C(<step>: ok) or C(<step>: <what differs>).
  - >-
    What a domain-joined worker adds to every account reading is checked on the readings the test takes anyway,
    of the sandbox user and of the service's own account, at no extra remote call - the token groups (SIDs with
    a scope V(local), V(domain) or V(well_known); Everyone, Authenticated Users and SERVICE in every one; the
    sandbox group exactly while the user is in it; every local group that holds one of them, such as Users), a
    group closure that a local account always knows, the rights a domain Group Policy defines (known user
    rights, holders as SIDs), and the same reading through both operations.
  - >-
    When the host cannot know - a domain controller out of reach leaves the service account's domain groups
    unread, or the policy result cannot be read - and says why, as the contract requires, the step reads
    C(<step>: unknown (<why>)) and a warning names it. That is not a failure (a converge refuses such a host
    before any change), and not C(ok) either - that path was not proven on this worker.
  - The sandbox is a disabled local user O(sandbox_name) with a random password, a local group
    C(<sandbox_name>g) with no members, and a folder C(<sandbox_name>) under the system temp folder. The files,
    the rights (C(SeBatchLogonRight), C(SeIncreaseQuotaPrivilege)) and the membership the test makes are made
    only there. The user is disabled from its creation.
  - The sandbox is removed at the end, also after a failed step - the user's rights first, through the LSA, so
    that no orphaned SID is left in the policy - and the removal is checked, with what the sandbox folder held.
  - Outside the sandbox it only reads - the agent's service, its account and O(config_path) - and, only when the
    service is running, asks for the service to be V(started), which changes nothing. It never stops or restarts
    the service.
  - Fails when any step differs, after the sandbox is removed, naming the steps.
  - Runs on the controller; it reaches the worker through its Windows connection, or the
    C(deadline_cloud.cmf.simulated_worker) connection.
options:
  service:
    description: The agent's service, read and never stopped.
    type: str
    default: DeadlineWorker
  config_path:
    description: The agent's C(worker.toml), read only.
    type: str
    default: C:\ProgramData\Amazon\Deadline\Config\worker.toml
  sandbox_name:
    description:
      - The sandbox user's name (1 to 19 letters, digits, V(-) or V(_)); the group is this name and V(g).
      - A sandbox left by an interrupted run under the same name is reused, then removed. A local user or group
        of that name, or a folder, that the self-test did not make (without its description or marker file) is
        never reused nor deleted, and the test fails before it changes anything.
    type: str
    default: cmf-selftest
  require_contract_v2:
    description:
      - Also require the fields that version 2 of the host contract adds (for example C(sessions) and
        C(user_environment) of the agent reading, the service's C(events)).
      - When false, such fields are checked for their type only when they are present.
    type: bool
    default: false
attributes:
  bypass_host_loop:
    support: none
  action:
    support: full
    details: >-
      The module runs as an action plugin on the controller and makes one remote call per step, but for the steps that
      check an answer already taken (the token groups and the group policy of a reading).
  action_group:
    support: full
    membership: [deadline_cloud.cmf.worker, deadline_cloud.cmf.all]
  async:
    support: none
  check_mode:
    support: none
    details: Refused with a message - the test must create and remove its sandbox.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: windows
    details: Windows hosts, reached through any Windows connection or the simulated worker.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - ansible.builtin.action_common_attributes.actiongroups
notes:
  - Run it on one worker (C(--limit)) before converging the fleet; C(playbooks/selftest.yml) does.
  - C(changed) is false - the sandbox is gone again when the module returns.
seealso:
  - module: deadline_cloud.cmf.worker_agent_info
requirements:
  - The collection ansible.windows (3.3.0 or later) for real Windows workers, whose M(ansible.windows.win_powershell) runs each
    remote operation; the C(deadline_cloud.cmf.simulated_worker) connection needs neither it nor Windows.
author:
  - Contributors to deadline_cloud.cmf (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Test the collection's remote operations on this worker
  deadline_cloud.cmf.worker_selftest:
  register: selftest

- name: Show one line per step
  ansible.builtin.debug:
    var: selftest.lines

- name: Another service name, and the fields of host contract v2 required
  deadline_cloud.cmf.worker_selftest:
    service: DeadlineWorker
    require_contract_v2: true
"""

RETURN = r"""
lines:
  description: >-
    One line per step, C(<step>: ok), C(<step>: <what differs>), C(<step>: skipped (<why>)) or
    C(<step>: unknown (<why>)).
  returned: always
  type: list
  elements: str
  sample:
    - "sandbox present: ok"
    - "read_file absent: ok"
    - "write_file create: ok"
    - "set_group_membership present: the call failed: the connection dropped"
    - "read_agent_info service account token groups: unknown (the domain groups of CORP\\render-svc (S-1-5-21-...) were not
      read, DOMAIN_UNREACHABLE: ...)"
steps:
  description: The steps, in order.
  returned: always
  type: list
  elements: dict
  contains:
    step:
      description: The step, named after its remote operation first.
      type: str
      sample: write_file stale hash
    operation:
      description: The remote operation whose answer the step checks (its own call, or the reading before it).
      type: str
      sample: write_file
    ok:
      description: Whether the answer matches the contract.
      type: bool
    skipped:
      description: Why the step was not run, else null.
      type: str
    unknown:
      description: >-
        Why the host could not know what the step checks, as it said so (for example V(DOMAIN_UNREACHABLE) and
        its message), else null. Such a step is OK and not proven.
      type: str
    differences:
      description: What differs from the contract.
      type: list
      elements: str
"""
