# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one seam between the collection's logic and a worker.

Modules talk to a :class:`Host`; what a host is (PowerShell over any Windows connection, or the
simulated worker) is decided once, by :func:`host_for`, from the task's connection.

Internal to this collection: not a public API; it may change in any release.
"""

from __future__ import annotations

import base64
import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host.errors import HostOperationError
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host.operations import OPERATIONS, Operation

__all__ = ["FileContent", "Host", "HostOperationError", "file_from_reading", "host_for", "path_key", "reading_of", "sha256_hex"]


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def path_key(path: str) -> str:
    """A Windows path as Windows compares paths: case-insensitive, either slash."""
    return str(path).replace("/", "\\").rstrip("\\").casefold()


def reading_of(value: Any) -> dict | None:
    """The host's answer inside a ``reading`` option: worker_agent_info's whole result, or its
    ``reading`` key (what read_agent_info returned)."""
    if not isinstance(value, dict) or not value:
        return None
    inner = value.get("reading")
    if isinstance(inner, dict):
        return inner
    # worker_agent_info's result without its details holds no reading: never take its summary for one.
    return None if "verdict" in value or "findings" in value else value


def file_from_reading(reading: Any, path: str) -> FileContent | None:
    """worker.toml as a reading saw it, when the reading is of that same path; else None."""
    raw = reading_of(reading)
    config = (raw or {}).get("config")
    if not isinstance(config, dict) or path_key(config.get("path") or "") != path_key(path):
        return None
    if not config.get("exists"):
        return FileContent(path=path, exists=False)
    data = base64.b64decode(config.get("content") or "")
    return FileContent(path=path, exists=True, data=data, sha256=sha256_hex(data))


@dataclass(frozen=True)
class FileContent:
    path: str
    exists: bool
    data: bytes = b""
    sha256: str = ""  # empty when the file does not exist


class Host(ABC):
    """Remote operations on one worker. Every call is one round trip."""

    def __init__(self, check_mode: bool) -> None:
        self.check_mode = check_mode

    def call(self, operation: str, /, **parameters: Any) -> dict:
        op = OPERATIONS[operation]
        op.check_parameters(parameters)
        if op.changes_host and self.check_mode:
            # A guard, not a feature: modules plan in check mode and never get here.
            raise RuntimeError(f"{operation} changes the host and cannot run in check mode")
        return self._invoke(op, parameters)

    @abstractmethod
    def _invoke(self, op: Operation, parameters: dict) -> dict:
        """Run one operation on the host; raise HostOperationError for what the host refused."""

    # Typed wrappers of the file operations, shared by every implementation.
    def read_file(self, path: str) -> FileContent:
        result = self.call("read_file", path=path)
        if not result["exists"]:
            return FileContent(path=path, exists=False)
        data = base64.b64decode(result["content"])
        return FileContent(path=path, exists=True, data=data, sha256=result["sha256"].lower())

    def write_file(self, path: str, data: bytes, expected_sha256: str, backup: bool) -> dict:
        """Replace ``path`` with ``data`` if it still has ``expected_sha256`` ('' = must not exist).

        Returns ``{sha256, backup_file}``; raises HostOperationError(FILE_CHANGED) otherwise.
        """
        return self.call(
            "write_file",
            path=path,
            content=base64.b64encode(data).decode("ascii"),
            expected_sha256=expected_sha256,
            backup=backup,
        )


def host_for(action: Any, task_vars: dict) -> Host:
    """The host behind an action plugin's connection."""
    check_mode = bool(action._task.check_mode)
    connection = action._connection
    if getattr(connection, "is_simulated_worker", False):
        from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host.simulated.state import SimulatedHost

        return SimulatedHost(connection, check_mode)
    from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host.powershell_host import PowerShellHost

    return PowerShellHost(action, task_vars, check_mode)
