# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Test helpers: the collection on a collections path, simulated workers, ansible-playbook runs."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED = REPO_ROOT.parent / "shared"
EXAMPLES = REPO_ROOT / "playbooks" / "simulated"  # the collection's own example states
WORKER_TOML = r"C:\ProgramData\Amazon\Deadline\Config\worker.toml"


def collections_root() -> Path:
    """A folder holding ansible_collections/deadline_cloud/cmf -> this source tree (outside it)."""
    tag = hashlib.sha256(str(REPO_ROOT).encode()).hexdigest()[:12]
    root = Path(tempfile.gettempdir()) / f"deadline-cloud-cmf-{os.getuid()}-{tag}"
    link = root / "ansible_collections" / "deadline_cloud" / "cmf"
    if not link.is_symlink():
        link.parent.mkdir(parents=True, exist_ok=True)
        tmp = link.with_name(f".cmf-{os.getpid()}")
        tmp.symlink_to(REPO_ROOT, target_is_directory=True)
        os.replace(tmp, link)
    return root


def load_state(path: Path) -> dict:
    return yaml.safe_load(Path(path).read_text(encoding="utf-8"))


def save_state(path: Path, state: dict) -> Path:
    Path(path).write_text(yaml.safe_dump(state, sort_keys=False, width=4096), encoding="utf-8")
    return Path(path)


def example_state(name: str = "installer-default") -> dict:
    """An example state: the shared contract's when it is beside the clone, else the collection's own."""
    shared = SHARED / "simulated-worker" / "examples" / f"{name}.yml"
    source = shared if shared.exists() else EXAMPLES / f"{name}.yml"
    return copy.deepcopy(yaml.safe_load(source.read_text(encoding="utf-8")))


# A domain-joined worker (agent 0.30+ takes a domain account): the domain CORP and its accounts.
LOCAL_AGENT = "S-1-5-21-3623811015-3361044348-30300820-1001"
CORP = "S-1-5-21-1004336348-1177238915-682003330"
DOMAIN_ADMINS = f"{CORP}-512"
DOMAIN_USERS = f"{CORP}-513"
RENDER_SVC = f"{CORP}-1105"  # CORP\render-svc, the agent's account
RENDER_ADMINS = f"{CORP}-1120"  # CORP\Render Admins, a studio's administrators group
RENDER_SERVICES = f"{CORP}-1130"  # CORP\Render Services, the group a GPO gives the service rights


def domain_state(*, admin_through: str | None = None, policy: dict | None = None, refreshed: bool = True) -> dict:
    """The installer's worker, joined to CORP, its agent running as CORP\\render-svc: in Administrators
    directly (as the installer adds it), also through the domain group ``admin_through`` nested in
    Administrators when given; Domain Admins and Domain Users in the local groups as a join leaves
    them; ``policy`` is the state's group_policy.rights (right -> SIDs), and the LSA's holders of those
    rights are the policy's, as after a refresh, unless ``refreshed`` is false (the installer's grants
    made since the last refresh are still there)."""
    state = example_state()
    accounts = state["accounts"]
    accounts[RENDER_SVC] = {"name": "render-svc", "domain": "CORP", "type": "user"}
    accounts[DOMAIN_ADMINS] = {"name": "Domain Admins", "domain": "CORP", "type": "group", "members": []}
    accounts[DOMAIN_USERS] = {"name": "Domain Users", "domain": "CORP", "type": "group", "members": [RENDER_SVC]}
    accounts[RENDER_ADMINS] = {"name": "Render Admins", "domain": "CORP", "type": "group", "members": []}
    accounts[RENDER_SERVICES] = {"name": "Render Services", "domain": "CORP", "type": "group", "members": [RENDER_SVC]}
    for group in ("S-1-5-32-544", "S-1-5-21-3623811015-3361044348-30300820-1002"):
        accounts[group]["members"] = [RENDER_SVC if m == LOCAL_AGENT else m for m in accounts[group]["members"]]
    accounts["S-1-5-32-544"]["members"].append(DOMAIN_ADMINS)
    accounts["S-1-5-32-545"]["members"] = [m for m in accounts["S-1-5-32-545"]["members"] if m != LOCAL_AGENT] + [DOMAIN_USERS]
    if admin_through:
        accounts[admin_through]["members"].append(RENDER_SVC)
        if admin_through not in accounts["S-1-5-32-544"]["members"]:
            accounts["S-1-5-32-544"]["members"].append(admin_through)
    for right, holders in state["rights"].items():
        state["rights"][right] = [RENDER_SVC if h == LOCAL_AGENT else h for h in holders]
    state["services"]["DeadlineWorker"]["account"] = "CORP\\render-svc"
    if policy is not None:
        state["group_policy"] = {"rights": {right: list(holders) for right, holders in policy.items()}}
        if refreshed:
            state["rights"].update({right: list(holders) for right, holders in policy.items()})
    return state


def file_bytes(state: dict, path: str = WORKER_TOML) -> bytes | None:
    wanted = path.casefold()
    for name, entry in (state.get("files") or {}).items():
        if name.casefold() == wanted:
            if "base64" in entry:
                return base64.b64decode(entry["base64"])
            return entry["text"].encode("utf-8")
    return None


def set_file_bytes(state: dict, data: bytes, path: str = WORKER_TOML) -> dict:
    files = state.setdefault("files", {})
    for name in list(files):
        if name.casefold() == path.casefold():
            del files[name]
    files[path] = {"base64": base64.b64encode(data).decode("ascii")}
    return state


def write_inventory(
    tmp_path: Path, states: dict[str, Path], extra_vars: dict | None = None, group: str = "deadline_workers", others: dict | None = None
) -> Path:
    """An inventory of simulated workers in ``group``; ``others``: group name to host names of hosts
    that are no workers (local connection), as a farm's inventory has."""
    hosts = {
        name: {"ansible_connection": "deadline_cloud.cmf.simulated_worker", "simulated_worker_state": str(path)}
        for name, path in states.items()
    }
    children = {group: {"hosts": hosts}}
    for other, names in (others or {}).items():
        children[other] = {"hosts": {name: {"ansible_connection": "local"} for name in names}}
    inventory = {"all": {"children": children, "vars": extra_vars or {}}}
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(inventory, sort_keys=False), encoding="utf-8")
    return path


def ansible_home() -> Path:
    """ANSIBLE_HOME of the tests' Ansible runs (its tmp, galaxy cache, installed collections): a
    temporary folder beside collections_root(), so that no run writes into the user's ~/.ansible."""
    return collections_root() / "ansible-home"


def ansible_env(**extra: str) -> dict:
    # no AWS credentials, and no instance metadata lookups: the Deadline Cloud API is never asked here
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_EC2_METADATA_DISABLED="true",
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_CONFIG_FILE=os.devnull,
        ANSIBLE_HOME=str(ansible_home()),
        ANSIBLE_COLLECTIONS_PATH=str(collections_root()),
        ANSIBLE_HOST_KEY_CHECKING="False",
        ANSIBLE_RETRY_FILES_ENABLED="False",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default",
        ANSIBLE_LOCALHOST_WARNING="False",
        ANSIBLE_INVENTORY_UNPARSED_WARNING="False",
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
    )
    env.update(extra)
    return env


def ansible_bin() -> Path:
    """The folder of the ansible-playbook the tests run: this venv's, or CMF_ANSIBLE_BIN's (the tests
    of the newest ansible-core rerun the playbook tests with another venv's)."""
    chosen = os.environ.get("CMF_ANSIBLE_BIN")
    return Path(chosen) if chosen else Path(sys.executable).parent


def run_playbook(playbook: Path, inventory: Path, *args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    command = [str(ansible_bin() / "ansible-playbook"), "-i", str(inventory), str(playbook), *args]
    return subprocess.run(command, capture_output=True, text=True, env=env or ansible_env(), check=False, timeout=600, cwd=cwd)


def recap(run: subprocess.CompletedProcess) -> dict[str, dict[str, int]]:
    """Host to its PLAY RECAP counters (ok, changed, unreachable, failed, skipped, rescued, ignored)."""
    found = {}
    for line in run.stdout.rsplit("PLAY RECAP", 1)[-1].splitlines():
        if " : " in line and "ok=" in line:
            host, counters = line.split(" : ", 1)
            found[host.strip()] = {k: int(v) for k, v in (pair.split("=") for pair in counters.split())}
    return found


def write_playbook(tmp_path: Path, tasks: list, name: str = "play.yml", **play: object) -> Path:
    document = [{"name": "Test play", "hosts": "deadline_workers", "gather_facts": False, **play, "tasks": tasks}]
    path = tmp_path / name
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def dump_task(tmp_path: Path, var: str) -> dict:
    """A task that writes a registered variable of each host to results-<host>.json."""
    return {
        "name": f"Save {var}",
        "ansible.builtin.copy": {
            "content": "{{ " + var + " | to_nice_json }}",
            "dest": str(tmp_path) + "/" + var + "-{{ inventory_hostname }}.json",
            "mode": "0644",
        },
        "delegate_to": "localhost",
        "check_mode": False,
        "tags": ["always"],
        "vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable},
    }


def read_dump(tmp_path: Path, var: str, host: str) -> dict:
    return json.loads((tmp_path / f"{var}-{host}.json").read_text(encoding="utf-8"))


def run_tasks(tmp_path: Path, states: dict[str, dict], tasks: list[dict], *flags: str):
    """Run ``tasks`` on simulated workers made from ``states``: each task's result per host (the
    task registers it and a failure does not stop the play), the states afterwards, and the run."""
    paths = {host: save_state(tmp_path / f"{host}.yml", state) for host, state in states.items()}
    inventory = write_inventory(tmp_path, paths)
    play = []
    for n, task in enumerate(tasks):
        play.append({"name": f"task {n}", **task, "register": f"out{n}", "ignore_errors": True})
        play.append({**dump_task(tmp_path, f"out{n}"), "diff": False})
    completed = run_playbook(write_playbook(tmp_path, play), inventory, *flags)
    results = {}
    for host in states:
        dumped = [tmp_path / f"out{n}-{host}.json" for n in range(len(tasks))]
        assert all(p.exists() for p in dumped), completed.stdout + completed.stderr
        results[host] = [read_dump(tmp_path, f"out{n}", host) for n in range(len(tasks))]
    return results, {host: load_state(path) for host, path in paths.items()}, completed


def run_module(tmp_path: Path, state: dict, module: str, args: dict, *flags: str):
    """One task of ``module`` on one simulated worker: its result, the state afterwards, and the run."""
    results, states, completed = run_tasks(tmp_path, {"worker-01": state}, [{module: args}], *flags)
    return results["worker-01"][0], states["worker-01"], completed


def tracked_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=REPO_ROOT, capture_output=True, check=True
    ).stdout.decode()
    return [name for name in listed.split("\0") if name and (REPO_ROOT / name).is_file()]


def copy_collection(target: Path) -> Path:
    """The source tree laid out as ansible_collections/deadline_cloud/cmf, as ansible-test wants it."""
    root = target / "ansible_collections" / "deadline_cloud" / "cmf"
    for name in tracked_files():
        destination = root / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / name, destination)
    return root
