# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A hand-written state file keeps its shape through the simulator's calls: comments, key order,
block scalars; files the simulator writes are block scalars when YAML keeps their text exactly."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import yaml

from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host.simulated.state import StateFile, run_operation

TOML = r"C:\ProgramData\Amazon\Deadline\Config\worker.toml"
WORKER_JSON = r"C:\ProgramData\Amazon\Deadline\Cache\worker.json"

HAND_WRITTEN = r"""# worker-07: the render node by the window, as its installer left it
hostname: WORKER-07
connection_account: S-1-5-21-3623811015-3361044348-30300820-1000   # ansible
accounts:
  S-1-5-21-3623811015-3361044348-30300820-1000: {name: ansible, type: user}
  S-1-5-21-3623811015-3361044348-30300820-1001: {name: deadline-worker, type: user}
  S-1-5-32-544:
    name: Administrators
    type: group
    # the agent's account is still an administrator here
    members: [S-1-5-21-3623811015-3361044348-30300820-1000, S-1-5-21-3623811015-3361044348-30300820-1001]
rights:
  SeServiceLogonRight: [S-1-5-21-3623811015-3361044348-30300820-1001]
environment: {}
files:
  'C:\ProgramData\Amazon\Deadline\Config\worker.toml':
    text: |
      [worker]
      # farm_id = "farm-0123456789abcdef0123456789abcdef"

      [os]
      shutdown_on_stop = false
  'C:\ProgramData\Amazon\Deadline\Cache\worker.json':
    text: |  # left as the agent wrote it
      {"worker_id": "worker-0123456789abcdef0123456789abcdef"}
      {"second": "line"}
services:
  DeadlineWorker: {state: running, start_mode: auto, account: .\deadline-worker, restarts: 0}
agent:
  version: 0.33.2   # deadline-cloud-worker-agent
"""

NEW_TOML = '[worker]\n# farm_id = "farm-0123456789abcdef0123456789abcdef"\n\n[os]\nshutdown_on_stop = false\nrun_jobs_as_agent_user = true\n'


def write(state: Path, path: str, data: bytes) -> dict:
    current = run_operation(str(state), "read_file", {"path": path})
    parameters = {"path": path, "content": base64.b64encode(data).decode(), "expected_sha256": current["sha256"], "backup": False}
    return run_operation(str(state), "write_file", parameters)


def test_a_call_that_changes_the_state_keeps_comments_order_and_untouched_block_scalars(tmp_path):
    state = tmp_path / "worker-07.yml"
    state.write_text(HAND_WRITTEN, encoding="utf-8")
    write(state, TOML, NEW_TOML.encode())
    after = state.read_text(encoding="utf-8")

    for line in HAND_WRITTEN.splitlines():
        if "#" in line and "farm_id" not in line:  # every YAML comment, where it was
            assert line in after.splitlines(), line
    untouched = HAND_WRITTEN[HAND_WRITTEN.index("  'C:\\ProgramData\\Amazon\\Deadline\\Cache") : HAND_WRITTEN.index("services:")]
    assert untouched in after
    keys = [line.split(":")[0] for line in after.splitlines() if line and not line.startswith((" ", "#"))]
    assert keys[:8] == ["hostname", "connection_account", "accounts", "rights", "environment", "files", "services", "agent"]
    # the file the simulator wrote is a block scalar too, and reads back byte for byte
    assert "    text: |\n      [worker]\n" in after
    loaded = yaml.safe_load(after)
    assert loaded["files"][TOML]["text"] == NEW_TOML
    assert loaded["calls"] == {"read_file": 1, "write_file": 1}


@pytest.mark.parametrize(
    "text",
    [
        "[worker]\r\n[os]\r\n",  # CRLF: only a quoted string keeps the CR
        "[worker]  \n[os]\n",  # trailing blanks
        "  indented first line\nsecond\n",
        "no newline at the end\nsecond",
        "ends with blank lines\n\n\n",
        "a\ttab\nsecond\n",
        "one line\n",
    ],
)
def test_written_text_reads_back_exactly_whatever_style_it_is_stored_in(tmp_path, text):
    state = tmp_path / "worker-07.yml"
    state.write_text(HAND_WRITTEN, encoding="utf-8")
    write(state, TOML, text.encode())
    assert yaml.safe_load(state.read_text(encoding="utf-8"))["files"][TOML]["text"] == text
    assert StateFile(str(state)).load()["files"][TOML]["text"] == text


def test_a_json_state_stays_json(tmp_path):
    state = tmp_path / "worker-07.json"
    state.write_text(json.dumps(yaml.safe_load(HAND_WRITTEN), indent=2) + "\n", encoding="utf-8")
    write(state, WORKER_JSON, b'{"worker_id": "worker-0123456789abcdef0123456789abcdef"}\n')
    data = json.loads(state.read_text(encoding="utf-8"))
    assert data["calls_total"] == 2


def test_results_leaving_the_simulator_are_plain_types(tmp_path):
    state = tmp_path / "worker-07.yml"
    # quoted scalars load as ruamel's string subclasses, which must not leak into results
    quoted = HAND_WRITTEN.replace("version: 0.33.2", "version: '0.33.2'").replace("account: .\\deadline-worker", 'account: ".\\\\deadline-worker"')
    assert quoted != HAND_WRITTEN
    state.write_text(quoted, encoding="utf-8")
    result = run_operation(str(state), "read_agent_info", {"service": "DeadlineWorker", "config_path": TOML, "account": ""})

    plain_types = {dict, list, str, int, float, bool, type(None)}

    def plain(value):
        if type(value) not in plain_types:
            return False
        if isinstance(value, dict):
            return all(plain(k) and plain(v) for k, v in value.items())
        if isinstance(value, list):
            return all(plain(v) for v in value)
        return True

    assert plain(result), result
