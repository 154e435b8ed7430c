# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet playbooks as AWX runs them: ansible-runner on the project of awx/project (its wrapper
playbooks), a private data directory with the job's inventory, extra variables and --limit, and
what AWX then reads from the artifacts: rc, status, the host summary of playbook_on_stats, the
set_stats data (artifact_data) that a workflow gets, and the job events it stores. Job slices are
merged the way AWX merges them: dict.update of each slice's artifact_data."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import simworker
import yaml

from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils import _fleet as fleet

PROJECT = simworker.REPO_ROOT / "awx" / "project"
RENDER = "render_nodes"
# What a host's task results may weigh in the job events of a converge at the default verbosity:
# every event that carries a result of the host (its runner_on_start events carry none).
RESULT_EVENTS = ("runner_on_ok", "runner_on_failed", "runner_on_skipped", "runner_on_unreachable")
MAX_RESULT_EVENTS_PER_HOST = 15_000


def example(name: str) -> dict:
    if name == "installer-default":
        return simworker.example_state()
    return yaml.safe_load((simworker.EXAMPLES / f"{name}.yml").read_text(encoding="utf-8"))


def ansible_runner(tmp_path: Path, ident: str, hosts: dict[str, str], playbook: str = "converge.yml", cmdline: str = "", **extravars) -> dict:
    """One job: ansible-runner run on a private data directory laid out as AWX lays it out."""
    private = tmp_path / ident
    shutil.copytree(PROJECT, private / "project")
    (private / "inventory").mkdir()
    (private / "env").mkdir()
    states = {host: simworker.save_state(tmp_path / f"{host}.yml", example(kind)) for host, kind in hosts.items()}
    simworker.write_inventory(private / "inventory", states, group=RENDER)
    (private / "env" / "extravars").write_text(yaml.safe_dump({"deadline_workers_hosts": RENDER, **extravars}), encoding="utf-8")
    if cmdline:
        (private / "env" / "cmdline").write_text(cmdline, encoding="utf-8")
    env = simworker.ansible_env()
    env.pop("ANSIBLE_STDOUT_CALLBACK")  # ansible-runner sets its own, as AWX does
    bin_dir = simworker.ansible_bin()
    env["PATH"] = f"{bin_dir}:{env.get('PATH', '')}"
    run = subprocess.run(
        [str(bin_dir / "ansible-runner"), "run", str(private), "-p", playbook, "--ident", ident],
        capture_output=True, text=True, env=env, check=False, timeout=600,
    )
    artifacts = private / "artifacts" / ident
    assert (artifacts / "rc").exists(), run.stdout[-3000:] + run.stderr[-3000:]
    paths = sorted((artifacts / "job_events").glob("*.json"), key=lambda p: int(p.name.split("-")[0]))
    events = [json.loads(path.read_text(encoding="utf-8")) for path in paths]
    sizes = {path: len(path.read_bytes()) for path in (artifacts / "job_events").glob("*.json")}
    stats = next(e["event_data"] for e in events if e["event"] == "playbook_on_stats")
    return {
        "rc": int((artifacts / "rc").read_text()),
        "status": (artifacts / "status").read_text().strip(),
        "stdout": (artifacts / "stdout").read_text(encoding="utf-8"),
        "events": events,
        "sizes": sizes,
        "stats": stats,
        "artifact_data": stats.get("artifact_data") or {},
        "states": states,
        "files": artifacts / "job_events",
    }


def readme_workflow_count(tmp_path: Path, artifacts: dict) -> int:
    readme = (simworker.REPO_ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("A workflow adds the counts up over\nevery such key, for example:\n\n```yaml\n", 1)[1].split("```", 1)[0]
    play = tmp_path / "workflow.yml"
    play.write_text(yaml.safe_dump([{"name": "A workflow node", "hosts": "localhost", "gather_facts": False, "tasks": yaml.safe_load(block)}]))
    (tmp_path / "artifacts.json").write_text(json.dumps(artifacts), encoding="utf-8")
    done = simworker.run_playbook(play, tmp_path / "none.yml", "-e", f"@{tmp_path / 'artifacts.json'}")
    assert done.returncode == 0, done.stdout + done.stderr
    return int(json.loads(done.stdout.split("=> ", 1)[1].split("\n}\n", 1)[0] + "\n}")["msg"])


def result_bytes(job: dict, host: str) -> int:
    total = 0
    for path, size in job["sizes"].items():
        event = json.loads(path.read_text(encoding="utf-8"))
        if event["event"] in RESULT_EVENTS and event.get("event_data", {}).get("host") == host:
            total += size
    return total


def test_a_job_with_a_limit_a_failing_and_a_refused_host_as_awx_reads_it(tmp_path):
    hosts = {"render-01": "installer-default", "render-02": "installer-default", "render-03": "env-override", "render-04": "old-agent"}
    job = ansible_runner(tmp_path, "limited", hosts, cmdline="--limit render-02,render-03,render-04,localhost", deadline_workers_max_fail_percentage=100)
    assert job["rc"] != 0 and job["status"] == "failed"
    stats = job["stats"]
    # AWX's host summaries: the refused hosts failed, the fixed one did not; the host outside the limit never ran
    assert set(stats["failures"]) == {"render-03", "render-04"}
    assert "render-02" in stats["ok"] and "render-02" not in stats["failures"]
    assert "render-01" not in stats["processed"] and "calls_total" not in simworker.load_state(job["states"]["render-01"])
    failed_events = {e["event_data"]["host"]: e["event_data"]["res"]["msg"] for e in job["events"] if e["event"] == "runner_on_failed"}
    assert "ENV_OVERRIDE: " in failed_events["render-03"] and "AGENT_VERSION_UNSUPPORTED: " in failed_events["render-04"]
    # what a workflow gets: one key of this run's own, with its counts and each host
    (key, published), = job["artifact_data"].items()
    assert key.startswith("deadline_converge_run_")
    assert published["counts"]["total"] == 3 and published["counts"]["fixed"] == 1 and published["counts"]["refused"] == 2
    assert published["hosts"]["render-03"] == {"status": "refused", "refused": ["ENV_OVERRIDE"]}
    assert "3 hosts: 1 fixed, 2 refused" in job["stdout"]


def test_two_slices_merge_as_awx_merges_them_and_each_host_stays_small_in_the_job_events(tmp_path):
    first = {f"render-0{n}": "installer-default" for n in range(1, 4)} | {"render-04": "env-override"}
    second = {f"render-0{n}": "installer-default" for n in range(5, 8)} | {"render-08": "old-agent"}
    # AWX gives each slice its own inventory of the hosts it runs (no --limit)
    jobs = [ansible_runner(tmp_path, "slice-1", first), ansible_runner(tmp_path, "slice-2", second)]
    assert [job["rc"] for job in jobs] != [0, 0] and all(job["status"] == "failed" for job in jobs)
    merged: dict = {}
    for job in jobs:
        merged.update(job["artifact_data"])  # awx: ancestor artifacts, dict.update per parent
    assert len(merged) == 2, merged.keys()  # neither slice overwrote the other
    runs = list(merged.values())
    assert sum(run["counts"]["total"] for run in runs) == 8
    assert sum(run["counts"]["fixed"] for run in runs) == 6 and sum(run["counts"]["refused"] for run in runs) == 2
    statuses = {host: item["status"] for run in runs for host, item in run["hosts"].items()}
    assert statuses == {f"render-0{n}": "fixed" for n in (1, 2, 3, 5, 6, 7)} | {"render-04": "refused", "render-08": "refused"}
    # the README's workflow task, given the merged artifacts as its extra variables, adds the counts up
    assert readme_workflow_count(tmp_path, merged) == 6
    # the reading travels between the role's tasks, but AWX stores no copy of it
    for job, fixed in zip(jobs, ("render-01", "render-05"), strict=True):
        assert result_bytes(job, fixed) <= MAX_RESULT_EVENTS_PER_HOST, result_bytes(job, fixed)
        text = "".join(path.read_text(encoding="utf-8") for path in job["sizes"])
        assert "W3dvcmtlcl0" not in text  # worker.toml's base64 (the reading) is in no event


def test_the_readme_names_every_count_a_run_publishes():
    readme = " ".join((simworker.REPO_ROOT / "README.md").read_text(encoding="utf-8").split())
    listed = re.search(r"its `counts` \(([^;]+); diagnose: ([^)]+)\)", readme)
    assert listed, "the README lists what converge and diagnose publish as counts"
    converge = fleet.converge_published(fleet.converge_summary({"w1": {"status": "fixed"}}))
    diagnose = fleet.diagnose_published(fleet.summarize({"w1": None}))
    assert {name.strip() for name in listed.group(1).split(",")} == set(next(iter(converge.values()))["counts"])
    assert {name.strip() for name in listed.group(2).split(",")} == set(next(iter(diagnose.values()))["counts"])


def test_what_the_shipped_files_point_at_is_there():
    readme = (simworker.REPO_ROOT / "README.md").read_text(encoding="utf-8")
    sections = {line[3:] for line in readme.splitlines() if line.startswith("## ")}
    named = re.findall(r'README\.md, "([^"]+)"', (simworker.REPO_ROOT / "meta" / "execution-environment.yml").read_text(encoding="utf-8"))
    assert named and set(named) <= sections, (named, sections)
    bindep = " ".join((simworker.REPO_ROOT / "bindep.txt").read_text(encoding="utf-8").replace("#", " ").split())
    paths = re.findall(r"(\S+/execution-environment\.yml) in the source repository", bindep)
    assert paths and all((simworker.REPO_ROOT / path).is_file() for path in paths), paths
    # awx/ is left out of the tarball: what ships says where it is
    assert "`awx/`, in the source repository (the built collection leaves it out)" in readme
    assert "awx" in yaml.safe_load((simworker.REPO_ROOT / "galaxy.yml").read_text(encoding="utf-8"))["build_ignore"]


# --- offline farms: the tarball without Galaxy, and the execution environment --------------------

EE_DIR = simworker.REPO_ROOT / "awx" / "execution-environment"
NO_GALAXY = "https://galaxy.invalid/"  # RFC 2606: never resolves, so any server call fails


def galaxy_version() -> str:
    return yaml.safe_load((simworker.REPO_ROOT / "galaxy.yml").read_text(encoding="utf-8"))["version"]


def offline_env() -> dict:
    env = simworker.ansible_env(ANSIBLE_GALAXY_SERVER=NO_GALAXY)
    env.pop("ANSIBLE_COLLECTIONS_PATH")  # the source tree must not stand in for what is installed
    return env


def build(source: Path, output: Path) -> Path:
    done = subprocess.run(
        [str(simworker.ansible_bin() / "ansible-galaxy"), "collection", "build", "--force", "--output-path", str(output), str(source)],
        capture_output=True, text=True, env=offline_env(), check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (tarball,) = output.glob("deadline_cloud-cmf-*.tar.gz")
    return tarball


def stand_in_windows(tmp_path: Path, version: str) -> Path:
    """A collection named ansible.windows at ``version``: what `ansible-galaxy collection download`
    gives, for an install that must take it from a file (no server is reachable here)."""
    source = tmp_path / "ansible_windows"
    source.mkdir()
    (source / "galaxy.yml").write_text(yaml.safe_dump({
        "namespace": "ansible", "name": "windows", "version": version, "readme": "README.md", "authors": ["stand-in"],
    }), encoding="utf-8")
    (source / "README.md").write_text("stand-in\n", encoding="utf-8")
    output = tmp_path / "stand-in"
    done = subprocess.run(
        [str(simworker.ansible_bin() / "ansible-galaxy"), "collection", "build", "--output-path", str(output), str(source)],
        capture_output=True, text=True, env=offline_env(), check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return output / f"ansible-windows-{version}.tar.gz"


def test_the_readme_installs_the_built_tarball_without_galaxy(tmp_path):
    readme = (simworker.REPO_ROOT / "README.md").read_text(encoding="utf-8")
    command = "ansible-galaxy collection install --offline deadline_cloud-cmf-*.tar.gz ansible-windows-*.tar.gz"
    assert command in readme
    cmf = build(simworker.REPO_ROOT, tmp_path / "cmf")
    windows = stand_in_windows(tmp_path, "3.3.0")
    installed = tmp_path / "collections"
    done = subprocess.run(
        [str(simworker.ansible_bin() / "ansible-galaxy"), "collection", "install", "--offline", "-p", str(installed), str(cmf), str(windows)],
        capture_output=True, text=True, env=offline_env(), check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (installed / "ansible_collections" / "deadline_cloud" / "cmf" / "MANIFEST.json").exists()


def test_the_execution_environment_build_context_holds_everything_it_names(tmp_path):
    definition = yaml.safe_load((EE_DIR / "execution-environment.yml").read_text(encoding="utf-8"))
    names = [c["name"] for c in definition["dependencies"]["galaxy"]["collections"]]
    assert all(c.get("type") == "file" for c in definition["dependencies"]["galaxy"]["collections"])  # no server asked
    cmf_name = f"collections/deadline_cloud-cmf-{galaxy_version()}.tar.gz"
    windows_name = next(n for n in names if n.startswith("collections/ansible-windows-"))
    assert cmf_name in names, f"execution-environment.yml names {names}, galaxy.yml's version is {galaxy_version()}"
    windows_version = windows_name.removeprefix("collections/ansible-windows-").removesuffix(".tar.gz")
    wanted = yaml.safe_load((simworker.REPO_ROOT / "galaxy.yml").read_text(encoding="utf-8"))["dependencies"]["ansible.windows"]
    from ansible.utils.version import SemanticVersion

    low, high = (part.strip().lstrip("<>=") for part in wanted.split(","))
    assert SemanticVersion(low) <= SemanticVersion(windows_version) < SemanticVersion(high), (windows_version, wanted)
    assert "--offline" in definition["build_arg_defaults"]["ANSIBLE_GALAXY_CLI_COLLECTION_OPTS"]

    # what the README says to put beside it, then ansible-builder's own build context
    ee = tmp_path / "ee"
    shutil.copytree(EE_DIR, ee)
    build(simworker.REPO_ROOT, ee / "collections")
    shutil.copy(stand_in_windows(tmp_path, windows_version), ee / "collections")
    context = tmp_path / "context"
    builder = Path(sys.executable).parent / "ansible-builder"  # the test venv's: it needs no ansible-core of its own
    created = subprocess.run(
        [str(builder), "create", "--file", "execution-environment.yml", "--context", str(context)],
        cwd=ee, capture_output=True, text=True, env=offline_env(), check=False,
    )
    assert created.returncode == 0, created.stdout + created.stderr
    # the base image has no Python: the base stage installs its package before anything runs pip
    (containerfile,) = [path for path in context.iterdir() if path.name in ("Containerfile", "Dockerfile")]
    steps = containerfile.read_text(encoding="utf-8").split("# Galaxy build stage", 1)[0].splitlines()
    assert 'ARG PYPKG="python3"' in steps and 'ARG PYCMD="/usr/bin/python3"' in steps
    installs = next(n for n, step in enumerate(steps) if step.startswith("RUN $PKGMGR install $PYPKG"))
    assert installs < next(n for n, step in enumerate(steps) if "pip_install $PYCMD" in step), steps
    build_dir = context / "_build"  # the galaxy stage runs in /build, a copy of it
    requirements = yaml.safe_load((build_dir / "requirements.yml").read_text(encoding="utf-8"))
    for entry in requirements["collections"]:
        assert (build_dir / entry["name"]).is_file(), f"the build context lacks {entry['name']}"
    # the galaxy stage's own command, run on the build context: every collection resolves from it, offline
    collections = tmp_path / "image-collections"
    installed = subprocess.run(
        [str(simworker.ansible_bin() / "ansible-galaxy"), "collection", "install", "--offline", "-r", "requirements.yml",
         "--collections-path", str(collections)],
        cwd=build_dir, capture_output=True, text=True, env=offline_env(), check=False,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert (collections / "ansible_collections" / "deadline_cloud" / "cmf" / "roles" / "deadline_worker_agent_user").is_dir()
