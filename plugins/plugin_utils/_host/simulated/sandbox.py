# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The self-test's sandbox on the simulated worker, as sandbox.ps1 makes it.

present: a disabled local user ``<name>`` and a local group ``<name>g`` with no members in
``accounts`` (new SIDs in the machine's domain, after its highest RID), both with the sandbox's
``description``, and a folder under the system temp folder holding the sandbox's marker file.
absent: the user's rights and memberships are removed first, then the user, the group and every
file under the folder. Rights left with no holder are dropped, as the LSA keeps no empty right.
A user, group or folder under the sandbox's names that is not the sandbox's own (no description,
no marker file) is refused with SANDBOX_NOT_OURS before anything changes; so is a folder the
self-test cannot trust with its writes as administrator (``folder_security``, see STATE.md: a
junction or symbolic link, another owner than SYSTEM or Administrators, or a DACL that lets anyone
else write). present records its new folder's security as sandbox.ps1 makes it: owned by
Administrators, a protected DACL for SYSTEM and Administrators only.

Internal to this collection: not a public API; it may change in any release.
"""

from __future__ import annotations

import re

from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host import path_key
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host.errors import HostOperationError
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._windows.accounts import (
    ADMINISTRATORS,
    LOCAL_SYSTEM,
    machine_sid_prefix,
    names_equal,
    normalize_sid,
    sid_key,
)

SYSTEM_TEMP = r"C:\Windows\Temp"
# A machine SID for a state that has no local account to take it from.
DEFAULT_MACHINE_SID = "S-1-5-21-1004336348-1177238915-682003330"
FIRST_LOCAL_RID = 1000
_LOCAL_SID = re.compile(r"^(S-1-5-21-\d+-\d+-\d+)-(\d+)$", re.IGNORECASE)
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,19}$")
MARKER = "deadline_cloud.cmf self-test sandbox (removed by the self-test)"  # the accounts' description
MARKER_FILE = ".deadline-cloud-cmf-sandbox"
TRUSTED = (LOCAL_SYSTEM, ADMINISTRATORS)  # the only principals that may own or write the sandbox's folder
# The folder sandbox.ps1 makes: owned by Administrators, a protected DACL for SYSTEM and Administrators.
SANDBOX_FOLDER_SECURITY = {"owner": ADMINISTRATORS, "acl": "D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)"}
# SDDL: the aliases of the principals a folder's DACL may name, and the rights of its two-letter codes
# (the directory-service bits are a file's: DC is write data, SW write extended attributes, ...).
_SDDL_SIDS = {"SY": LOCAL_SYSTEM, "BA": ADMINISTRATORS, "BU": "S-1-5-32-545", "WD": "S-1-1-0", "AU": "S-1-5-11", "CO": "S-1-3-0", "IU": "S-1-5-4"}
_SDDL_RIGHTS = {
    "GA": 0x10000000, "GR": 0x80000000, "GW": 0x40000000, "GX": 0x20000000, "FA": 0x1F01FF, "FR": 0x120089, "FW": 0x120116,
    "FX": 0x1200A0, "SD": 0x10000, "RC": 0x20000, "WD": 0x40000, "WO": 0x80000, "CC": 0x1, "DC": 0x2, "LC": 0x4, "SW": 0x8,
    "RP": 0x10, "WP": 0x20, "DT": 0x40, "LO": 0x80, "CR": 0x100,
}
# As $WriteRights in sandbox.ps1: write data, append data, write EA, delete child, write attributes,
# delete, write DAC, write owner, GENERIC_ALL, GENERIC_WRITE.
WRITE_RIGHTS = 0x2 | 0x4 | 0x10 | 0x40 | 0x100 | 0x10000 | 0x40000 | 0x80000 | 0x10000000 | 0x40000000
_ACE = re.compile(r"\((?P<type>[A-Z]+);[^;]*;(?P<rights>[^;]*);[^;]*;[^;]*;(?P<sid>[^);]+)\)")


def _accounts(state) -> dict:
    accounts = state.data.get("accounts")
    if not isinstance(accounts, dict):
        accounts = state.data["accounts"] = {}
    return accounts


def _find(state, name: str, kind: str) -> str | None:
    """The SID of the local ``kind`` (user or group) called ``name``."""
    for sid, raw in _accounts(state).items():
        entry = raw or {}
        if entry.get("domain") is None and entry.get("type", "user") == kind and names_equal(str(entry.get("name") or ""), name):
            return str(sid)
    return None


def _new_sid(state) -> str:
    """The next SID of the machine's own accounts (a domain's accounts, which have a domain, are not its)."""
    local = [str(sid) for sid, entry in _accounts(state).items() if (entry or {}).get("domain") is None]
    machine = (machine_sid_prefix(local) or f"{DEFAULT_MACHINE_SID}-").rstrip("-")
    highest = FIRST_LOCAL_RID - 1
    for sid in local:
        match = _LOCAL_SID.match(sid)
        if match and match.group(1) == machine:
            highest = max(highest, int(match.group(2)))
    return f"{machine}-{highest + 1}"


def _rights(text: str) -> int:
    if text.lower().startswith("0x"):
        return int(text, 16)
    return sum(_SDDL_RIGHTS.get(text[i : i + 2], 0) for i in range(0, len(text), 2))


def _sddl_sid(text: str) -> str:
    return _SDDL_SIDS.get(text) or sid_key(text)


def folder_security(state, folder: str) -> dict | None:
    """The ``folder_security`` entry of ``folder`` (None: a folder the state says nothing of, an
    administrator's, as every folder of a state without the key)."""
    for path, entry in (state.data.get("folder_security") or {}).items():
        if path_key(str(path)) == path_key(folder):
            return entry if isinstance(entry, dict) else {}
    return None


def _distrust(state, folder: str) -> str | None:
    """Why the existing ``folder`` cannot be trusted with the self-test's writes (None when it can), as
    Get-FolderDistrust in sandbox.ps1: a reparse point, another owner, or anyone else allowed to write."""
    entry = folder_security(state, folder)
    if entry is None:
        return None
    if entry.get("reparse_point"):
        return f"a folder {folder} that is a junction or symbolic link"
    owner = str(entry.get("owner") or ADMINISTRATORS)
    if owner not in TRUSTED:
        return f"a folder {folder} owned by {owner}"
    writers = [
        _sddl_sid(ace["sid"])
        for ace in _ACE.finditer(str(entry.get("acl") or ""))
        if ace["type"] == "A" and _sddl_sid(ace["sid"]) not in TRUSTED and _rights(ace["rights"]) & WRITE_RIGHTS
    ]
    if writers:
        return f"a folder {folder} that {', '.join(dict.fromkeys(writers))} may write"
    return None


def _foreign(state, name: str, group_name: str, folder: str) -> str | None:
    """Why what exists under the sandbox's names is not its own (None when all of it is)."""
    found = []
    for what, sid in ((f"a local user {name}", _find(state, name, "user")), (f"a local group {group_name}", _find(state, group_name, "group"))):
        entry = _accounts(state).get(sid) or {} if sid is not None else None
        if entry is not None and entry.get("description") != MARKER:
            found.append(f"{what} (description {str(entry.get('description') or '')!r})")
    inside = path_key(folder) + "\\"
    held = [f for f in state.data.get("files") or {} if path_key(f).startswith(inside)]
    listed = [f for f in state.data.get("folders") or [] if path_key(str(f)) == path_key(folder)]
    if held or listed or folder_security(state, folder) is not None:
        distrust = _distrust(state, folder)
        if distrust:
            found.append(distrust)
        elif path_key(f"{folder}\\{MARKER_FILE}") not in {path_key(f) for f in held}:
            found.append(f"a folder {folder} without the sandbox's marker file {MARKER_FILE}")
    if not found:
        return None
    return (
        f"{state.hostname} has {' and '.join(found)} that the self-test did not make (or cannot trust): nothing was changed; "
        "pick another sandbox_name, or remove them if they are left-overs"
    )


def _present(state, name: str, group_name: str, folder: str) -> tuple[str, str]:
    accounts = _accounts(state)
    user_sid = _find(state, name, "user")
    if user_sid is None:
        user_sid = _new_sid(state)
        accounts[user_sid] = {"name": name, "type": "user", "enabled": False, "description": MARKER}
    group_sid = _find(state, group_name, "group")
    if group_sid is None:
        group_sid = _new_sid(state)
        accounts[group_sid] = {"name": group_name, "type": "group", "members": [], "description": MARKER}
    if state.file_name(f"{folder}\\{MARKER_FILE}") is None:
        state.add_folder(folder)
        state.data.setdefault("folder_security", {})[folder] = dict(SANDBOX_FOLDER_SECURITY)
        state.write_bytes(f"{folder}\\{MARKER_FILE}", b"")
    return user_sid, group_sid


def _absent(state, name: str, group_name: str, folder: str) -> tuple[str | None, str | None]:
    accounts = _accounts(state)
    user_sid = _find(state, name, "user")
    group_sid = _find(state, group_name, "group")
    if user_sid is not None:
        wanted = normalize_sid(user_sid)
        rights = state.data.get("rights") or {}
        for right in list(rights):
            holders = [h for h in rights[right] or [] if normalize_sid(str(h)) != wanted]
            if holders:
                rights[right] = holders
            else:
                del rights[right]
        for entry in accounts.values():
            if isinstance(entry, dict) and "members" in entry:
                entry["members"] = [m for m in entry["members"] or [] if normalize_sid(str(m)) != wanted]
        del accounts[user_sid]
    if group_sid is not None:
        del accounts[group_sid]
    inside = path_key(folder) + "\\"
    files = state.data.get("files") or {}
    for file_name in [f for f in files if path_key(f).startswith(inside)]:
        del files[file_name]
    security = state.data.get("folder_security")
    if isinstance(security, dict):
        for path in [p for p in security if path_key(str(p)) == path_key(folder)]:
            del security[path]
        if not security:
            del state.data["folder_security"]
    return user_sid, group_sid


def sandbox(state, parameters: dict) -> dict:
    name, wanted = str(parameters["name"]), parameters["state"]
    if not _NAME.match(name):
        raise HostOperationError("INVALID_NAME", f"sandbox name {name!r}: 1 to 19 letters, digits, '-' or '_'")
    group_name = f"{name}g"
    folder = f"{SYSTEM_TEMP}\\{name}"
    if wanted not in ("present", "absent"):
        raise HostOperationError("INVALID_STATE", f"state must be present or absent, not {wanted!r}")
    foreign = _foreign(state, name, group_name, folder)
    if foreign:
        raise HostOperationError("SANDBOX_NOT_OURS", foreign)
    if wanted == "present":
        user_sid, group_sid = _present(state, name, group_name, folder)
        files = _files_in(state, folder)
    else:
        files = _files_in(state, folder)  # before they go: the self-test checks what its writes left
        user_sid, group_sid = _absent(state, name, group_name, folder)
        state.remove_folder(folder)
    return {
        "user": {"name": name, "sid": user_sid},
        "group": {"name": group_name, "sid": group_sid},
        "folder": folder,
        "files": files,
    }


def _files_in(state, folder: str) -> list[str]:
    """The names of the files right in ``folder``, sorted as Windows lists them (case-insensitively)."""
    names = [str(f).rpartition("\\")[2] for f in state.data.get("files") or {} if path_key(str(f).rpartition("\\")[0]) == path_key(folder)]
    return sorted(names, key=str.casefold)


OPERATIONS = {"sandbox": sandbox}
