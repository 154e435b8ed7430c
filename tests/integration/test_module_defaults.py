# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""meta/runtime.yml's action groups: module_defaults for group/deadline_cloud.cmf.<group> reach the modules."""

from __future__ import annotations

import simworker

AGENT_SID = "S-1-5-21-3623811015-3361044348-30300820-1001"


def test_group_defaults_reach_each_module_of_the_group(tmp_path):
    paths = {"worker-01": simworker.save_state(tmp_path / "worker-01.yml", simworker.example_state())}
    inventory = simworker.write_inventory(tmp_path, paths)
    tasks = [
        {
            "name": "Rights, with the account from the group's defaults",
            "deadline_cloud.cmf.win_user_rights": {"rights": ["SeServiceLogonRight"]},
            "register": "rights",
        },
        {"name": "Groups, the same", "deadline_cloud.cmf.win_group_member": {"groups": ["Users"]}, "register": "membership"},
        {"name": "Check", "ansible.builtin.assert": {"that": ["rights.sid == '" + AGENT_SID + "'", "membership.sid == '" + AGENT_SID + "'"]}},
    ]
    for group in ("accounts", "all"):
        playbook = simworker.write_playbook(
            tmp_path, tasks, name=f"{group}.yml", module_defaults={f"group/deadline_cloud.cmf.{group}": {"account": AGENT_SID}}
        )
        run = simworker.run_playbook(playbook, inventory, env=simworker.ansible_env())
        assert run.returncode == 0, run.stdout[-3000:]
