#!/usr/bin/python
# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: win_user_rights
short_description: Grant or revoke user rights held directly by one Windows account
version_added: 0.1.0
description:
  - Makes one account hold each of O(rights) directly (O(state=present)), or none of them
    directly (O(state=absent)). Rights the task does not name are left alone, and so are the rights
    of every other account.
  - Reads and changes the account's rights through the Local Security Authority
    (C(LsaEnumerateAccountRights), C(LsaAddAccountRights), C(LsaRemoveAccountRights)) on the account's SID,
    never through a C(secedit) export of the whole policy, which rewrites other accounts' rights too.
  - Reports the rights the account also gets through the local groups it is in (RV(effective_rights)),
    which tells which rights disappear when it leaves a group. For example, the Deadline Cloud installer
    grants C(SeIncreaseQuotaPrivilege) and C(SeShutdownPrivilege) only through Administrators.
  - Warns when the account holds an allow logon right that a deny right it also holds (directly or
    through a group) overrides, for example C(SeServiceLogonRight) against C(SeDenyServiceLogonRight).
  - One remote call, whether something changes or not; the host applies the difference itself.
  - Runs on the controller; it reaches the worker through its Windows connection, or the
    C(deadline_cloud.cmf.simulated_worker) connection.
options:
  rights:
    description:
      - User-right constants, privileges and logon rights, for example V(SeServiceLogonRight),
        V(SeAssignPrimaryTokenPrivilege), V(SeIncreaseQuotaPrivilege), V(SeShutdownPrivilege).
      - Matched case-insensitively and returned in their canonical case. An unknown name fails the task,
        listing the valid ones, and nothing is changed.
    type: list
    elements: str
    required: true
  state:
    description:
      - V(present) - the account holds each of O(rights) directly.
      - V(absent) - the account holds none of O(rights) directly. Rights it gets through a group stay;
        see RV(effective_rights).
    type: str
    choices: [present, absent]
    default: present
attributes:
  check_mode:
    support: full
    description: Can run in check mode and return what would change without changing the host.
    details: Reads the account in one call and reports what would change.
  diff_mode:
    support: full
    description: Returns what changed (or would change in check mode) as before and after, when in diff mode.
    details: The account's direct rights before and after.
extends_documentation_fragment:
  - deadline_cloud.cmf.windows_account
seealso:
  - module: deadline_cloud.cmf.win_group_member
  - module: ansible.windows.win_user_right
author:
  - Deadline Cloud CMF maintainers
"""

EXAMPLES = r"""
- name: Let the agent account run the service and start jobs as other users
  deadline_cloud.cmf.win_user_rights:
    account: .\deadline-worker
    rights:
      - SeServiceLogonRight
      - SeAssignPrimaryTokenPrivilege
      - SeIncreaseQuotaPrivilege
    state: present

- name: Drop a right the account should not hold directly
  deadline_cloud.cmf.win_user_rights:
    account: S-1-5-21-3623811015-3361044348-30300820-1001
    rights: [SeDebugPrivilege]
    state: absent
"""

RETURN = r"""
sid:
  description: The account's SID.
  returned: success
  type: str
  sample: S-1-5-21-3623811015-3361044348-30300820-1001
account:
  description: The account's resolved name, as Windows prints it.
  returned: success
  type: str
  sample: WORKER-01\deadline-worker
added:
  description: Rights granted by this task (that would be, in check mode).
  returned: success
  type: list
  elements: str
  sample: [SeIncreaseQuotaPrivilege]
removed:
  description: Rights revoked by this task (that would be, in check mode).
  returned: success
  type: list
  elements: str
  sample: []
rights:
  description: Every right the account holds directly afterwards, sorted.
  returned: success
  type: list
  elements: str
  sample: [SeAssignPrimaryTokenPrivilege, SeIncreaseQuotaPrivilege, SeServiceLogonRight]
effective_rights:
  description:
    - The rights the account also gets through the local groups it is in, each with the groups it
      comes from (C({name, sid})). A right held both directly and through a group is listed here too.
  returned: success
  type: dict
  sample:
    SeShutdownPrivilege:
      - name: Administrators
        sid: S-1-5-32-544
warnings:
  description: Allow logon rights the account holds that a deny right it also holds overrides.
  returned: when there are any
  type: list
  elements: str
"""
