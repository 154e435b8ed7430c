# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The simulated worker: a Windows CMF worker kept in a state file (see STATE.md).

Everything here is plain Python so that tests and benchmarks can drive it without Ansible. The
connection plugin ``deadline_cloud.cmf.simulated_worker`` only wires :func:`run_operation` to a
task's connection options.

Internal to this collection: not a public API; it may change in any release.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import fcntl
import io
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

try:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError
    from ruamel.yaml.scalarstring import LiteralScalarString
except ImportError as error:  # only the simulated worker needs it: requirements-demo.txt, not requirements.txt
    RUAMEL_IMPORT_ERROR: ImportError | None = error
    YAMLError = ValueError  # never raised: load() stops before parsing
else:
    RUAMEL_IMPORT_ERROR = None

from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host import Host, path_key
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host.errors import CONSTRAINED_LANGUAGE, HostOperationError
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host.operations import OPERATIONS, Operation


class StateFileError(Exception):
    """The state file is missing or malformed: the task fails with this message."""


class ConnectionDropped(Exception):
    """A remote call that never came back (the ``fail_next`` fault)."""


def now_utc() -> datetime.datetime:
    """The simulated worker's clock (the one place that asks for it)."""
    return datetime.datetime.now(datetime.timezone.utc)


def utc_now() -> str:
    """The simulated worker's clock, as Windows reports times: UTC, ISO 8601."""
    return now_utc().isoformat(timespec="microseconds")


class SimulatedState:
    """A worker's state with Windows' rules for looking things up (case-insensitive paths)."""

    def __init__(self, data: dict) -> None:
        self.data = data

    @property
    def hostname(self) -> str:
        return str(self.data.get("hostname") or "WORKER")

    # files -----------------------------------------------------------------------------
    @staticmethod
    def _path_key(path: str) -> str:
        return path_key(path)

    def _files(self) -> dict:
        files = self.data.get("files")
        if not isinstance(files, dict):
            files = self.data["files"] = {}
        return files

    def file_name(self, path: str) -> str | None:
        """The name the state file uses for ``path``, matched as Windows matches paths."""
        wanted = self._path_key(path)
        for name in self._files():
            if self._path_key(name) == wanted:
                return name
        return None

    def read_bytes(self, path: str) -> bytes | None:
        name = self.file_name(path)
        if name is None:
            return None
        entry = self._files()[name] or {}
        if "base64" in entry:
            return base64.b64decode(entry["base64"])
        return str(entry.get("text", "")).encode("utf-8")

    def write_bytes(self, path: str, data: bytes) -> None:
        """New bytes for ``path``; an existing file keeps what else its entry says (its ``acl``:
        File.Replace keeps the target's security descriptor)."""
        name = self.file_name(path) or path
        try:
            text = data.decode("utf-8")
            readable = not text.startswith("\ufeff")
        except UnicodeDecodeError:
            readable = False
        kept = {key: value for key, value in (self._files().get(name) or {}).items() if key not in ("text", "base64", "modified")}
        entry = {"text": _readable_text(text)} if readable else {"base64": base64.b64encode(data).decode("ascii")}
        entry["modified"] = utc_now()  # an optional field: hand-written states may leave it out
        self._files()[name] = {**entry, **kept}

    def file_entry(self, path: str) -> dict | None:
        name = self.file_name(path)
        return None if name is None else (self._files()[name] or {})

    def folder_exists(self, folder: str) -> bool:
        """Whether ``folder`` exists. Only a state with a ``folders`` list models folders (those it
        lists, their parents, and every folder that holds a file); without one, every folder exists."""
        listed = self.data.get("folders")
        if not isinstance(listed, list):
            return True
        wanted = self._path_key(folder)
        if wanted.endswith(":"):
            return True  # a drive's root
        known = [self._path_key(str(f)) for f in listed] + [self._path_key(name).rpartition("\\")[0] for name in self._files()]
        return any(key == wanted or key.startswith(wanted + "\\") for key in known)

    def add_folder(self, folder: str) -> None:
        """Records ``folder`` where the state models folders (see folder_exists)."""
        listed = self.data.get("folders")
        if isinstance(listed, list) and not any(self._path_key(str(f)) == self._path_key(folder) for f in listed):
            listed.append(folder)

    def remove_folder(self, folder: str) -> None:
        listed = self.data.get("folders")
        if isinstance(listed, list):
            listed[:] = [f for f in listed if not (self._path_key(str(f)) + "\\").startswith(self._path_key(folder) + "\\")]

    def modified_at(self, path: str) -> str | None:
        name = self.file_name(path)
        return None if name is None else (self._files()[name] or {}).get("modified")


def _readable_text(text: str) -> str:
    """Text as the state file should show it: a block scalar (``text: |``) when it has several
    lines that YAML keeps exactly that way (no CR, no trailing blanks, no control characters, no
    indented first line), else a plain string, which the dumper quotes as needed."""
    if RUAMEL_IMPORT_ERROR is not None or "\n" not in text.rstrip("\n"):
        return text
    lines = text.split("\n")
    plain = all(line == line.rstrip() and all(ch == "\t" or ch.isprintable() for ch in line) for line in lines)
    if plain and not text[:1].isspace() and "\t" not in text:
        return LiteralScalarString(text)
    return text


def _plain(value: Any) -> Any:
    """``value`` with the round-trip loader's types (CommentedMap, CommentedSeq, scalar strings)
    made plain dicts, lists and strings, for results that leave the simulator."""
    if isinstance(value, dict):
        return {_plain(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, str):
        return str(value)
    return value


# The operations, by name. Each takes the state and the operation's parameters and returns a
# JSON-able result, or raises HostOperationError before changing anything.
SimulatedOperation = Callable[[SimulatedState, dict], dict]


def _registry() -> dict[str, SimulatedOperation]:
    from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host.simulated.accounts import (
        OPERATIONS as accounts,
    )
    from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host.simulated.agent import OPERATIONS as agent
    from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host.simulated.files import OPERATIONS as files
    from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host.simulated.sandbox import OPERATIONS as sandbox

    return {**files, **accounts, **agent, **sandbox}


class StateFile:
    """One host's state file: read at each call, written back atomically under a lock."""

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)

    def load(self) -> dict:
        """The state: a JSON file as JSON, else YAML read round-trip (ruamel.yaml), so that what
        save() writes back keeps the file's comments, key order and block scalars."""
        if RUAMEL_IMPORT_ERROR is not None:
            raise StateFileError(
                "the simulated worker needs the Python package ruamel.yaml on the controller for its state files"
                f" (pip install 'ruamel.yaml>=0.18', as requirements-simulated-worker.txt says; real workers do not need it): {RUAMEL_IMPORT_ERROR}"
            )
        try:
            with open(self.path, encoding="utf-8") as handle:
                text = handle.read()
        except FileNotFoundError:
            raise StateFileError(f"simulated worker state file {self.path} does not exist") from None
        except OSError as error:
            raise StateFileError(f"simulated worker state file {self.path} cannot be read: {error}") from None
        try:
            data = json.loads(text) if self._is_json(text) else self._yaml().load(text)
        except (ValueError, YAMLError) as error:
            raise StateFileError(f"simulated worker state file {self.path} is not valid YAML or JSON: {error}") from None
        if not isinstance(data, dict):
            raise StateFileError(f"simulated worker state file {self.path} must hold a mapping, not {type(data).__name__}")
        return data

    def save(self, data: dict) -> None:
        folder = os.path.dirname(self.path)
        if self.path.endswith(".json"):
            text = json.dumps(data, indent=2) + "\n"
        else:
            buffer = io.StringIO()
            self._yaml().dump(data, buffer)
            text = buffer.getvalue()
        fd, temp = tempfile.mkstemp(prefix=".state-", dir=folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.replace(temp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            raise

    @staticmethod
    def _yaml() -> YAML:
        yaml = YAML(typ="rt")
        yaml.width = 4096  # long values (base64, SIDs lists) stay on one line
        yaml.preserve_quotes = True
        yaml.allow_unicode = True
        return yaml

    @contextlib.contextmanager
    def locked(self) -> Iterator[dict]:
        """The state, exclusively; saved on leaving, even when the operation raised."""
        with open(self.path + ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                data = self.load()
                try:
                    yield data
                finally:
                    self.save(data)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _is_json(self, text: str) -> bool:
        return self.path.endswith(".json") or text.lstrip().startswith("{")


def _time_passes(state: SimulatedState) -> None:
    """What happened on the host since the last call: pending service starts and stops that are
    done, processes that exited, render sessions that ended."""
    from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host.simulated.agent import end_finished_sessions, settle_services

    settle_services(state)
    end_finished_sessions(state)


def _count_call(data: dict, operation: str) -> None:
    calls = data.get("calls")
    if not isinstance(calls, dict):
        calls = data["calls"] = {}
    calls[operation] = int(calls.get(operation, 0)) + 1
    data["calls_total"] = int(data.get("calls_total", 0)) + 1


def _take_injected_failure(faults: dict, operation: str) -> bool:
    pending = faults.get("fail_next") or []
    if operation in pending:
        pending.remove(operation)
        faults["fail_next"] = pending
        return True
    return False


def _another_writer_changes(state: SimulatedState, faults: dict, operation: str, parameters: dict) -> None:
    """The ``modify_between_read_and_write`` fault: someone edits the file right after it is read."""
    target = faults.get("modify_between_read_and_write")
    if not target or operation != "read_file" or state.file_name(parameters["path"]) != state.file_name(target):
        return
    current = state.read_bytes(target) or b""
    newline = b"\r\n" if b"\r\n" in current else b"\n"
    state.write_bytes(target, current + b"# edited by another writer" + newline)
    del faults["modify_between_read_and_write"]  # once, like a real concurrent edit


def _language_refusal(state: SimulatedState) -> HostOperationError | None:
    """A state whose ``language_mode`` is not FullLanguage stands for a host where WDAC or AppLocker
    enforce a policy: every operation refuses at once, as each script does (lib/Refusal.ps1)."""
    mode = str(state.data.get("language_mode") or "FullLanguage")
    if mode == "FullLanguage":
        return None
    return HostOperationError(
        CONSTRAINED_LANGUAGE,
        f"PowerShell runs in {mode} mode on {state.hostname} (an application control policy, WDAC or AppLocker, is"
        " enforced), which blocks Add-Type and the .NET types these scripts need (the LSA and netapi32 for rights and"
        " groups, files, the registry, processes). Allow these scripts in that policy (an allow rule for the PowerShell"
        " scripts Ansible runs, e.g. by signing them), or run them in FullLanguage mode.",
    )


def run_operation(state_path: str, operation: str, parameters: dict) -> dict:
    """One remote call on the simulated worker whose state is in ``state_path``."""
    op: Operation = OPERATIONS[operation]
    op.check_parameters(parameters)
    implementation = _registry()[operation]
    state_file = StateFile(state_path)
    latency = 0.0
    with state_file.locked() as data:
        state = SimulatedState(data)
        faults = data.get("faults") or {}
        latency = float(faults.get("latency_ms") or 0) / 1000.0
        _count_call(data, operation)
        _time_passes(state)  # at every call, before the operation: time passes on a real host between calls
        if _take_injected_failure(faults, operation):
            raise ConnectionDropped(
                f"simulated worker {state.hostname}: the connection dropped during {operation} (fault fail_next)"
            )
        refusal = _language_refusal(state)
        if refusal is not None:
            raise refusal
        result = _plain(implementation(state, parameters))
        _another_writer_changes(state, faults, operation, parameters)
    if latency:
        time.sleep(latency)
    return result


class SimulatedHost(Host):
    """The host seen through a ``deadline_cloud.cmf.simulated_worker`` connection."""

    def __init__(self, connection: Any, check_mode: bool) -> None:
        super().__init__(check_mode)
        self._connection = connection

    def _invoke(self, op: Operation, parameters: dict) -> dict:
        return self._connection.run_operation(op.name, parameters)


__all__ = [
    "ConnectionDropped",
    "HostOperationError",
    "SimulatedHost",
    "SimulatedState",
    "StateFile",
    "StateFileError",
    "run_operation",
]
