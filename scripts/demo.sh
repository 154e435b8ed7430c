#!/usr/bin/env bash
# The main job on a small simulated fleet: diagnose, converge, diagnose again.
#   bash scripts/demo.sh
# Sets up its own virtual environment .venv-demo with only what the playbooks need
# (requirements-demo.txt: ansible-core and the collection's requirements), copies the collection's
# example worker states into .demo/ (emptied at each run; nothing tracked changes) and runs the
# collection's playbooks on them.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

venv="${DEADLINE_CMF_DEMO_VENV:-.venv-demo}"
if [ ! -x "$venv/bin/python" ]; then
    "${PYTHON:-python3}" -m venv "$venv"
fi
stamp="$venv/.requirements.sha256"
wanted="$(cat requirements.txt requirements-demo.txt requirements-simulated-worker.txt | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
    echo "== Installing ansible-core and the collection's requirements into $venv (requirements-demo.txt, about 70 MB)"
    "$venv/bin/python" -m pip install --disable-pip-version-check --progress-bar on -r requirements-demo.txt
    echo "$wanted" > "$stamp"
fi
PATH="$PWD/$venv/bin:$PATH"
export PATH

work="$PWD/.demo"
rm -rf "$work"
mkdir -p "$work/collections/ansible_collections/deadline_cloud"
ln -s "$PWD" "$work/collections/ansible_collections/deadline_cloud/cmf"
export ANSIBLE_COLLECTIONS_PATH="$work/collections" ANSIBLE_HOME="$work/ansible-home"
export ANSIBLE_HOST_KEY_CHECKING=False ANSIBLE_RETRY_FILES_ENABLED=False

# One worker as the installer leaves it, and one of each kind a real fleet holds.
declare -A fleet=(
    [worker-01]=installer-default
    [worker-02]=localized-bom
    [worker-03]=legacy-keys
    [worker-04]=env-override
    [worker-05]=old-agent
)
{
    echo "all:"
    echo "  children:"
    echo "    deadline_workers:"
    echo "      hosts:"
    for host in $(printf '%s\n' "${!fleet[@]}" | sort); do
        cp "playbooks/simulated/${fleet[$host]}.yml" "$work/$host.yml"
        echo "        $host: {ansible_connection: deadline_cloud.cmf.simulated_worker, simulated_worker_state: '$work/$host.yml'}"
    done
} > "$work/inventory.yml"

echo "== Simulated fleet in $work (state files: $work/worker-*.yml)"
echo
echo "== 1. Diagnose: what happens to a WORKER_AGENT_USER job on each worker, and why"
ansible-playbook -i "$work/inventory.yml" playbooks/diagnose.yml -e deadline_diagnose_report="$work/before.json"
echo
echo "== 2. Converge: every worker the role can fix; the others are refused before any change"
set +e
ansible-playbook -i "$work/inventory.yml" playbooks/converge.yml
converge_rc=$?
set -e
echo "(converge exit code $converge_rc: non-zero because some workers were refused, as they should be)"
echo
echo "== 3. Diagnose again"
ansible-playbook -i "$work/inventory.yml" playbooks/diagnose.yml -e deadline_diagnose_report="$work/after.json"

# The demo passes only if exactly the fixable workers end ready.
python - "$work/after.json" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
ready = sorted(h["host"] for h in report["hosts"] if h["ready"])
expected = ["worker-01", "worker-02", "worker-03"]
print(f"ready after converge: {', '.join(ready) or 'none'} (expected {', '.join(expected)})")
sys.exit(0 if ready == expected else 1)
PY
