# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The CI workflow (.github/workflows/ci.yml) read as GitHub reads it: sanity and units on every
supported ansible-core that meta/runtime.yml admits and devel (allowed to fail), each on the Python
the local test environments use, weekly, and the whole test run. It never runs here."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import simworker
import yaml
from test_cores import NEWEST, OLDEST, REQUIRES_ANSIBLE, _minor

REPO = simworker.REPO_ROOT
WORKFLOW = yaml.safe_load((REPO / ".github" / "workflows" / "ci.yml").read_text(encoding="utf-8"))
TRIGGERS = WORKFLOW.get("on", WORKFLOW.get(True))  # YAML 1.1 reads a bare `on` as true
SANITY = WORKFLOW["jobs"]["sanity-and-units"]
MATRIX = SANITY["strategy"]["matrix"]["include"]
SCRIPT = (REPO / "scripts" / "ensure-venv-core.sh").read_text(encoding="utf-8")


def first_python(core: str) -> str:
    """The Python scripts/ensure-venv-core.sh tries first for a core: the oldest its controller supports."""
    for cores, pythons in re.findall(r"^\s+([\d. |]+)\) echo \"([\d. ]+)\"", SCRIPT, re.MULTILINE):
        if core in [c.strip() for c in cores.split("|")]:
            return pythons.split()[0]
    raise AssertionError(f"scripts/ensure-venv-core.sh has no Pythons for {core}")


def test_the_matrix_is_every_core_from_requires_ansible_to_the_newest_and_devel():
    lowest = re.fullmatch(r">=(\d+\.\d+)\.0", REQUIRES_ANSIBLE).group(1)  # and no upper bound
    cores = [f"2.{minor}" for minor in range(_minor(lowest)[1], _minor(NEWEST)[1] + 1)]
    assert lowest == OLDEST
    assert [entry["ansible"] for entry in MATRIX] == [f"stable-{core}" for core in cores] + ["devel"]


def test_each_core_runs_on_the_python_the_local_environments_use():
    for entry in MATRIX:
        core = NEWEST if entry["ansible"] == "devel" else entry["ansible"].removeprefix("stable-")
        assert entry["python"] == first_python(core), entry


def test_only_devel_may_fail_and_none_stops_the_others():
    assert SANITY["continue-on-error"] == "${{ matrix.ansible == 'devel' }}"
    assert SANITY["strategy"]["fail-fast"] is False


def test_it_runs_weekly_and_on_every_change():
    (schedule,) = TRIGGERS["schedule"]
    minute, hour, day_of_month, month, day_of_week = schedule["cron"].split()
    assert (day_of_month, month) == ("*", "*") and re.fullmatch(r"[0-6]", day_of_week), schedule
    assert re.fullmatch(r"\d+", minute) and re.fullmatch(r"\d+", hour), schedule
    assert {"push", "pull_request", "workflow_dispatch"} <= set(TRIGGERS)
    assert WORKFLOW["permissions"] == {"contents": "read"}


def test_sanity_and_units_run_on_the_collection_where_ansible_test_wants_it():
    steps = SANITY["steps"]
    (checkout,) = [step for step in steps if str(step.get("uses", "")).startswith("actions/checkout@")]
    assert checkout["with"]["path"] == "ansible_collections/deadline_cloud/cmf"
    runs = {step.get("name"): step for step in steps if "run" in step}
    assert "/archive/${{ matrix.ansible }}.tar.gz" in runs["Install ansible-core ${{ matrix.ansible }}"]["run"]
    for name, command in (("Sanity", "ansible-test sanity --requirements"), ("Units", "ansible-test units --requirements")):
        assert runs[name]["run"].startswith(command) and '--python "${{ matrix.python }}"' in runs[name]["run"], runs[name]
        assert runs[name]["working-directory"] == "ansible_collections/deadline_cloud/cmf"


def test_the_whole_test_run_is_the_command_the_readme_gives():
    job = WORKFLOW["jobs"]["test-run"]
    assert [step["run"] for step in job["steps"] if "run" in step] == ["bash .ci/run"]
    assert "exec bash tests/run.sh" in (REPO / ".ci" / "run").read_text(encoding="utf-8")
    (python,) = [step for step in job["steps"] if str(step.get("uses", "")).startswith("actions/setup-python@")]
    versions = python["with"]["python-version"].split()
    assert {first_python(OLDEST), first_python(NEWEST)} <= set(versions) and versions[-1] == first_python("2.19")
    assert job["timeout-minutes"] <= 90


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not on PATH (requirements-test.txt brings it into .venv)")
def test_every_run_script_passes_shellcheck(tmp_path):
    scripts = [step["run"] for job in WORKFLOW["jobs"].values() for step in job["steps"] if "run" in step]
    assert len(scripts) >= 4
    for n, script in enumerate(scripts):
        # GitHub fills ${{ ... }} in before bash sees the script: a plain word stands in for it
        path = tmp_path / f"step-{n}.sh"
        path.write_text(re.sub(r"\$\{\{[^}]*\}\}", "value", script), encoding="utf-8")
        result = subprocess.run(["shellcheck", "--shell=bash", str(path)], capture_output=True, text=True, check=False)
        assert result.returncode == 0, script + result.stdout
