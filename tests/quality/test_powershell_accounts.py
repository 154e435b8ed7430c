# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The account reading in PowerShell (lib/Accounts.ps1), held statically to the simulated worker's:
the same fields, read the way that works over WinRM with no domain controller in reach. No
PowerShell runs here; the contract vectors hold the values (tests/contract, tests/windows)."""

from __future__ import annotations

import re

import simworker

from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host.powershell_host import script_text
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host.simulated.accounts import account_report
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host.simulated.agent import read_agent_info
from ansible_collections.deadline_cloud.cmf.plugins.plugin_utils._host.simulated.state import SimulatedState

ACCOUNTS = simworker.REPO_ROOT / "plugins" / "plugin_utils" / "_host" / "powershell" / "lib" / "Accounts.ps1"


def code_of(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))


def function_body(text: str, name: str) -> str:
    start = text.index(f"function {name} {{")
    end = text.find("\nfunction ", start + 1)
    return text[start : end if end >= 0 else len(text)]


def returned_keys(body: str) -> set[str]:
    """The keys of the hashtable a function ends with (`@{` alone on a line, one `key = ...` per line)."""
    block = body[body.rindex("\n    @{\n") :]
    return set(re.findall(r"^ {8}(\w+) = ", block, re.MULTILINE))


def test_the_report_has_the_fields_of_the_simulated_workers():
    simulated = account_report(SimulatedState(simworker.domain_state(policy={"SeServiceLogonRight": ["S-1-5-80-0"]})), "CORP\\render-svc")
    body = function_body(ACCOUNTS.read_text(encoding="utf-8"), "Get-AccountReport")
    assert returned_keys(body) == set(simulated)
    assert "group_policy = @{ known = " in body and "domain_member = " in body and "rights = $policyRights; error = " in body
    assert set(simulated["group_policy"]) == {"known", "domain_member", "rights", "error"}
    assert "@{ sid = $sid; name = $name; scope = $scope }" in body
    assert set(simulated["token_groups"][0]) == {"sid", "name", "scope"}


def test_a_broken_report_would_be_caught():
    body = function_body(ACCOUNTS.read_text(encoding="utf-8"), "Get-AccountReport")
    assert returned_keys(body.replace("        token_groups_known = ", "        closure_known = ")) != returned_keys(body)


def test_members_are_listed_as_sids_and_named_in_one_lookup():
    """NetLocalGroupGetMembers level 0 asks no domain controller; names come from one LsaLookupSids
    call, for the account's own groups only: a reading stays fast with the domain out of reach."""
    text = code_of(script_text("read_agent_info"))
    report = function_body(text, "Get-AccountReport")
    assert "LocalGroupMemberSids($group.name)" in report
    assert "Invoke('Members')" not in text and "InvokeMember" not in text  # no ADSI member binding, which asks the member's domain
    assert report.count("Get-CmfSidNames") == 1
    assert "NetLocalGroupGetMembers(null, groupName, 0," in text
    assert "LsaLookupSids(policy, sids.Length" in text
    assert "$ownMembers = @($mine | ForEach-Object { $members[$_.sid] })" in report


def test_a_domains_sids_that_cannot_be_named_leave_the_reading_going_on():
    """Two lookups: this computer's own SIDs, whose failure is real, and a domain's, whose failure (a
    broken secure channel on a domain member) leaves them unnamed: a local account whose Administrators
    holds Domain Admins is still read. The vector 'a local account is read without a domain controller'
    holds the result on the simulated worker."""
    text = code_of(script_text("read_account"))
    names = function_body(text, "Get-CmfSidNames")
    assert "$domainSids = @($unique | Where-Object { Test-CmfDomainSid -Sid $_ -MachinePrefix $MachinePrefix })" in names
    assert "LookupSids([string[]]$ownSids, $false)" in names and "LookupSids([string[]]$domainSids, $true)" in names
    assert "-MachinePrefix $machinePrefix" in function_body(text, "Get-AccountReport").split("Get-CmfSidNames", 1)[1].split("\n", 1)[0]
    lookup = text[text.index("public static SidName[] LookupSids(string[] sids, bool failureLeavesUnnamed)") :]
    lookup = lookup[: lookup.index("finally")]
    assert lookup.index("if (failureLeavesUnnamed)") < lookup.index('Check(status, "LsaLookupSids")')
    # the same rule as accounts.is_domain_sid, with the prefix the report already has (no second WMI query)
    assert "if (-not $PSBoundParameters.ContainsKey('MachinePrefix'))" in function_body(text, "Test-CmfDomainSid")


def test_the_closure_comes_from_an_s4u_logon_and_fails_closed_distinguishably():
    text = code_of(script_text("read_agent_info"))
    closure = function_body(text, "Get-CmfDomainGroupSids")
    assert "New-Object Security.Principal.WindowsIdentity -ArgumentList $upn" in closure
    assert "$identity.User.Value -ne $Resolved.sid" in closure  # never the groups of another account
    assert closure.count("known = $false") == 3 and "'DOMAIN_UNREACHABLE'" in closure and "'TOKEN_GROUPS_FAILED'" in closure
    assert "DomainControllerStatus($Domain)" in function_body(text, "Get-CmfUnreachableDomainCode")
    # asked after a failed lookup: from the network, not from the locator's cache of up to 15 minutes
    locator = text[text.index("public static int DomainControllerStatus(") :]
    assert "DsGetDcName(null, string.IsNullOrEmpty(domainName) ? null : domainName, IntPtr.Zero, null, DS_FORCE_REDISCOVERY," in locator
    assert "const int DS_FORCE_REDISCOVERY = 0x00000001;" in text
    resolve = function_body(text, "Resolve-CmfAccount")
    assert resolve.index("Get-CmfUnreachableDomainCode") < resolve.index("'ACCOUNT_NOT_FOUND'")


def test_the_s4u_logon_names_the_account_in_its_own_domain():
    # sam@<computer's domain> named no account of another domain of the forest (TOKEN_GROUPS_FAILED always):
    # the suffix is the DNS name of the account's own domain, from the DC locator (DS_RETURN_DNS_NAME).
    text = code_of(script_text("read_account"))
    closure = function_body(text, "Get-CmfDomainGroupSids")
    assert "$suffix = [DeadlineCloudCmf.NetApi]::DomainDnsName($Resolved.domain)" in closure
    assert closure.index("DomainDnsName") < closure.index("Win32_ComputerSystem -Property Domain") < closure.index('$upn = "$sam@$suffix"')
    locator = text[text.index("public static string DomainDnsName(string domainName)") :]
    locator = locator[: locator.index("\n        }\n")]
    assert "DsGetDcName(null, domainName, IntPtr.Zero, null, DS_RETURN_DNS_NAME, out info)" in locator
    assert "found.DomainName" in locator and "NetApiBufferFree(info)" in locator
    assert "const int DS_RETURN_DNS_NAME = 0x40000000;" in text


def test_only_a_domain_sid_that_does_not_map_asks_for_a_domain_controller():
    # The vectors hold the answers (a deleted local account's SID is ACCOUNT_NOT_FOUND without a domain
    # controller); this holds the PowerShell to the same rule as accounts.is_domain_sid.
    text = code_of(script_text("read_account"))
    resolve = function_body(text, "Resolve-CmfAccount")
    # only a domain's SID, and only on a domain member: a workgroup host has no domain to be unreachable
    assert "(Test-CmfDomainSid ('S' + $text.Substring(1))) -and (Test-CmfDomainMember)) { $domain = '' }" in resolve
    assert resolve.index("Test-CmfDomainSid") < resolve.index("elseif (Test-CmfDomainMember)")  # a SID never takes a bare name's way
    assert "PartOfDomain" in function_body(text, "Test-CmfDomainMember")
    assert "$Sid -notlike 'S-1-5-21-*'" in function_body(text, "Test-CmfDomainSid")
    assert "Get-CmfMachineSidPrefix -LocalUsers (Get-CmfLocalUsers)" in function_body(text, "Test-CmfDomainSid")
    assert "$machinePrefix = Get-CmfMachineSidPrefix -LocalUsers $localUsers" in function_body(text, "Get-AccountReport")


def test_a_domain_account_is_told_by_its_sid_and_the_hosts_own_domains_by_the_names_of_their_sids():
    # A German host names NT AUTHORITY with an umlaut: compared with English names, LocalSystem was a domain
    # account (an S4U logon of SYSTEM@domain, DsGetDcName of its localized domain: DOMAIN_UNREACHABLE).
    text = code_of(script_text("read_account"))
    report = function_body(text, "Get-AccountReport")
    assert "$isDomain = (Test-CmfDomainSid -Sid $resolved.sid -MachinePrefix $machinePrefix) -and -not $isGroup" in report
    assert report.index("$machinePrefix = ") < report.index("$isDomain = ")
    assert "'NT AUTHORITY'" not in report and "Test-CmfLocalDomain" not in text
    own = function_body(text, "Get-CmfOwnDomainNames")
    assert "foreach ($sid in @('S-1-5-32-544', 'S-1-5-18', 'S-1-5-80-0'))" in own and ".Translate([Security.Principal.NTAccount])" in own
    assert "@(Get-CmfOwnDomainNames) -notcontains $domain" in function_body(text, "Resolve-CmfAccount")


def test_the_policy_rights_come_from_the_resultant_set_of_policy_and_fail_closed():
    text = code_of(script_text("read_agent_info"))
    policy = function_body(text, "Get-CmfPolicyRightSettings")
    assert "-Namespace 'root\\rsop\\computer' -ClassName RSOP_UserPrivilegeRight -Filter 'precedence=1'" in policy
    assert "RSoPLogging" in policy
    assert policy.count("known = $false") == 2
    assert "secedit" not in text and "gpresult" not in text


def test_the_one_reading_reads_the_account_once():
    reading = function_body(code_of(script_text("read_agent_info")), "Get-CmfAgentReading")
    assert reading.count("Get-AccountReport") == 1


def test_the_reading_says_whether_the_service_process_token_holds_administrators_and_never_guesses():
    """read_agent_info reads the token the agent's process runs with (a process keeps the token it started
    with: an account that left Administrators since is still one there). Held statically here; the
    read_agent_info vectors hold the values, on the simulated worker and on Windows."""
    text = code_of(script_text("read_agent_info"))
    reading = function_body(text, "Get-CmfAgentReading")
    assert "$token = Get-CmfServiceToken $serviceInfo" in reading
    assert "$serviceInfo.token_administrators = $token.administrators" in reading and "$serviceInfo.token_error = $token.error" in reading
    token = function_body(text, "Get-CmfServiceToken")
    assert "if (-not $ServiceInfo.exists -or $null -eq $ServiceInfo.pid) { return @{ administrators = $null; error = $null } }" in token
    assert token.index("Initialize-CmfNative") < token.index("[DeadlineCloudCmf.ProcessToken]::Read([int]$ServiceInfo.pid)")
    assert token.count("administrators = $null; error = ") == 3  # not running; unreadable; another process: never a guess
    assert "$started -ne $ServiceInfo.started_at" in token  # the process read is the one the service had
    assert "@($token.Sids) -contains 'S-1-5-32-544'" in token
    read = text[text.index("public static ProcessTokenGroups Read(int processId)") :]
    read = read[: read.index("\n        }\n    }\n")]
    assert "OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, false, processId)" in read
    assert "OpenProcessToken(process, TOKEN_QUERY, out token)" in read and "const int TOKEN_QUERY = 0x0008;" in text
    assert "GetProcessTimes(process, out created" in read  # the start time through the same handle
    assert "new WindowsIdentity(token)" in read and "identity.Groups" in read  # enabled groups only: not deny-only ones
    assert "finally { CloseHandle(token); }" in read and "finally { CloseHandle(process); }" in read
    simulated = set(read_agent_info(SimulatedState(simworker.example_state()), {
        "service": "DeadlineWorker", "config_path": simworker.WORKER_TOML, "account": ""})["service"])
    assert {"token_administrators", "token_error"} <= simulated
