#!/usr/bin/python
# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: win_group_member
short_description: Add one Windows account to local groups, or remove it from them, by SID
version_added: 0.1.0
description:
  - Makes one account a member of each of O(groups) (O(state=present)), or of none of them (O(state=absent)).
    Its other groups are left alone.
  - Groups and members are compared by SID. A group may be named by its local name or its SID; the English
    name of a BUILTIN group (V(Administrators)) and its well-known SID (V(S-1-5-32-544)) also name it on a host
    whose groups carry localized names (V(Administratoren), V(Administrateurs)), so one task converges them all.
  - Reads local groups through ADSI and the members' SIDs, which survives members whose SID no longer
    resolves (deleted accounts, Azure AD members); C(Get-LocalGroupMember) fails on them and is not used.
  - Refuses to remove an account from Administrators, with a message that says why, and changes nothing, when
    the account is the one Ansible is connected as, when it is the built-in Administrator (RID 500), or when it
    would leave Administrators with no enabled member (disabled accounts and orphaned SIDs do not count).
  - One remote call, whether something changes or not; the host applies the difference itself.
  - Runs on the controller; it reaches the worker through its Windows connection, or the
    C(deadline_cloud.cmf.simulated_worker) connection.
options:
  groups:
    description:
      - Local groups, by name (V(deadline-job-users), V(.\\Users), V(BUILTIN\\Administrators)) or SID (V(S-1-5-32-544)).
      - A group that does not exist fails the task, naming it, and nothing is changed.
    type: list
    elements: str
    required: true
  state:
    description:
      - V(present) - the account is a member of each of O(groups).
      - V(absent) - the account is a member of none of O(groups). A group it is not in is not a change.
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
    details: Reads the account in one call, applies the same safety rules, and reports what would change.
  diff_mode:
    support: full
    details: The account's local groups before and after.
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
  - Leaving Administrators takes away the rights the account got through it; RV(effective_rights) shows
    what remains, and M(deadline_cloud.cmf.win_user_rights) grants what the account needs directly.
  - Beside M(ansible.windows.win_group_membership), which takes one group, by its local name, and the members it should
    have (with C(state=pure), its only members), this module takes one account and the groups it should be in or out
    of. Use M(ansible.windows.win_group_membership) to decide who is in a group; use this module to move one account
    in or out of groups, above all out of Administrators, on hosts whose group names differ by language.
  - What this module adds to that - groups named by SID or by their English BUILTIN names on any Windows language; the
    refusals before a change (the account Ansible connects as, the built-in Administrator, the last enabled
    administrator); a failure when the account is still a member through a nested group after its removal; one remote
    call, and one read in check mode; the simulated worker.
seealso:
  - module: deadline_cloud.cmf.win_user_rights
  - module: ansible.windows.win_group_membership
    description: >-
      One group and its members (present, absent, or the exact list with C(state=pure)): for who is in a group. This
      module sets the groups of one account, compared by SID, with its refusals before a change, and leaves the groups'
      other members alone.
requirements:
  - The collection ansible.windows (3.3.0 or later) for real Windows workers, whose M(ansible.windows.win_powershell) runs each
    remote operation; the C(deadline_cloud.cmf.simulated_worker) connection needs neither it nor Windows.
author:
  - Contributors to deadline_cloud.cmf (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Take the agent account out of Administrators, whatever the group is called on this host
  deadline_cloud.cmf.win_group_member:
    account: .\deadline-worker
    groups: [S-1-5-32-544]
    state: absent

- name: Keep it in the job users group
  deadline_cloud.cmf.win_group_member:
    account: .\deadline-worker
    groups: [deadline-job-users]
    state: present
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
  description: Groups the account was added to (would be, in check mode), each C({name, sid}).
  returned: success
  type: list
  elements: dict
  sample: []
removed:
  description: Groups the account was removed from (would be, in check mode), each C({name, sid}).
  returned: success
  type: list
  elements: dict
  sample: [{name: Administrators, sid: S-1-5-32-544}]
groups:
  description: Every local group the account is in afterwards, each C({name, sid}), with the host's own names.
  returned: success
  type: list
  elements: dict
  sample: [{name: deadline-job-users, sid: S-1-5-21-3623811015-3361044348-30300820-1002}, {name: Users, sid: S-1-5-32-545}]
effective_rights:
  description: The rights the account gets through its local groups afterwards, each with the groups it comes from.
  returned: success
  type: dict
  sample:
    SeInteractiveLogonRight:
      - name: Users
        sid: S-1-5-32-545
error_code:
  description:
    - A stable code for why the task failed on the account; C(msg) says more.
    - Before any change - V(ACCOUNT_NOT_FOUND), V(ACCOUNT_AMBIGUOUS) (a bare name that several accounts of the simulated
      worker have; Windows resolves a name to one account), V(DOMAIN_UNREACHABLE) (no domain controller answers for the
      account, or for its domain groups when it is to leave a group), V(ACCOUNT_LOOKUP_FAILED) (the name lookup failed for
      another cause), V(TOKEN_GROUPS_FAILED) (its domain groups could not be read, when it is to leave a group),
      V(GROUP_NOT_FOUND), V(REMOVAL_REFUSED) (a removal that would keep it a member through a nested group, or lock
      the host out of Administrators), V(LSA_ERROR) (the LSA refused to read), V(DOMAIN_CONTROLLER) (the host is a
      domain controller, which has no local groups), V(CONSTRAINED_LANGUAGE) (WDAC or AppLocker runs the scripts in
      ConstrainedLanguage).
    - After a change - V(GROUP_CHANGE_FAILED), when one group's change failed after others were made (C(changed),
      C(added) and C(removed) say what was done).
    - V(HOST_ERROR) when the host could not run the operation at all.
  returned: on failure, when the host or the account refuses
  type: str
  sample: REMOVAL_REFUSED
"""
