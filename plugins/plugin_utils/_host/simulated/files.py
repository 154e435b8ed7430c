# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""File operations of the simulated worker, as read_file.ps1 and write_file.ps1 do them.

Internal to this collection: not a public API; it may change in any release.
"""

from __future__ import annotations

import base64
import fnmatch

from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host import path_key, sha256_hex
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host.errors import (
    FILE_CHANGED,
    FILE_EXISTS,
    FOLDER_NOT_FOUND,
    REPLACE_FAILED,
    HostOperationError,
)
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host.simulated.state import now_utc

# What File.Replace's IOException says for the failures the simulator can show (Win32 texts).
SHARING_VIOLATION = 32
SHARING_VIOLATION_TEXT = "The process cannot access the file because it is being used by another process."
REPLACE_ERRORS = {
    1175: "Unable to remove the file to be replaced.",
    1176: "Unable to move the replacement file to the file to be replaced. The file to be replaced has retained its original name.",
    1177: (
        "Unable to move the replacement file to the file to be replaced. The file to be replaced has been renamed using"
        " the backup name."
    ),
}


def read_file(state, parameters: dict) -> dict:
    data = state.read_bytes(parameters["path"])
    if data is None:
        return {"exists": False, "content": "", "sha256": ""}
    return {"exists": True, "content": base64.b64encode(data).decode("ascii"), "sha256": sha256_hex(data)}


def backup_name(path: str, taken) -> str:
    stamp = now_utc().strftime("%Y%m%d-%H%M%S")
    candidate, n = f"{path}.{stamp}.bak", 1
    while taken(candidate):
        candidate, n = f"{path}.{stamp}-{n}.bak", n + 1
    return candidate


def _copy_of_bytes(state, path: str, sha256: str) -> str | None:
    """A backup (<name>.<stamp>.bak) or a swapped-out original (~cmf*.old) beside ``path`` that holds
    the bytes with ``sha256``, newest name first (as write_file.ps1 looks for one)."""
    folder, _sep, name = path.replace("/", "\\").rpartition("\\")
    patterns = (f"{name}.*.bak".casefold(), "~cmf*.old")
    for candidate in sorted(state.data.get("files") or {}, reverse=True):
        candidate_folder, _sep, candidate_name = str(candidate).rpartition("\\")
        if path_key(candidate_folder) != path_key(folder) or not any(fnmatch.fnmatchcase(candidate_name.casefold(), p) for p in patterns):
            continue
        data = state.read_bytes(str(candidate))
        if data is not None and sha256_hex(data) == sha256:
            return str(candidate)
    return None


def _replace_failure(state, path: str) -> tuple[int, str] | None:
    """Why File.Replace fails on ``path`` now, as (Win32 error, its text): the file is held open without
    delete sharing (its entry's ``open_without_delete_sharing``), or the fault ``replace_fails`` (once)."""
    entry = state.file_entry(path) or {}
    if entry.get("open_without_delete_sharing"):
        return SHARING_VIOLATION, SHARING_VIOLATION_TEXT
    faults = state.data.get("faults") or {}
    code = faults.get("replace_fails")
    if code:
        del faults["replace_fails"]  # once, as the fault fail_next
        return int(code), REPLACE_ERRORS.get(int(code), f"Win32 error {code}")
    return None


def write_file(state, parameters: dict) -> dict:
    path = parameters["path"]
    expected = str(parameters["expected_sha256"]).lower()
    folder = path.replace("/", "\\").rpartition("\\")[0]
    if not state.folder_exists(folder):
        raise HostOperationError(FOLDER_NOT_FOUND, f"the folder {folder} does not exist")
    current = state.read_bytes(path)
    if current is None and expected:
        copy = _copy_of_bytes(state, path, expected)
        where = f"; the bytes that were read are in {copy}" if copy else ""
        raise HostOperationError(FILE_CHANGED, f"{path} was removed since it was read{where}")
    if current is not None and not expected:
        raise HostOperationError(FILE_EXISTS, f"{path} exists already")
    if current is not None and sha256_hex(current) != expected:
        raise HostOperationError(FILE_CHANGED, f"{path} changed since it was read")
    data = base64.b64decode(parameters["content"])
    if current is not None:
        failure = _replace_failure(state, path)
        if failure is not None:
            # 1175 and a sharing violation leave the target in place; 1177 moved it aside, and the
            # script moves it back: either way the target is as it was.
            code, text = failure
            outcome = f"{path} was put back as it was" if code == 1177 else f"{path} is as it was"
            raise HostOperationError(
                REPLACE_FAILED, f"replacing {path} failed ({text}); {outcome}", {"win32_error": code, "changed": False}
            )
    backup_file = None
    if parameters["backup"] and current is not None:
        backup_file = backup_name(state.file_name(path) or path, lambda name: state.file_name(name) is not None)
        state.write_bytes(backup_file, current)
    state.write_bytes(path, data)
    return {"sha256": sha256_hex(data), "backup_file": backup_file, "warnings": []}


OPERATIONS = {"read_file": read_file, "write_file": write_file}
