# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import base64
import hashlib

import pytest
import simworker

from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host import HostOperationError
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host.simulated.state import (
    ConnectionDropped,
    StateFileError,
    run_operation,
)

TOML = r"C:\ProgramData\Amazon\Deadline\Config\worker.toml"


@pytest.fixture
def worker(tmp_path):
    return simworker.save_state(tmp_path / "worker-01.yml", simworker.example_state())


def test_read_file_matches_paths_as_windows_does_and_counts_the_call(worker):
    result = run_operation(str(worker), "read_file", {"path": TOML.upper().replace("\\", "/")})
    data = base64.b64decode(result["content"])
    assert result["exists"] is True
    assert data.startswith(b"[worker]\n")
    assert result["sha256"] == hashlib.sha256(data).hexdigest()
    state = simworker.load_state(worker)
    assert state["calls"] == {"read_file": 1}
    assert state["calls_total"] == 1


def test_write_file_replaces_only_when_the_hash_is_unchanged(worker):
    read = run_operation(str(worker), "read_file", {"path": TOML})
    new = b"[worker]\r\n"
    with pytest.raises(HostOperationError) as refused:
        run_operation(
            str(worker), "write_file", {"path": TOML, "content": base64.b64encode(new).decode(), "expected_sha256": "0" * 64, "backup": False}
        )
    assert refused.value.code == "FILE_CHANGED"
    assert simworker.file_bytes(simworker.load_state(worker)) == base64.b64decode(read["content"])

    written = run_operation(
        str(worker), "write_file", {"path": TOML, "content": base64.b64encode(new).decode(), "expected_sha256": read["sha256"], "backup": True}
    )
    state = simworker.load_state(worker)
    assert simworker.file_bytes(state) == new  # CRLF kept byte for byte
    assert simworker.file_bytes(state, written["backup_file"]) == base64.b64decode(read["content"])
    assert written["backup_file"].startswith(TOML + ".") and written["backup_file"].endswith(".bak")
    assert state["calls"] == {"read_file": 1, "write_file": 2}


def test_fail_next_drops_the_call_once_and_changes_nothing(worker):
    state = simworker.load_state(worker)
    state["faults"] = {"fail_next": ["write_file", "read_file"]}
    simworker.save_state(worker, state)
    before = simworker.file_bytes(state)
    with pytest.raises(ConnectionDropped, match=r"WORKER-01.*read_file"):
        run_operation(str(worker), "read_file", {"path": TOML})
    read = run_operation(str(worker), "read_file", {"path": TOML})
    assert read["exists"]
    args = {"path": TOML, "content": "", "expected_sha256": read["sha256"], "backup": False}
    with pytest.raises(ConnectionDropped):
        run_operation(str(worker), "write_file", args)
    after = simworker.load_state(worker)
    assert simworker.file_bytes(after) == before
    assert after["faults"]["fail_next"] == []
    assert after["calls_total"] == 3


def test_another_writer_between_read_and_write(worker):
    state = simworker.load_state(worker)
    state["faults"] = {"modify_between_read_and_write": TOML.lower()}
    simworker.save_state(worker, state)
    read = run_operation(str(worker), "read_file", {"path": TOML})
    args = {"path": TOML, "content": "", "expected_sha256": read["sha256"], "backup": False}
    with pytest.raises(HostOperationError, match="changed since it was read"):
        run_operation(str(worker), "write_file", args)
    assert simworker.file_bytes(simworker.load_state(worker)).endswith(b"# edited by another writer\n")


@pytest.mark.parametrize("content", [None, "- just\n- a list\n", "key: [unclosed\n"])
def test_missing_or_malformed_state_file_names_the_file(tmp_path, content):
    path = tmp_path / "broken.yml"
    if content is not None:
        path.write_text(content)
    with pytest.raises(StateFileError, match=str(path)):
        run_operation(str(path), "read_file", {"path": TOML})


def test_folders_are_modelled_only_where_the_state_lists_them(tmp_path):
    state = simworker.example_state()
    path = simworker.save_state(tmp_path / "unlisted.yml", state)
    # Without `folders`, every folder exists (the states written before folders were modelled).
    created = run_operation(str(path), "write_file", {"path": r"C:\Elsewhere\new.txt", "content": "eA==", "expected_sha256": "", "backup": False})
    assert created["warnings"] == []
    state["folders"] = [r"C:\Data\Deep"]
    path = simworker.save_state(tmp_path / "listed.yml", state)
    for folder in (r"C:\Data\Deep", r"C:\Data", "C:\\ProgramData\\Amazon\\Deadline\\Config", r"c:\programdata"):
        run_operation(str(path), "write_file", {"path": folder + r"\new.txt", "content": "eA==", "expected_sha256": "", "backup": False})
    with pytest.raises(HostOperationError) as refused:
        run_operation(str(path), "write_file", {"path": r"C:\Data\Other\new.txt", "content": "eA==", "expected_sha256": "", "backup": False})
    assert refused.value.code == "FOLDER_NOT_FOUND" and r"C:\Data\Other" in refused.value.message


def test_a_replace_keeps_the_files_acl_and_a_backup_gets_none(worker):
    state = simworker.load_state(worker)
    state["files"][TOML]["acl"] = "D:P(A;;FA;;;SY)(A;;FA;;;BA)"
    simworker.save_state(worker, state)
    read = run_operation(str(worker), "read_file", {"path": TOML})
    written = run_operation(str(worker), "write_file", {"path": TOML, "content": "eA==", "expected_sha256": read["sha256"], "backup": True})
    files = simworker.load_state(worker)["files"]
    assert files[TOML]["acl"] == "D:P(A;;FA;;;SY)(A;;FA;;;BA)"
    assert "acl" not in files[written["backup_file"]]
