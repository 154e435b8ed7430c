# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""File operations of the simulated worker, as read_file.ps1 and write_file.ps1 do them.

Internal to this collection: not a public API; it may change in any release.
"""

from __future__ import annotations

import base64
import datetime

from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host import sha256_hex
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host.errors import (
    FILE_CHANGED,
    FILE_EXISTS,
    HostOperationError,
)


def read_file(state, parameters: dict) -> dict:
    data = state.read_bytes(parameters["path"])
    if data is None:
        return {"exists": False, "content": "", "sha256": ""}
    return {"exists": True, "content": base64.b64encode(data).decode("ascii"), "sha256": sha256_hex(data)}


def backup_name(path: str, taken) -> str:
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")
    candidate, n = f"{path}.{stamp}.bak", 1
    while taken(candidate):
        candidate, n = f"{path}.{stamp}-{n}.bak", n + 1
    return candidate


def write_file(state, parameters: dict) -> dict:
    path = parameters["path"]
    expected = str(parameters["expected_sha256"]).lower()
    current = state.read_bytes(path)
    if current is None and expected:
        raise HostOperationError(FILE_CHANGED, f"{path} was removed since it was read")
    if current is not None and not expected:
        raise HostOperationError(FILE_EXISTS, f"{path} exists already")
    if current is not None and sha256_hex(current) != expected:
        raise HostOperationError(FILE_CHANGED, f"{path} changed since it was read")
    data = base64.b64decode(parameters["content"])
    backup_file = None
    if parameters["backup"] and current is not None:
        backup_file = backup_name(state.file_name(path) or path, lambda name: state.file_name(name) is not None)
        state.write_bytes(backup_file, current)
    state.write_bytes(path, data)
    return {"sha256": sha256_hex(data), "backup_file": backup_file}


OPERATIONS = {"read_file": read_file, "write_file": write_file}
