# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runs each operation's script on a Windows host through ansible.windows.win_powershell.

Values travel as ``parameters`` (bound to the script's ``param()`` block), never interpolated
into the script text. A script reports a refusal as ``$Ansible.Result = @{error_code; error}``.

Compiling C#. The LSA (user rights, names of SIDs) and netapi32 (local groups' members, the DC locator) are reached through
P/Invoke, C# that Add-Type compiles in the call (lib/Native.ps1, Initialize-CmfNative): one to three
seconds of a call on a real host, paid again at every call over WinRM, where each task runs in a new
PowerShell process (a connection that keeps one process for its tasks, as psrp's runspace pool may,
finds the types loaded after the first).
It is compiled only where the operation calls them, at their first use (CSHARP_COMPILES says when,
and a test holds it to the scripts); the fleet benchmark shows it per operation.

A per-host cached assembly (compiled once, kept in a folder only administrators can write, keyed
by the source's hash) would save that time, and is deliberately not done. The assembly would be
loaded from disk into the administrator session Ansible connects as, on every later call: whoever
can write it, or swap it between the check and the load, runs code as that administrator. Making
that safe means checking, at every load, the folder's owner and DACL (no write for anyone but
SYSTEM and Administrators, nothing inherited from a writable parent), no junction or symbolic link
on the path, and the file's hash against the source's, with the load racing the check; plus a
clean-up story for old versions and two calls compiling at once. For a collection whose job is to
take administrator rights away, that surface costs more than seconds; ansible.windows compiles its
own C# at every call too (win_user_right, through Add-CSharpType). To be revisited with timings
from real hosts: the Windows suite prints each operation's time per call.

Internal to this collection: not a public API; it may change in any release.
"""

from __future__ import annotations

import pkgutil
import re
from typing import Any

from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host import Host
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host.errors import HostOperationError
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host.operations import Operation

_SCRIPT_PACKAGE = "ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host"
NEVER = "never"
# When each operation compiles the C# (see the module's docstring). NEVER: the script holds none.
CSHARP_COMPILES = {
    "read_file": NEVER,
    "write_file": NEVER,
    "read_account": "always (rights and the names of SIDs: LSA; local groups' members and the DC locator: netapi32)",
    "set_user_rights": "always (LSA)",
    "set_group_membership": "always (the account's reading: LSA, netapi32)",
    "read_agent_info": "when the service exists and has an account or runs (its reading: LSA, netapi32; its process's token)",
    "control_service": "only with config_path, for the reading after acting",
    "sandbox": "absent, when the sandbox user exists (its rights: LSA)",
}
_RESULT_DEPTH = 10  # win_powershell's default of 2 would stringify nested results
UNEXPECTED = "HOST_ERROR"


# A line `#cmf:include Name` (after the param block, or inside a lib) is replaced by
# powershell/lib/Name.ps1, so that helpers shared by several operations exist once while each
# operation still travels to the host as one self-contained script holding only the helpers it
# uses. Includes nest (a lib may include the libs it needs), and a lib already expanded earlier in
# the same script expands to a one-line comment: two libs may need the same helper, sent once.
# A CRLF line end is accepted (a checkout that converted the scripts must not send an include
# unexpanded); .gitattributes keeps the scripts LF so that what is sent is what the tests read.
_INCLUDE = re.compile(r"^#cmf:include (?P<name>[A-Za-z0-9]+)[ \t]*(?=\r?$)", re.MULTILINE)


def _resource(relative: str) -> str:
    data = pkgutil.get_data(_SCRIPT_PACKAGE, f"powershell/{relative}")
    if data is None:
        raise FileNotFoundError(f"powershell/{relative}")
    return data.decode("utf-8")


def _expand(text: str, included: set[str]) -> str:
    def include(match: re.Match[str]) -> str:
        name = match.group("name")
        if name in included:
            return f"# (lib {name} is already included above)"
        included.add(name)
        return _expand(_resource(f"lib/{name}.ps1"), included).rstrip("\r\n")

    return _INCLUDE.sub(include, text)


def script_text(operation: str) -> str:
    """The script of ``operation`` as it is sent to the host, with its includes expanded."""
    return _expand(_resource(f"{operation}.ps1"), set())


def powershell_parameter_name(name: str) -> str:
    """``expected_sha256`` -> ``ExpectedSha256``: Python's names, as the scripts declare them."""
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


def _exception_messages(exception: dict) -> list[str]:
    # win_powershell reports an exception as {message, type, ..., inner_exception: {...}}: the
    # outer one is often a wrapper ("Exception calling "Start" with "0" argument(s)") whose real
    # cause (the Win32 error) is only in the inner ones.
    messages: list[str] = []
    depth = 0
    while isinstance(exception, dict) and depth < 10:
        message = str(exception.get("message") or "").strip()
        if message and not any(message in known for known in messages):
            messages.append(message)
        exception = exception.get("inner_exception")
        depth += 1
    return messages


def _first_error_message(result: dict) -> str:
    for record in result.get("error") or []:
        messages = _exception_messages(record.get("exception") or {})
        if messages:
            return ": ".join(messages)
        if record.get("output"):
            return str(record["output"]).strip()
    return str(result.get("msg") or "the script failed without an error record")


class PowerShellHost(Host):
    def __init__(self, action: Any, task_vars: dict, check_mode: bool) -> None:
        super().__init__(check_mode)
        self._action = action
        self._task_vars = task_vars

    def _invoke(self, op: Operation, parameters: dict) -> dict:
        result = self._action._execute_module(
            module_name="ansible.windows.win_powershell",
            module_args={
                "script": script_text(op.name),
                "parameters": {powershell_parameter_name(k): v for k, v in parameters.items()},
                "depth": _RESULT_DEPTH,
                "error_action": "stop",
            },
            task_vars=self._task_vars,
        )
        if result.get("unreachable"):
            raise HostOperationError(UNEXPECTED, f"{op.name}: host unreachable: {result.get('msg')}")
        if result.get("failed"):
            raise HostOperationError(UNEXPECTED, f"{op.name} failed on the host: {_first_error_message(result)}")
        if result.get("msg") == "skipped, running in check mode":
            raise HostOperationError(UNEXPECTED, f"{op.name}: the script does not declare SupportsShouldProcess")
        payload = result.get("result") or {}
        if not isinstance(payload, dict):
            raise HostOperationError(UNEXPECTED, f"{op.name} returned {type(payload).__name__}, not an object")
        if payload.get("error_code"):
            details = {key: value for key, value in payload.items() if key not in ("error_code", "error")}
            raise HostOperationError(str(payload["error_code"]), str(payload.get("error") or payload["error_code"]), details)
        return payload
