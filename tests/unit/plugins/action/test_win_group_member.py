# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""win_group_member's check of the host's report after a removal."""

from __future__ import annotations

from ansible_collections.deadline_cloud.cmf.plugins.action.win_group_member import ActionModule

ADMINISTRATORS = {"name": "Administrators", "sid": "S-1-5-32-544"}
REPORT = {"name": "CORP\\render-svc", "sid": "S-1-5-21-1111111111-2222222222-3333333333-4101"}


def test_a_group_still_held_after_its_removal_is_a_failure_naming_the_nesting():
    # A domain group nested in Administrators carries the membership: NetUserGetLocalGroups shows it again.
    after = {**REPORT, "groups": [{**ADMINISTRATORS, "indirect": True}]}
    problem = ActionModule.after_change_problem(None, after, [ADMINISTRATORS])
    assert problem is not None
    assert "still a member through a group nested in it" in problem and "Administrators (S-1-5-32-544)" in problem


def test_a_removal_that_took_is_no_problem():
    after = {**REPORT, "groups": [{"name": "Users", "sid": "S-1-5-32-545", "indirect": False}]}
    assert ActionModule.after_change_problem(None, after, [ADMINISTRATORS]) is None
    assert ActionModule.after_change_problem(None, {**REPORT, "groups": [ADMINISTRATORS]}, []) is None
