# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""meta/runtime.yml's action groups: module_defaults: group/deadline_cloud.cmf.<group> reaches the modules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import simworker
import yaml

REPO = simworker.REPO_ROOT
MODULES = sorted(p.stem for p in (REPO / "plugins" / "modules").glob("*.py") if p.stem != "__init__")
# A copy of worker.toml beside the agent's own.
COPY = r"C:\ProgramData\Amazon\Deadline\Config\worker-copy.toml"
AGENT_SID = "S-1-5-21-3623811015-3361044348-30300820-1001"  # .\deadline-worker in the example state


def _worker_with_a_copy() -> dict:
    state = simworker.example_state()
    return simworker.set_file_bytes(state, simworker.file_bytes(state), COPY)


def _groups() -> dict[str, list[str]]:
    return yaml.safe_load((REPO / "meta" / "runtime.yml").read_text(encoding="utf-8"))["action_groups"]


def test_the_groups_hold_every_module_and_only_modules_that_exist():
    groups = _groups()
    assert sorted(groups["all"]) == MODULES
    assert sorted(groups["worker"] + groups["accounts"]) == MODULES


@pytest.mark.parametrize("module", MODULES)
def test_each_module_documents_the_groups_it_is_in(module):
    tree = ast.parse((REPO / "plugins" / "modules" / f"{module}.py").read_text(encoding="utf-8"))
    (documentation,) = (
        node.value.value for node in tree.body if isinstance(node, ast.Assign) and node.targets[0].id == "DOCUMENTATION"
    )
    documented = yaml.safe_load(documentation)["attributes"]["action_group"]["membership"]
    assert sorted(documented) == sorted(f"deadline_cloud.cmf.{name}" for name, members in _groups().items() if module in members)


def test_a_worker_group_default_reaches_worker_toml_and_worker_agent_info(tmp_path: Path):
    defaults = {"group/deadline_cloud.cmf.worker": {"config_path": COPY}}
    opt_in = {"table": "os", "key": "run_jobs_as_agent_user", "value": True}
    results, states, run = simworker.run_tasks(
        tmp_path,
        {"worker-01": _worker_with_a_copy()},
        [
            {"deadline_cloud.cmf.worker_toml": opt_in, "module_defaults": defaults},
            {"deadline_cloud.cmf.worker_agent_info": {}, "module_defaults": defaults},
            {"deadline_cloud.cmf.worker_agent_info": {}},
        ],
    )
    edit, with_default, without = results["worker-01"]
    assert not edit.get("failed") and not with_default.get("failed"), run.stdout + run.stderr
    assert (edit["changed"], edit["path"]) == (True, COPY)
    state = states["worker-01"]
    assert b"\nrun_jobs_as_agent_user = true\n" in simworker.file_bytes(state, COPY)
    assert b"\n# run_jobs_as_agent_user = true\n" in simworker.file_bytes(state)  # the agent's own file is untouched
    assert with_default["config"]["path"] == COPY
    assert with_default["settings"]["run_jobs_as_agent_user"] == {"value": True, "source": "file", "variable": None}
    # the same task without the group default reads the agent's own file, which does not opt in
    assert without["config"]["path"] == simworker.WORKER_TOML
    assert without["settings"]["run_jobs_as_agent_user"]["source"] == "default"
    assert without["settings"]["run_jobs_as_agent_user"]["value"] is False


def test_an_accounts_group_default_and_the_all_group_reach_the_account_modules(tmp_path: Path):
    results, states, run = simworker.run_tasks(
        tmp_path,
        {"worker-01": simworker.example_state()},
        [
            {
                "deadline_cloud.cmf.win_user_rights": {"rights": ["SeServiceLogonRight"]},
                "module_defaults": {"group/deadline_cloud.cmf.accounts": {"account": ".\\deadline-worker"}},
            },
            {
                "deadline_cloud.cmf.win_group_member": {"groups": ["deadline-job-users"]},
                "module_defaults": {"group/deadline_cloud.cmf.all": {"account": AGENT_SID}},
            },
        ],
        "--check",
    )
    rights, groups = results["worker-01"]
    assert not rights.get("failed") and not groups.get("failed"), run.stdout + run.stderr
    assert (rights["sid"], rights["account"]) == (AGENT_SID, "WORKER-01\\deadline-worker")
    assert "SeServiceLogonRight" in rights["rights"]
    assert (groups["sid"], groups["changed"]) == (AGENT_SID, False)
    assert states["worker-01"]["calls"] == {"read_account": 2}
