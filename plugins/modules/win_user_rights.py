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
  bypass_host_loop:
    support: none
  action:
    support: full
    details: The module runs as an action plugin on the controller; the host applies the difference in one remote call.
  action_group:
    support: full
    membership: [deadline_cloud.cmf.accounts, deadline_cloud.cmf.all]
  async:
    support: none
  check_mode:
    support: full
    details: Reads the account in one call and reports what would change.
  diff_mode:
    support: full
    details: The account's direct rights before and after.
  platform:
    support: full
    platforms: windows
    details: Windows hosts, reached through any Windows connection or the simulated worker.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - ansible.builtin.action_common_attributes.actiongroups
  - deadline_cloud.cmf.windows_account
  - deadline_cloud.cmf.reading
notes:
  - Beside M(ansible.windows.win_user_right), which takes one right and the accounts that should hold it (and with
    C(action=set) makes them its only holders), this module takes one account and the rights it should hold. Use
    M(ansible.windows.win_user_right) to decide who holds a right on a host; use this module to converge one account,
    such as a service's, without touching any other account's rights.
  - What this module adds to that - the account and its rights compared by SID; the rights it gets through its groups
    (RV(effective_rights)) and the deny rights that override a logon right it holds, reported; one remote call, and one
    read in check mode; the simulated worker.
seealso:
  - module: deadline_cloud.cmf.win_group_member
  - module: ansible.windows.win_user_right
    description: >-
      One right and its holders (add, remove, or set the exact list): for who holds a right on a host. This module sets
      the rights one account holds, compared by SID, and leaves every other account's rights alone.
requirements:
  - The collection ansible.windows (3.3.0 or later) for real Windows workers, whose M(ansible.windows.win_powershell) runs each
    remote operation; the C(deadline_cloud.cmf.simulated_worker) connection needs neither it nor Windows.
author:
  - Contributors to deadline_cloud.cmf (!UNKNOWN)
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
  description:
    - Allow logon rights the account holds that a deny right it also holds overrides.
    - Rights it holds directly that a domain Group Policy defines for other holders only (or deny rights a policy gives
      it), which the next policy refresh (about every 90 minutes, and at boot) resets to the policy's list.
  returned: when there are any
  type: list
  elements: str
error_code:
  description:
    - A stable code for why the task failed on the account; C(msg) says more.
    - V(ACCOUNT_NOT_FOUND), V(ACCOUNT_AMBIGUOUS) (a bare name that several accounts of the simulated worker have;
      Windows resolves a name to one account), V(DOMAIN_UNREACHABLE) (no domain controller answers for the account),
      V(ACCOUNT_LOOKUP_FAILED) (the name lookup failed for another cause), V(UNKNOWN_RIGHT) (a right this Windows does
      not know, refused before any change), V(LSA_ERROR) (the LSA refused to read or change the rights),
      V(DOMAIN_CONTROLLER) (the host is a domain controller, whose rights are the domain's), V(CONSTRAINED_LANGUAGE)
      (WDAC or AppLocker runs the scripts in ConstrainedLanguage).
    - V(HOST_ERROR) when the host could not run the operation at all.
  returned: on failure, when the host or the account refuses
  type: str
  sample: ACCOUNT_NOT_FOUND
"""
