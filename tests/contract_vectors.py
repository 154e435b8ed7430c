# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The contract vectors (tests/contract/vectors/, see load_vectors): loading, placeholders, matching,
and the simulated worker built from a vector's ``host``. tests/windows/ does the same in PowerShell
from tests/windows/vectors.json, the JSON copy of these files.

A case: ``name``, ``why`` (the Windows fact), ``host`` (below), ``parameters``, ``expect`` (a subset
of the result, or ``{error_code: CODE}`` with maybe more of a refusal's fields), optional ``after``
(files, acls, backups, rights, members, service) and optional ``windows_skip`` (why a Windows host
cannot be built so; a case with ``faults`` needs one).

``host``: ``users {name: {enabled, environment}}``, ``groups {name: {members}}`` (local groups),
``domain_users {name: {}}`` and ``domain_groups {name: {members}}`` (accounts of the domain CORP:
they need a domain on Windows), ``orphans [name]`` (SIDs of deleted accounts), ``builtin {English
name: {name (localized), members, only}}`` (Administrators always also holds ``Administrator``, RID
500, and ``connection``, the account the operations run as, unless ``only``), ``rights {right:
[name]}``, ``group_policy {rights: {right: [name]}} | {error}`` (a domain GPO's user rights),
``files {path: {text|base64, acl (the DACL as SDDL), open_without_delete_sharing (another process
holds it open)}}`` (``{root}`` exists, no other folder unless a file is in it), ``folders {path:
{owner (a logical name; Administrators when absent), acl (the DACL as SDDL), junction_to (the folder
is a junction to that one)}}`` (folders made with that security), ``environment``
(machine variables), ``service {account, state, start_mode, sessions, environment (its own),
start_seconds, stop_seconds (how long its start and stop take), exits_after_s (its process exits
that long after a start), left_after_start [group] (groups its account leaves once it runs: its
process keeps them in its token)}``, ``agent {version | stderr, exit_code}`` (what the Python beside the
service answers when asked for the agent's version), ``language_mode`` (ConstrainedLanguage: as
under WDAC or AppLocker), ``faults`` (the simulated worker's, for a state no Windows host can be
brought to on purpose: ``domain_unreachable``, ``account_lookup_failed``, ``lsa_error``, ...).
Members and holders may also be the groups every logon carries: ``Everyone``, ``Authenticated
Users``, ``SERVICE``, and ``ALL SERVICES`` (NT SERVICE).

Placeholders: ``{root}`` (a folder of the test), ``{root_re}`` (the same, as a regex), ``{host}``,
``{service}``, ``{name:x}``, ``{qname:x}`` (DOMAIN\\name), ``{sid:x}``, ``{stamp:N}`` (UTC now + N
seconds as yyyyMMdd-HHmmss). Matchers in ``expect``: a mapping is a subset, a list must contain a
match for each item; ``{$exactly: [...]}``, ``{$regex: ...}``, ``{$type: list}``, and
``$without_keys: [...]`` inside a mapping.
"""

from __future__ import annotations

import base64
import datetime
import fnmatch
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import simworker
import yaml

from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host.operations import OPERATIONS
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host.powershell_host import script_text
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host.simulated.accounts import token_group_sids
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host.simulated.state import SimulatedState
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._windows.accounts import WELL_KNOWN_GROUPS, service_account_sid

VECTORS = Path(__file__).resolve().parent / "contract" / "vectors"
WINDOWS_VECTORS_JSON = Path(__file__).resolve().parent / "windows" / "vectors.json"
WINDOWS_SCRIPTS = Path(__file__).resolve().parent / "windows" / "scripts"

SIM_ROOT = r"C:\cmf-contract"
SIM_HOST = "WORKER-01"
SIM_SERVICE = "DeadlineWorker"
_DOMAIN = "S-1-5-21-3623811015-3361044348-30300820"  # the example states' machine SID
_CORP = "S-1-5-21-1004336348-1177238915-682003330"  # a domain's SID for domain groups
# Principals a vector may name without creating them (MS-DTYP 2.4.2.4).
WELL_KNOWN = {"Everyone": "S-1-1-0", "Authenticated Users": "S-1-5-11", "SERVICE": "S-1-5-6", "ALL SERVICES": "S-1-5-80-0"}
_PLACEHOLDER = re.compile(r"\{(root|root_re|host|service)\}|\{(name|qname|sid|stamp):([^{}]+)\}")


def load_vectors() -> dict[str, dict]:
    """Every vector, by operation name: ``{operation, cases}``. Each file is one operation's
    (``operation: <name>``): ``<operation>.yml``, and files about one theme beside it or in a folder
    of its own (read_agent_info_environment.yml, constrained_language/<operation>.yml); the cases of
    an operation are gathered from all of them, in the order of their paths."""
    vectors: dict[str, dict] = {}
    for path in sorted(VECTORS.rglob("*.yml")):
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        operation = document["operation"]
        vectors.setdefault(operation, {"operation": operation, "cases": []})["cases"] += document["cases"]
    return dict(sorted(vectors.items()))


def windows_json() -> str:
    """The JSON copy the Windows suite reads (powershell-yaml is not built into Windows)."""
    return json.dumps(load_vectors(), indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def windows_scripts() -> dict[str, bytes]:
    """Each operation's script as the controller sends it to win_powershell (its includes expanded),
    by file name: the Windows suite runs these bytes, so it needs no include logic of its own."""
    return {f"{name}.ps1": script_text(name).encode("utf-8") for name in sorted(OPERATIONS)}


def stale_scripts(folder: Path = WINDOWS_SCRIPTS) -> list[str]:
    """The files of ``folder`` that differ from what the controller sends (byte for byte), are
    missing, or belong to no operation; [] when the export is current."""
    exported = {path.name: path.read_bytes() for path in folder.iterdir()} if folder.is_dir() else {}
    sent = windows_scripts()
    return sorted({name for name in exported.keys() | sent.keys() if exported.get(name) != sent.get(name)})


def export_windows_suite() -> None:
    """Writes what the Windows suite reads: vectors.json and scripts/<operation>.ps1 (a script of an
    operation that no longer exists is removed)."""
    WINDOWS_VECTORS_JSON.write_text(windows_json(), encoding="utf-8", newline="\n")
    WINDOWS_SCRIPTS.mkdir(exist_ok=True)
    scripts = windows_scripts()
    for stale in WINDOWS_SCRIPTS.glob("*.ps1"):
        if stale.name not in scripts:
            stale.unlink()
    for name, data in scripts.items():
        (WINDOWS_SCRIPTS / name).write_bytes(data)


@dataclass
class Names:
    """What a host made of a vector's logical names."""

    root: str
    host: str
    service: str
    names: dict[str, str] = field(default_factory=dict)
    qnames: dict[str, str] = field(default_factory=dict)
    sids: dict[str, str] = field(default_factory=dict)
    now: datetime.datetime = field(default_factory=lambda: datetime.datetime.now(datetime.timezone.utc))

    def expand(self, value: Any) -> Any:
        if isinstance(value, str):
            return _PLACEHOLDER.sub(self._one, value)
        if isinstance(value, list):
            return [self.expand(v) for v in value]
        if isinstance(value, dict):
            return {self.expand(k): self.expand(v) for k, v in value.items()}
        return value

    def _one(self, match: re.Match) -> str:
        simple, kind, arg = match.group(1), match.group(2), match.group(3)
        if simple == "root":
            return self.root
        if simple == "root_re":
            return re.escape(self.root)
        if simple == "host":
            return self.host
        if simple == "service":
            return self.service
        if kind == "stamp":
            return (self.now + datetime.timedelta(seconds=int(arg))).strftime("%Y%m%d-%H%M%S")
        table = {"name": self.names, "qname": self.qnames, "sid": self.sids}[kind]
        # A logical name the host does not have stays unique to this test: an account that does not exist.
        return table.get(arg, f"cmf-absent-{arg}" if kind != "sid" else f"{_DOMAIN}-4999")


# -------------------------------------------------------------------------------------------
# the simulated worker made from a vector's host


def build_state(host: dict) -> tuple[dict, Names]:
    names = Names(root=SIM_ROOT, host=SIM_HOST, service=SIM_SERVICE)
    accounts: dict[str, dict] = {}

    def add(logical: str, sid: str, entry: dict, domain: str | None = None) -> None:
        accounts[sid] = entry
        names.names[logical], names.sids[logical] = entry["name"], sid
        names.qnames[logical] = f"{domain or SIM_HOST}\\{entry['name']}"

    names.sids.update(WELL_KNOWN)
    add("Administrator", f"{_DOMAIN}-500", {"name": "Administrator", "type": "user"})
    add("connection", f"{_DOMAIN}-1000", {"name": "ansible", "type": "user"})
    rid = 1001
    for logical, spec in (host.get("users") or {}).items():
        entry = {"name": logical, "type": "user"}
        if (spec or {}).get("enabled") is False:
            entry["enabled"] = False
        if "environment" in (spec or {}):
            entry["environment"] = dict(spec["environment"])
        add(logical, f"{_DOMAIN}-{rid}", entry)
        rid += 1
    for logical in host.get("orphans") or []:
        names.sids[logical] = f"{_DOMAIN}-{rid}"  # a SID no account has any more
        rid += 1
    for logical in host.get("groups") or {}:
        add(logical, f"{_DOMAIN}-{rid}", {"name": logical, "type": "group", "members": []})
        rid += 1
    for n, logical in enumerate(host.get("domain_users") or {}):
        add(logical, f"{_CORP}-{1105 + n}", {"name": logical, "type": "user", "domain": "CORP"}, "CORP")
    for n, logical in enumerate(host.get("domain_groups") or {}):
        add(logical, f"{_CORP}-{3101 + n}", {"name": logical, "type": "group", "domain": "CORP", "members": []}, "CORP")
    builtin = {"Administrators": {}, **(host.get("builtin") or {})}
    for english, spec in builtin.items():
        sid = WELL_KNOWN_GROUPS[english.casefold()]
        add(english, sid, {"name": (spec or {}).get("name") or english, "type": "group", "members": []}, "BUILTIN")
    for table in ("groups", "domain_groups", "builtin"):
        for logical, spec in (host.get(table) or {}).items():
            accounts[names.sids[logical]]["members"] = [names.sids[m] for m in (spec or {}).get("members") or []]
    if not (builtin["Administrators"] or {}).get("only"):
        admins = accounts[names.sids["Administrators"]]["members"]
        admins[:0] = [names.sids["Administrator"], names.sids["connection"]]
    state: dict = {
        "hostname": SIM_HOST,
        "connection_account": names.sids["connection"],
        "accounts": accounts,
        "rights": {right: [names.sids[a] for a in holders] for right, holders in (host.get("rights") or {}).items()},
        "environment": dict(host.get("environment") or {}),
        **({"faults": dict(host["faults"])} if host.get("faults") else {}),
        **({"group_policy": _group_policy(host["group_policy"], names)} if host.get("group_policy") else {}),
        "files": {},
        "folders": [SIM_ROOT],  # {root} exists; a folder the vector does not make does not
        "services": {},
        "agent": {"version": simworker.example_state()["agent"]["version"]},
    }
    agent = host.get("agent")
    if agent is not None:
        # The Python beside the service answers with this version, or fails (stderr, exit_code): not installed.
        state["agent"] = {"version": str(agent["version"])} if agent.get("version") else {}
    for path, given in (host.get("folders") or {}).items():
        # A folder with its security (owner, DACL, or a junction to another folder), as the sandbox checks it.
        folder, spec = names.expand(path), names.expand(dict(given or {}))
        state["folders"].append(folder)
        security: dict = {"owner": names.sids[spec["owner"]] if spec.get("owner") else "S-1-5-32-544"}
        if spec.get("acl"):
            security["acl"] = spec["acl"]
        if spec.get("junction_to"):
            security["reparse_point"] = True
            state["folders"].append(spec["junction_to"])
        state.setdefault("folder_security", {})[folder] = security
    for path, content in (host.get("files") or {}).items():
        state["files"][names.expand(path)] = names.expand(content)
    if host.get("language_mode"):
        state["language_mode"] = host["language_mode"]
    if host.get("faults"):
        state["faults"] = names.expand(dict(host["faults"]))
    service = host.get("service")
    if service:
        state["files"].setdefault(simworker.WORKER_TOML, {"base64": base64.b64encode(simworker.file_bytes(simworker.example_state())).decode()})
        account = str(service.get("account") or "LocalSystem")
        entry = {
            "state": service.get("state", "running"),
            "start_mode": service.get("start_mode", "auto"),
            "account": account if service_account_sid(account) else (
                names.qnames[account] if account in (host.get("domain_users") or {}) else f".\\{names.names[account]}"
            ),
            "environment": [str(e) for e in service.get("environment") or []],
        }
        if service.get("sessions"):
            entry["sessions"] = [dict(s) for s in service["sessions"]]
        # How the service behaves: seconds its start and its stop take, seconds after a start its process exits.
        entry.update({key: service[key] for key in ("start_seconds", "stop_seconds", "exits_after_s") if key in service})
        state["services"][SIM_SERVICE] = entry
        if service.get("left_after_start"):
            # The process started with the account in these groups, which it left since: its token keeps them.
            entry["token_groups"] = token_group_sids(SimulatedState(state), entry["account"])
            sid = names.sids[account]
            for group in service["left_after_start"]:
                members = state["accounts"][names.sids[group]]["members"]
                members[:] = [m for m in members if m != sid]
    return state, names


def _group_policy(spec: dict, names: Names) -> dict:
    if spec.get("error"):
        return {"error": spec["error"]}
    return {"rights": {right: [names.sids[h] for h in holders] for right, holders in (spec.get("rights") or {}).items()}}


# -------------------------------------------------------------------------------------------
# matching


def mismatches(expected: Any, actual: Any, where: str = "result") -> list[str]:
    """How ``actual`` fails ``expected`` (see the module's matchers); [] when it matches."""
    if isinstance(expected, dict) and "$exactly" in expected:
        want = expected["$exactly"]
        if not isinstance(actual, list) or len(actual) != len(want):
            return [f"{where}: {actual!r} is not exactly {want!r}"]
        return [m for n, (e, a) in enumerate(zip(want, actual, strict=True)) for m in mismatches(e, a, f"{where}[{n}]")]
    if isinstance(expected, dict) and "$regex" in expected:
        ok = isinstance(actual, str) and re.search(expected["$regex"], actual) is not None
        return [] if ok else [f"{where}: {actual!r} does not match /{expected['$regex']}/"]
    if isinstance(expected, dict) and "$type" in expected:
        types = {"list": list, "dict": dict, "str": str, "int": int, "bool": bool}
        # JSON's true is no number (as PowerShell's -is [int] says of $true)
        ok = isinstance(actual, types[expected["$type"]]) and not (expected["$type"] == "int" and isinstance(actual, bool))
        return [] if ok else [f"{where}: {actual!r} is not a {expected['$type']}"]
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{where}: {actual!r} is not a mapping"]
        problems = [f"{where}: has the key {k!r}" for k in expected.get("$without_keys", []) if k in actual]
        for key, value in expected.items():
            if key == "$without_keys":
                continue
            if key not in actual:
                problems.append(f"{where}: no key {key!r}")
            else:
                problems += mismatches(value, actual[key], f"{where}.{key}")
        return problems
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return [f"{where}: {actual!r} is not a list"]
        return [f"{where}: no item matches {item!r} in {actual!r}" for item in expected if not any(not mismatches(item, a) for a in actual)]
    if expected != actual or isinstance(expected, bool) != isinstance(actual, bool):
        return [f"{where}: {actual!r} != {expected!r}"]
    return []


# The $type matcher's table, which the harness's self-test in tests/windows/Contract.Tests.ps1 repeats
# (its document as JSON, each case as @('key', 'type', 0 for a match or 1 for a mismatch)).
TYPE_MATCHER_DOCUMENT = {"list": [], "one": [1], "dict": {"a": 1}, "str": "x", "int": 5, "big": 4294967296, "bool": True, "null": None}
TYPE_MATCHER_CASES = [
    ("list", "list", True), ("one", "list", True), ("dict", "list", False), ("str", "list", False), ("null", "list", False),
    ("dict", "dict", True), ("list", "dict", False),
    ("str", "str", True), ("int", "str", False), ("null", "str", False),
    ("int", "int", True), ("big", "int", True), ("bool", "int", False), ("str", "int", False),
    ("bool", "bool", True), ("int", "bool", False), ("str", "bool", False),
]


def after_mismatches(after: dict, state: dict, names: Names) -> list[str]:
    """How the simulated worker's state differs from a case's ``after``."""
    problems: list[str] = []
    files = {name.casefold(): entry for name, entry in (state.get("files") or {}).items()}
    for path, want in (after.get("files") or {}).items():
        entry = files.get(path.casefold())
        got = None if entry is None else (base64.b64decode(entry["base64"]) if "base64" in entry else entry["text"].encode())
        wanted = None if want is None else (base64.b64decode(want["base64"]) if "base64" in want else want["text"].encode())
        if got != wanted:
            problems.append(f"after: file {path} holds {got!r}, not {wanted!r}")
    for path, want in (after.get("acls") or {}).items():
        entry = files.get(path.casefold()) or {}
        if entry.get("acl") != want:
            problems.append(f"after: file {path} has the ACL {entry.get('acl')!r}, not {want!r}")
    for pattern, count in (after.get("backups") or {}).items():
        found = [name for name in files if fnmatch.fnmatchcase(name, pattern.casefold())]
        if len(found) != count:
            problems.append(f"after: {len(found)} files match {pattern}, not {count}: {found}")
    for account, spec in (after.get("rights") or {}).items():
        sid = names.sids[account]
        held = {right.casefold() for right, holders in (state.get("rights") or {}).items() if sid in (holders or [])}
        problems += [f"after: {account} lacks {r}" for r in spec.get("has", []) if r.casefold() not in held]
        problems += [f"after: {account} holds {r}" for r in spec.get("lacks", []) if r.casefold() in held]
    for group, spec in (after.get("members") or {}).items():
        members = set(state["accounts"][names.sids[group]].get("members") or [])
        problems += [f"after: {m} is not in {group}" for m in spec.get("has", []) if names.sids[m] not in members]
        problems += [f"after: {m} is in {group}" for m in spec.get("lacks", []) if names.sids[m] in members]
    service_spec = after.get("service")
    if service_spec:
        entry = state["services"][SIM_SERVICE]
        got = {
            "state": entry.get("state"),
            "sessions": [str(s.get("id")) for s in entry.get("sessions") or []],
            "interrupted_sessions": entry.get("interrupted_sessions") or [],
        }
        problems += [f"after: service {k} is {got[k]!r}, not {v!r}" for k, v in service_spec.items() if got[k] != v]
    return problems
