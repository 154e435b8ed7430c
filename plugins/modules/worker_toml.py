#!/usr/bin/python
# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: worker_toml
short_description: Set or remove keys of a Deadline Cloud worker agent's worker.toml
version_added: 0.1.0
description:
  - Sets or removes keys of the AWS Deadline Cloud worker agent's configuration file on a Windows
    worker, in one read and one atomic write, so that keys that must change together never land half-way.
  - The file is edited on the controller with tomlkit. Everything the change does not touch stays
    byte for byte, including comments, blank lines, key order, quoting, other tables and the line endings.
  - A key that exists changes in place. Where the table holds only a commented-out example of the key
    (C(# run_jobs_as_agent_user = true), as the agent's example file does), the key takes that line's place.
    Otherwise it is added at the end of the table's own lines. A missing table is added.
  - Removing a key (O(state=absent)) leaves the old line as a comment.
  - The file is written as UTF-8 without a byte order mark. A BOM or UTF-16 stops the worker agent;
    they are removed and the result says so in RV(warnings).
  - The write happens only if the file still has the content that was read; otherwise the task fails
    and the file is left as the other writer left it.
  - One remote call when nothing changes, two when the file is written.
  - The agent reads worker.toml only when it starts; restart it with M(deadline_cloud.cmf.worker_agent_service).
options:
  config_path:
    aliases: [path]
    description:
      - Path of the agent's C(worker.toml) on the worker.
      - The agent itself reads only C(%PROGRAMDATA%\Amazon\Deadline\Config\worker.toml); another path edits a copy.
      - Named as in M(deadline_cloud.cmf.worker_agent_info); O(path), its former name, stays valid as an alias.
  table:
    description:
      - The table of the key, for example V(os). A sub-table is dotted, for example V(capabilities.amounts).
      - Required with O(key). Mutually exclusive with O(settings).
    type: str
  key:
    description: The key to set or remove. Mutually exclusive with O(settings).
    type: str
  value:
    description:
      - The value of the key when O(state=present) - a bool, integer, float, string or list, written as that TOML type.
    type: raw
  state:
    description:
      - V(present) sets the key to O(value); V(absent) leaves no active assignment of the key in the table.
      - Defaults to V(present).
    type: str
    choices: [present, absent]
  settings:
    description:
      - Several keys applied together in one read and one write, each with O(settings[].table),
        O(settings[].key), O(settings[].value) and O(settings[].state).
      - Mutually exclusive with O(table), O(key), O(value) and O(state).
    type: list
    elements: dict
    suboptions:
      table:
        description: The table of the key.
        type: str
        required: true
      key:
        description: The key.
        type: str
        required: true
      value:
        description: The value, for V(present).
        type: raw
      state:
        description: V(present) or V(absent).
        type: str
        default: present
        choices: [present, absent]
  backup:
    description: Keep a timestamped copy of the file beside it before writing, and return its path.
    type: bool
    default: false
  validate:
    description:
      - Refuse to write a result the agent would not accept - invalid TOML, a missing required table,
        a key the agent knows with a value of the wrong type, or a known key in a table where the agent ignores it.
      - Keys whose table moved between agent releases only warn when found elsewhere.
    type: bool
    default: true
  create:
    description: Create the file when it does not exist. Without it, a missing file fails the task.
    type: bool
    default: false
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - ansible.builtin.action_common_attributes.actiongroups
  - deadline_cloud.cmf.worker_agent.config_path
  - deadline_cloud.cmf.reading
notes:
  - Runs on the controller; the worker is reached through the task's connection (any Windows connection
    with M(ansible.windows.win_powershell), or P(deadline_cloud.cmf.simulated_worker#connection)).
seealso:
  - module: deadline_cloud.cmf.worker_agent_info
  - module: deadline_cloud.cmf.worker_agent_service
attributes:
  bypass_host_loop:
    support: none
  action:
    support: full
    details: The module runs as an action plugin on the controller, which edits the file and reaches the worker to read and write it.
  action_group:
    support: full
    membership: [deadline_cloud.cmf.worker, deadline_cloud.cmf.all]
  async:
    support: none
  check_mode:
    support: full
    details: Reports what would change and changes nothing.
  diff_mode:
    support: full
    details: Shows a unified diff of the file.
  platform:
    support: full
    platforms: windows
    details: Windows workers, reached through any Windows connection or the simulated worker.
requirements:
  - tomlkit >= 0.12 on the controller, which edits worker.toml with it (C(pip install -r requirements.txt) of the collection).
  - tomli >= 2.0.1 on a controller with Python 3.10, to read worker.toml as the agent does (Python 3.11 and later have C(tomllib)).
  - The collection ansible.windows (3.3.0 or later) for real Windows workers, whose M(ansible.windows.win_powershell) runs each
    remote operation; the C(deadline_cloud.cmf.simulated_worker) connection needs neither it nor Windows.
author:
  - Contributors to deadline_cloud.cmf (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Let WORKER_AGENT_USER jobs run (one write, so the opt-in never meets a job user)
  deadline_cloud.cmf.worker_toml:
    settings:
      - {table: os, key: run_jobs_as_agent_user, value: true}
      - {table: os, key: windows_job_user, state: absent}
      - {table: os, key: impersonation, state: absent}
    backup: true

- name: Turn on verbose logging
  deadline_cloud.cmf.worker_toml:
    table: logging
    key: verbose
    value: true

- name: Edit a copy of worker.toml (config_path; path, its former name, is an alias)
  deadline_cloud.cmf.worker_toml:
    config_path: D:\staging\worker.toml
    table: os
    key: run_jobs_as_agent_user
    value: true

- name: Declare an amount capability
  deadline_cloud.cmf.worker_toml:
    table: capabilities.amounts
    key: amount.slots
    value: 20

- name: Read the worker once, with the details the other modules can plan from
  deadline_cloud.cmf.worker_agent_info:
    details: true
  register: worker

- name: Opt in, written against that reading (no second read; refused if the file changed since)
  deadline_cloud.cmf.worker_toml:
    table: os
    key: run_jobs_as_agent_user
    value: true
    reading: "{{ worker }}"
"""

RETURN = r"""
path:
  description: The file that was edited (O(config_path)).
  returned: success
  type: str
  sample: C:\ProgramData\Amazon\Deadline\Config\worker.toml
previous:
  description: The value each key had before, by table and key; null where the key was not set.
  returned: success, and when O(validate) refuses the result
  type: dict
  sample: {"os": {"run_jobs_as_agent_user": null, "windows_job_user": "job-user"}}
backup_file:
  description: The backup copy made beside the file, when O(backup=true) and the file was written; else null.
  returned: success
  type: str
  sample: C:\ProgramData\Amazon\Deadline\Config\worker.toml.20261128-101500.bak
diff:
  description: The file before and after, shown as a unified diff.
  returned: changed, in diff mode
  type: dict
warnings:
  description: A byte order mark or UTF-16 that was removed, and known keys in a table where some agent releases ignore them.
  returned: when there is something to warn about
  type: list
  elements: str
  sample:
    - C:\ProgramData\Amazon\Deadline\Config\worker.toml was UTF-16, which stops the worker agent (it reads strict UTF-8); it is written as UTF-8
error_code:
  description:
    - A stable code for why a remote operation failed, for example V(FOLDER_NOT_FOUND) (the folder of O(config_path)
      does not exist), or V(HOST_ERROR) when the host could not run the operation at all; C(msg) says more.
    - A file that changed between the read and the write fails the task without a code; C(msg) says so.
  returned: on failure of a remote operation
  type: str
  sample: FOLDER_NOT_FOUND
"""
