# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Everything the agent's decision depends on, in one call (Get-CmfAgentReading in lib/AgentReading.ps1).
# Read-only, so it also runs in check mode. Result:
#   agent {version, location, python, error}: read with the service's own python (-I, importlib
#     metadata and find_spec; the agent is not imported); any failure is in error with stderr's text
#   service {name, exists, state, start_mode, account, account_sid, environment, pid, started_at,
#     image_path, python_class, exit_code, service_specific_exit_code, token_administrators (whether
#     the running process's token holds Administrators; null when it does not run or its token
#     cannot be read), token_error (why it could not be read, else null)}
#   machine_environment {NAME: value} (DEADLINE_WORKER_*), user_environment {NAME: value} or null
#   account (read_account's report for $Account, or else the service's logon account), account_error {code, message}
#   config {path, exists, content (base64), modified_at (UTC ISO 8601), sha256}
#   sessions {busy, count, ids, processes [{pid, name}], directories, root, worker_id}
# Refusals: CONSTRAINED_LANGUAGE (WDAC or AppLocker enforced), before anything is read.
[CmdletBinding(SupportsShouldProcess)]
param(
    [Parameter(Mandatory)][string]$Service,
    [Parameter(Mandatory)][string]$ConfigPath,
    [Parameter(Mandatory)][AllowEmptyString()][string]$Account
)
$ErrorActionPreference = 'Stop'
$Ansible.Changed = $false

# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Everything the agent's decision depends on, read in one go (#cmf:include AgentReading):
# Get-CmfAgentReading returns what read_agent_info returns, and control_service returns the same
# reading after it acted (the verification, in the same call).

# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Refusals (#cmf:include Refusal): a refusal is an exception carrying a stable code in its Data,
# reported to the controller as @{ error_code; error }. Plain PowerShell, no Add-Type, so that
# operations which do not call native code compile nothing.

function New-CmfRefusal {
    param([string]$Code, [string]$Message)
    $refusal = New-Object -TypeName System.Exception -ArgumentList $Message
    $refusal.Data['CmfCode'] = $Code
    $refusal
}

function Get-CmfInnerException {
    # .NET exceptions reach PowerShell wrapped in MethodInvocationException: the original one.
    param([Exception]$Exception)
    while ($Exception -is [Management.Automation.MethodInvocationException] -and $Exception.InnerException) {
        $Exception = $Exception.InnerException
    }
    $Exception
}

function Get-CmfRefusal {
    # The @{ error_code; error } result for an error record that holds a refusal, else $null.
    param([Management.Automation.ErrorRecord]$ErrorRecord)
    $cause = Get-CmfInnerException $ErrorRecord.Exception
    if ($null -ne $cause -and $cause.Data.Contains('CmfCode')) {
        return @{ error_code = [string]$cause.Data['CmfCode']; error = $cause.Message }
    }
    $null
}

function Test-CmfSid {
    param([string]$Text)
    $Text -match '^[Ss]-1-\d+(-\d+)+$'
}

function Get-CmfServiceAccountSid {
    # The SID of a service logon name that does not always translate by name (LocalSystem has no
    # account of that name; NT AUTHORITY's names are localized), else $null.
    param([string]$Name)
    switch -Regex ($Name.Trim()) {
        '^(LocalSystem|(NT AUTHORITY\\)?SYSTEM|\.\\LocalSystem)$' { return 'S-1-5-18' }
        '^(NT AUTHORITY\\)?Local ?Service$' { return 'S-1-5-19' }
        '^(NT AUTHORITY\\)?Network ?Service$' { return 'S-1-5-20' }
    }
    $null
}

function Get-CmfLanguageRefusal {
    # WDAC or AppLocker in enforcement runs unsigned scripts in ConstrainedLanguage, which blocks
    # Add-Type and the .NET types these scripts use (files, hashes, the registry, processes, ADSI) with
    # errors that do not say why: @{ error_code; error } then, else $null. Plain hashtables only, which
    # ConstrainedLanguage allows, so that every operation checks it before anything else.
    $mode = [string]$ExecutionContext.SessionState.LanguageMode
    if ($mode -eq 'FullLanguage') { return $null }
    @{
        error_code = 'CONSTRAINED_LANGUAGE'
        error = ("PowerShell runs in $mode mode on $env:COMPUTERNAME (an application control policy, WDAC or " +
            'AppLocker, is enforced), which blocks Add-Type and the .NET types these scripts need (the LSA and ' +
            'netapi32 for rights and groups, files, the registry, processes). Allow these scripts in that policy ' +
            "(an allow rule for the PowerShell scripts Ansible runs, e.g. by signing them), or run them in FullLanguage mode.")
    }
}

function Test-CmfLanguageRefused {
    # Under ConstrainedLanguage: the operation's result becomes the refusal, and $true (the script
    # then returns at once: if (Test-CmfLanguageRefused) { return }).
    $refusal = Get-CmfLanguageRefusal
    if (-not $refusal) { return $false }
    $Ansible.Result = $refusal
    $true
}
# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SHA-256 of bytes as lower hex (#cmf:include Sha256). SHA256CryptoServiceProvider, not
# SHA256.Create(): on .NET Framework the latter is SHA256Managed, which throws on a FIPS host.

function Get-CmfSha256Hex {
    param([byte[]]$Bytes)
    $sha = New-Object -TypeName System.Security.Cryptography.SHA256CryptoServiceProvider
    try {
        return [BitConverter]::ToString($sha.ComputeHash($Bytes)).Replace('-', '').ToLowerInvariant()
    }
    finally {
        $sha.Dispose()
    }
}
# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# The agent's Windows service and what runs under it (#cmf:include AgentService): its configuration
# from the registry, its state and process from the Service Control Manager (Win32_Service), the
# render sessions it runs now, and the few worker.toml values the host side needs. No Add-Type.

# (lib Refusal is already included above)

function Get-CmfTomlString {
    # A string value `key = "..."` or `key = '...'` inside [table] of worker.toml's text, else $null.
    # Deliberately minimal (the controller parses worker.toml for real): it finds the session root
    # and the log folder, which the agent writes as plain one-line strings.
    param([string]$Text, [string]$Table, [string]$Key)
    if (-not $Text) { return $null }
    $current = ''
    foreach ($line in ($Text -split "`r?`n")) {
        if ($line -match '^\s*\[\s*([A-Za-z0-9_.-]+)\s*\]\s*(#.*)?$') { $current = $Matches[1]; continue }
        if ($current -ne $Table) { continue }
        if ($line -match ('^\s*' + [regex]::Escape($Key) + '\s*=\s*"((?:[^"\\]|\\.)*)"\s*(#.*)?$')) {
            return [regex]::Replace($Matches[1], '\\(["\\])', '$1')
        }
        if ($line -match ('^\s*' + [regex]::Escape($Key) + "\s*=\s*'([^']*)'\s*(#.*)?$")) {
            return $Matches[1]
        }
    }
    $null
}

function Read-CmfTextFile {
    # A file's text (UTF-8), '' when it does not exist; read shared, as its writer may hold it open.
    param([string]$Path)
    if (-not $Path -or -not [IO.File]::Exists($Path)) { return '' }
    $share = [IO.FileShare]::ReadWrite -bor [IO.FileShare]::Delete
    $stream = New-Object IO.FileStream -ArgumentList $Path, ([IO.FileMode]::Open), ([IO.FileAccess]::Read), $share
    try {
        $reader = New-Object IO.StreamReader -ArgumentList $stream, (New-Object Text.UTF8Encoding -ArgumentList $false)
        return $reader.ReadToEnd()
    }
    finally {
        $stream.Dispose()
    }
}

function Get-CmfLogonSid {
    # The SID of a service's logon name (StartName), $null when it does not resolve.
    param([string]$StartName)
    if (-not $StartName) { return $null }
    $wellKnown = Get-CmfServiceAccountSid $StartName
    if ($wellKnown) { return $wellKnown }
    $text = $StartName.Trim()
    if ($text.StartsWith('.\')) { $text = "$env:COMPUTERNAME\" + $text.Substring(2) }
    try {
        return (New-Object Security.Principal.NTAccount $text).Translate([Security.Principal.SecurityIdentifier]).Value
    }
    catch {
        return $null
    }
}

function Get-AgentServiceInfo {
    param([Parameter(Mandatory)][string]$Name)
    $escaped = $Name.Replace('\', '\\').Replace("'", "\'")
    $service = Get-CimInstance -ClassName Win32_Service -Filter "Name='$escaped'"
    if ($null -eq $service) {
        return @{ name = $Name; exists = $false }
    }
    $key = [Microsoft.Win32.Registry]::LocalMachine.OpenSubKey("SYSTEM\CurrentControlSet\Services\$($service.Name)")
    $environment = @()
    $pythonClass = $null
    if ($null -ne $key) {
        try {
            $value = $key.GetValue('Environment', $null)
            if ($null -ne $value) { $environment = @($value) }
            $classKey = $key.OpenSubKey('PythonClass')
            if ($null -ne $classKey) {
                try { $pythonClass = $classKey.GetValue('', $null) } finally { $classKey.Dispose() }
            }
        }
        finally {
            $key.Dispose()
        }
    }
    $processId = $null
    $startedAt = $null
    if ($service.State -eq 'Running' -and $service.ProcessId -gt 0) {
        $processId = [int]$service.ProcessId
        # When the running agent read worker.toml: it reads it only at start.
        $process = Get-Process -Id $processId -ErrorAction SilentlyContinue
        if ($null -ne $process) { $startedAt = $process.StartTime.ToUniversalTime().ToString('o') }
    }
    return @{
        name = [string]$service.Name
        exists = $true
        state = ([string]$service.State).ToLowerInvariant().Replace(' ', '_')
        start_mode = ([string]$service.StartMode).ToLowerInvariant()
        account = [string]$service.StartName
        account_sid = Get-CmfLogonSid ([string]$service.StartName)
        environment = [string[]]@($environment)
        pid = $processId
        started_at = $startedAt
        image_path = [string]$service.PathName
        python_class = $pythonClass
        exit_code = [long]$service.ExitCode  # uint32: [int] throws above 0x7FFFFFFF
        # Meaningful when exit_code is 1066 (ERROR_SERVICE_SPECIFIC_ERROR): the service's own code.
        service_specific_exit_code = [long]$service.ServiceSpecificExitCode
    }
}

function Get-CmfDescendantProcesses {
    # Every process below $ProcessId: @{ pid; name }. A parent id can be stale (Windows reuses ids), so
    # a child counts only when it started after its parent.
    param([int]$ProcessId)
    $all = @(Get-CimInstance -ClassName Win32_Process -Property 'ProcessId', 'ParentProcessId', 'Name', 'CreationDate')
    $byParent = @{}
    $created = @{}
    foreach ($process in $all) {
        $created[[int]$process.ProcessId] = $process.CreationDate
        $parent = [int]$process.ParentProcessId
        if (-not $byParent.ContainsKey($parent)) { $byParent[$parent] = [Collections.Generic.List[object]]@() }
        $byParent[$parent].Add($process)
    }
    $found = [Collections.Generic.List[object]]@()
    $queue = New-Object 'Collections.Generic.Queue[int]'
    $queue.Enqueue($ProcessId)
    $seen = @{ $ProcessId = $true }
    while ($queue.Count -gt 0) {
        $parent = $queue.Dequeue()
        if (-not $byParent.ContainsKey($parent)) { continue }
        foreach ($child in $byParent[$parent]) {
            $childId = [int]$child.ProcessId
            if ($seen.ContainsKey($childId)) { continue }
            if ($null -ne $created[$parent] -and $null -ne $child.CreationDate -and $child.CreationDate -lt $created[$parent]) { continue }
            $seen[$childId] = $true
            $found.Add(@{ pid = $childId; name = [string]$child.Name })
            $queue.Enqueue($childId)
        }
    }
    @($found)
}

function Get-CmfAgentSessions {
    # The render sessions the agent runs now: {busy, count, ids, processes, directories, root, worker_id}.
    # The agent runs every session inside its own process (no separate openjd process): a session at
    # work shows as descendant processes of the service's process. Session directories linger after a
    # crash or with retain_session_dir, so they count only while something runs (a hint, not proof).
    param([hashtable]$ServiceInfo, [string]$ConfigText)
    $root = Get-CmfTomlString -Text $ConfigText -Table 'worker' -Key 'session_root_dir'
    if (-not $root) { $root = [IO.Path]::Combine($env:ProgramData, 'Amazon', 'OpenJD') }
    $processes = @()
    if ($ServiceInfo.exists -and $null -ne $ServiceInfo.pid) {
        $processes = @(Get-CmfDescendantProcesses -ProcessId $ServiceInfo.pid)
    }
    $directories = @()
    if ([IO.Directory]::Exists($root)) {
        $directories = @([IO.Directory]::GetDirectories($root) | Sort-Object)
    }
    $workerId = $null
    $workerJson = [IO.Path]::Combine($env:ProgramData, 'Amazon', 'Deadline', 'Cache', 'worker.json')
    try {
        $text = Read-CmfTextFile $workerJson
        if ($text) { $workerId = [string](ConvertFrom-Json -InputObject $text).worker_id }
    }
    catch {
        $workerId = $null  # a worker.json being rewritten now: the id is a label, not a decision
    }
    if (-not $workerId) { $workerId = $null }
    $busy = $processes.Count -gt 0
    @{
        busy = $busy
        count = $(if ($busy) { [Math]::Max(1, $directories.Count) } else { 0 })
        ids = @($directories | ForEach-Object { [IO.Path]::GetFileName($_) })
        processes = @($processes)
        directories = @($directories)
        root = $root
        worker_id = $workerId
    }
}
# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Accounts and local groups (#cmf:include Accounts): resolving an account and the report read_account
# returns, and naming local groups. The same rules as plugin_utils/_windows/ (accounts.py, user_rights.py and groups.py), which
# the simulated worker runs: keep them in step.
#  - Names resolve through NTAccount.Translate, `.\name` meaning this computer; groups and members
#    are compared by SID. LocalSystem, LocalService and NetworkService map to their SIDs first.
#  - Local groups are listed through ADSI, their members as SIDs alone (NetLocalGroupGetMembers level
#    0: it survives orphaned SIDs, on which Get-LocalGroupMember fails, and asks no domain controller).
#    Names and kinds are looked up only for the account's own groups, in one LsaLookupSids call for
#    this computer's SIDs and one for a domain's (whose failure leaves them unnamed), so that a
#    reading stays fast, and goes on, when no domain controller answers.
#  - The account's token groups: its domain groups (nested ones included) from an S4U logon, the
#    groups every service logon carries (Everyone, Authenticated Users, SERVICE), and the local groups
#    that hold any of these or the account. They are "known" only when the domain answered.
#  - The rights a domain GPO defines come from the resultant set of policy of the last refresh.

# (lib Refusal is already included above)
# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Native calls (#cmf:include Native): the LSA (user rights on an account's SID, never secedit, whose
# export and import of the whole policy rewrites other accounts' rights; names of many SIDs in one
# lookup), netapi32 (a local group's members as SIDs, the DC locator) and a process's token (the
# groups the agent's service process runs with). Only operations that make these calls include this file, and
# Initialize-CmfNative compiles the C# at its first use, once per call (Add-Type costs time on
# every run). The C# is C# 5: Windows PowerShell 5.1 compiles it with the .NET Framework compiler.

# (lib Refusal is already included above)

function Initialize-CmfNative {
    if ('DeadlineCloudCmf.Lsa' -as [type]) { return }
    $blocked = Get-CmfLanguageRefusal
    if ($blocked) { throw (New-CmfRefusal $blocked.error_code $blocked.error) }
    Add-Type -TypeDefinition @'
// The fields of the structures below are written by the marshaller, never by this code: without
// this, the compiler warns (CS0649), and Windows PowerShell 5.1's Add-Type fails on a warning.
#pragma warning disable 649
using System;
using System.Collections.Generic;
using System.ComponentModel;
using System.Runtime.InteropServices;
using System.Security.Principal;

namespace DeadlineCloudCmf
{
    // One SID as LsaLookupSids names it: Use is its SID_NAME_USE (1 user, 2 group, 4 alias, 5 well-known
    // group, 6 deleted, 7 invalid, 8 unknown, 9 computer); Name is DOMAIN\name, "" when it does not map.
    public sealed class SidName
    {
        public string Sid;
        public string Name;
        public int Use;
    }

    public static class Lsa
    {
        const uint STATUS_OBJECT_NAME_NOT_FOUND = 0xC0000034;  // the account holds no right
        const uint STATUS_SOME_NOT_MAPPED = 0x00000107;  // a success: the SIDs that do not map are SidTypeUnknown
        const uint STATUS_NONE_MAPPED = 0xC0000073;
        const uint STATUS_NO_SUCH_PRIVILEGE = 0xC0000060;  // a name that is no privilege or logon right
        const int POLICY_LOOKUP_NAMES = 0x00000800;
        const int POLICY_CREATE_ACCOUNT = 0x00000010;
        const int POLICY_VIEW_LOCAL_INFORMATION = 0x00000001;

        [StructLayout(LayoutKind.Sequential)]
        struct LSA_OBJECT_ATTRIBUTES
        {
            public int Length;
            public IntPtr RootDirectory;
            public IntPtr ObjectName;
            public int Attributes;
            public IntPtr SecurityDescriptor;
            public IntPtr SecurityQualityOfService;
        }

        [StructLayout(LayoutKind.Sequential, CharSet = CharSet.Unicode)]
        struct LSA_UNICODE_STRING
        {
            public ushort Length;
            public ushort MaximumLength;
            public IntPtr Buffer;
        }

        [StructLayout(LayoutKind.Sequential)]
        struct LSA_TRANSLATED_NAME
        {
            public int Use;
            public LSA_UNICODE_STRING Name;
            public int DomainIndex;
        }

        [StructLayout(LayoutKind.Sequential)]
        struct LSA_TRUST_INFORMATION
        {
            public LSA_UNICODE_STRING Name;
            public IntPtr Sid;
        }

        [StructLayout(LayoutKind.Sequential)]
        struct LSA_REFERENCED_DOMAIN_LIST
        {
            public int Entries;
            public IntPtr Domains;
        }

        [DllImport("advapi32.dll")]
        static extern uint LsaOpenPolicy(IntPtr SystemName, ref LSA_OBJECT_ATTRIBUTES ObjectAttributes, int DesiredAccess, out IntPtr PolicyHandle);
        [DllImport("advapi32.dll")]
        static extern uint LsaLookupSids(IntPtr PolicyHandle, int Count, IntPtr[] Sids, out IntPtr ReferencedDomains, out IntPtr Names);
        [DllImport("advapi32.dll")]
        static extern uint LsaEnumerateAccountRights(IntPtr PolicyHandle, byte[] AccountSid, out IntPtr UserRights, out uint CountOfRights);
        [DllImport("advapi32.dll")]
        static extern uint LsaAddAccountRights(IntPtr PolicyHandle, byte[] AccountSid, LSA_UNICODE_STRING[] UserRights, uint CountOfRights);
        [DllImport("advapi32.dll")]
        static extern uint LsaRemoveAccountRights(IntPtr PolicyHandle, byte[] AccountSid, [MarshalAs(UnmanagedType.U1)] bool AllRights, LSA_UNICODE_STRING[] UserRights, uint CountOfRights);
        [DllImport("advapi32.dll")]
        static extern uint LsaNtStatusToWinError(uint Status);
        [DllImport("advapi32.dll")]
        static extern uint LsaFreeMemory(IntPtr Buffer);
        [DllImport("advapi32.dll")]
        static extern uint LsaClose(IntPtr PolicyHandle);

        [StructLayout(LayoutKind.Sequential)]
        struct LUID
        {
            public uint LowPart;
            public int HighPart;
        }

        [DllImport("advapi32.dll", CharSet = CharSet.Unicode, SetLastError = true)]
        [return: MarshalAs(UnmanagedType.Bool)]
        static extern bool LookupPrivilegeValue(string SystemName, string Name, out LUID Luid);

        // The logon rights, which are no privileges (LookupPrivilegeValue does not know them): the
        // LSA's fixed set since Windows XP.
        static readonly string[] LogonRights = new string[] {
            "SeInteractiveLogonRight", "SeNetworkLogonRight", "SeBatchLogonRight", "SeServiceLogonRight",
            "SeRemoteInteractiveLogonRight", "SeDenyInteractiveLogonRight", "SeDenyNetworkLogonRight",
            "SeDenyBatchLogonRight", "SeDenyServiceLogonRight", "SeDenyRemoteInteractiveLogonRight"
        };

        // Whether this Windows knows the right: asked before any change, so that an unknown name in a
        // list changes nothing (the LSA would answer STATUS_NO_SUCH_PRIVILEGE for it).
        public static bool IsKnownRight(string right)
        {
            foreach (string logon in LogonRights)
                if (string.Equals(logon, right, StringComparison.OrdinalIgnoreCase))
                    return true;
            LUID luid;
            return LookupPrivilegeValue(null, right, out luid);
        }

        // The function, the NTSTATUS in hex and the system's own text for it, as an LSA_ERROR refusal.
        static void Check(uint status, string what)
        {
            if (status == 0)
                return;
            int win32 = (int)LsaNtStatusToWinError(status);
            Exception error = new Exception(string.Format("{0} failed: 0x{1:X8} ({2})", what, status, new Win32Exception(win32).Message));
            // Compared by code, never by text: an unknown right is the contract's UNKNOWN_RIGHT.
            error.Data["CmfCode"] = status == STATUS_NO_SUCH_PRIVILEGE ? "UNKNOWN_RIGHT" : "LSA_ERROR";
            error.Data["NtStatus"] = status;
            throw error;
        }

        static IntPtr Open(int access)
        {
            LSA_OBJECT_ATTRIBUTES attributes = new LSA_OBJECT_ATTRIBUTES();
            attributes.Length = Marshal.SizeOf(typeof(LSA_OBJECT_ATTRIBUTES));
            IntPtr handle;
            Check(LsaOpenPolicy(IntPtr.Zero, ref attributes, access, out handle), "LsaOpenPolicy");
            return handle;
        }

        static byte[] SidBytes(string sid)
        {
            SecurityIdentifier identifier = new SecurityIdentifier(sid);
            byte[] bytes = new byte[identifier.BinaryLength];
            identifier.GetBinaryForm(bytes, 0);
            return bytes;
        }

        public static string[] EnumerateRights(string sid)
        {
            IntPtr policy = Open(POLICY_LOOKUP_NAMES);
            try
            {
                IntPtr buffer;
                uint count;
                uint status = LsaEnumerateAccountRights(policy, SidBytes(sid), out buffer, out count);
                if (status == STATUS_OBJECT_NAME_NOT_FOUND)
                    return new string[0];
                Check(status, "LsaEnumerateAccountRights");
                try
                {
                    List<string> rights = new List<string>();
                    int size = Marshal.SizeOf(typeof(LSA_UNICODE_STRING));
                    for (int i = 0; i < count; i++)
                    {
                        LSA_UNICODE_STRING right = (LSA_UNICODE_STRING)Marshal.PtrToStructure(
                            new IntPtr(buffer.ToInt64() + (long)i * size), typeof(LSA_UNICODE_STRING));
                        rights.Add(Marshal.PtrToStringUni(right.Buffer, right.Length / 2));
                    }
                    return rights.ToArray();
                }
                finally { LsaFreeMemory(buffer); }
            }
            finally { LsaClose(policy); }
        }

        static void Change(string sid, string[] rights, bool add)
        {
            if (rights.Length == 0)
                return;
            LSA_UNICODE_STRING[] strings = new LSA_UNICODE_STRING[rights.Length];
            try
            {
                for (int i = 0; i < rights.Length; i++)
                {
                    strings[i].Buffer = Marshal.StringToHGlobalUni(rights[i]);
                    strings[i].Length = (ushort)(rights[i].Length * 2);
                    strings[i].MaximumLength = (ushort)(rights[i].Length * 2 + 2);
                }
                IntPtr policy = Open(POLICY_LOOKUP_NAMES | POLICY_CREATE_ACCOUNT | POLICY_VIEW_LOCAL_INFORMATION);
                try
                {
                    if (add)
                        Check(LsaAddAccountRights(policy, SidBytes(sid), strings, (uint)strings.Length), "LsaAddAccountRights");
                    else
                        Check(LsaRemoveAccountRights(policy, SidBytes(sid), false, strings, (uint)strings.Length), "LsaRemoveAccountRights");
                }
                finally { LsaClose(policy); }
            }
            finally
            {
                foreach (LSA_UNICODE_STRING s in strings)
                    if (s.Buffer != IntPtr.Zero) Marshal.FreeHGlobal(s.Buffer);
            }
        }

        static string Text(LSA_UNICODE_STRING value)
        {
            return value.Buffer == IntPtr.Zero ? "" : Marshal.PtrToStringUni(value.Buffer, value.Length / 2);
        }

        // Names and kinds of many SIDs in one LsaLookupSids call (one round trip to a domain controller
        // at most, and one time-out when none answers). A SID that does not map keeps Use 8 and no name.
        // failureLeavesUnnamed: a failed call (a domain's SIDs with a broken secure channel:
        // STATUS_TRUSTED_RELATIONSHIP_FAILURE, STATUS_TRUSTED_DOMAIN_FAILURE, no logon servers...) leaves
        // every SID unnamed instead of throwing, as if none mapped.
        public static SidName[] LookupSids(string[] sids, bool failureLeavesUnnamed)
        {
            SidName[] result = new SidName[sids.Length];
            for (int i = 0; i < sids.Length; i++)
            {
                result[i] = new SidName();
                result[i].Sid = sids[i];
                result[i].Name = "";
                result[i].Use = 8;
            }
            if (sids.Length == 0)
                return result;
            IntPtr[] pointers = new IntPtr[sids.Length];
            IntPtr policy = IntPtr.Zero;
            IntPtr domains = IntPtr.Zero;
            IntPtr names = IntPtr.Zero;
            try
            {
                for (int i = 0; i < sids.Length; i++)
                {
                    byte[] bytes = SidBytes(sids[i]);
                    pointers[i] = Marshal.AllocHGlobal(bytes.Length);
                    Marshal.Copy(bytes, 0, pointers[i], bytes.Length);
                }
                policy = Open(POLICY_LOOKUP_NAMES);
                uint status = LsaLookupSids(policy, sids.Length, pointers, out domains, out names);
                if (status == STATUS_NONE_MAPPED)
                    return result;
                if (status != 0 && status != STATUS_SOME_NOT_MAPPED)
                {
                    if (failureLeavesUnnamed)
                        return result;
                    Check(status, "LsaLookupSids");
                }
                LSA_REFERENCED_DOMAIN_LIST list = (LSA_REFERENCED_DOMAIN_LIST)Marshal.PtrToStructure(domains, typeof(LSA_REFERENCED_DOMAIN_LIST));
                int nameSize = Marshal.SizeOf(typeof(LSA_TRANSLATED_NAME));
                int trustSize = Marshal.SizeOf(typeof(LSA_TRUST_INFORMATION));
                for (int i = 0; i < sids.Length; i++)
                {
                    LSA_TRANSLATED_NAME name = (LSA_TRANSLATED_NAME)Marshal.PtrToStructure(
                        new IntPtr(names.ToInt64() + (long)i * nameSize), typeof(LSA_TRANSLATED_NAME));
                    result[i].Use = name.Use;
                    if (name.Use >= 6 && name.Use <= 8)
                        continue;  // deleted, invalid, unknown: no name
                    string domain = "";
                    if (name.DomainIndex >= 0 && name.DomainIndex < list.Entries)
                    {
                        LSA_TRUST_INFORMATION trust = (LSA_TRUST_INFORMATION)Marshal.PtrToStructure(
                            new IntPtr(list.Domains.ToInt64() + (long)name.DomainIndex * trustSize), typeof(LSA_TRUST_INFORMATION));
                        domain = Text(trust.Name);
                    }
                    string account = Text(name.Name);
                    result[i].Name = domain.Length > 0 && name.Use != 3 ? domain + "\\" + account : account;
                }
                return result;
            }
            finally
            {
                if (domains != IntPtr.Zero) LsaFreeMemory(domains);
                if (names != IntPtr.Zero) LsaFreeMemory(names);
                if (policy != IntPtr.Zero) LsaClose(policy);
                foreach (IntPtr pointer in pointers)
                    if (pointer != IntPtr.Zero) Marshal.FreeHGlobal(pointer);
            }
        }

        public static void AddRights(string sid, string[] rights) { Change(sid, rights, true); }
        public static void RemoveRights(string sid, string[] rights) { Change(sid, rights, false); }
    }

    // The token a process runs with, as read by ProcessToken.Read.
    public sealed class ProcessTokenGroups
    {
        public string[] Sids;          // its enabled groups (WindowsIdentity.Groups leaves out deny-only, disabled and logon-id ones)
        public long CreatedFileTime;   // when the process started (UTC FILETIME), read through the same handle
    }

    public static class ProcessToken
    {
        const int PROCESS_QUERY_LIMITED_INFORMATION = 0x1000;
        const int TOKEN_QUERY = 0x0008;

        [DllImport("kernel32.dll", SetLastError = true)]
        static extern IntPtr OpenProcess(int DesiredAccess, [MarshalAs(UnmanagedType.Bool)] bool InheritHandle, int ProcessId);
        [DllImport("advapi32.dll", SetLastError = true)]
        [return: MarshalAs(UnmanagedType.Bool)]
        static extern bool OpenProcessToken(IntPtr ProcessHandle, int DesiredAccess, out IntPtr TokenHandle);
        [DllImport("kernel32.dll", SetLastError = true)]
        [return: MarshalAs(UnmanagedType.Bool)]
        static extern bool GetProcessTimes(IntPtr Process, out long CreationTime, out long ExitTime, out long KernelTime, out long UserTime);
        [DllImport("kernel32.dll")]
        [return: MarshalAs(UnmanagedType.Bool)]
        static extern bool CloseHandle(IntPtr Handle);

        // The function that failed, with the Win32 error it left (read first, before any other call).
        static Win32Exception Failure(string function, int processId)
        {
            int code = Marshal.GetLastWin32Error();
            return new Win32Exception(code, string.Format("{0}({1}) failed: Win32 {2} ({3})", function, processId, code, new Win32Exception(code).Message));
        }

        // The groups of the token process processId runs with, and when it started. A process keeps the
        // token it started with: groups its account joined or left since are not in it. Throws
        // Win32Exception (87: no such process; 5: access denied). Every handle is closed.
        public static ProcessTokenGroups Read(int processId)
        {
            IntPtr process = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, false, processId);
            if (process == IntPtr.Zero)
                throw Failure("OpenProcess", processId);
            try
            {
                long created, exited, kernel, user;
                if (!GetProcessTimes(process, out created, out exited, out kernel, out user))
                    throw Failure("GetProcessTimes", processId);
                IntPtr token;
                if (!OpenProcessToken(process, TOKEN_QUERY, out token))
                    throw Failure("OpenProcessToken", processId);
                try
                {
                    // WindowsIdentity duplicates the handle (TOKEN_QUERY is enough for what is read here).
                    using (WindowsIdentity identity = new WindowsIdentity(token))
                    {
                        List<string> sids = new List<string>();
                        foreach (IdentityReference group in identity.Groups)
                            sids.Add(group.Value);
                        ProcessTokenGroups result = new ProcessTokenGroups();
                        result.Sids = sids.ToArray();
                        result.CreatedFileTime = created;
                        return result;
                    }
                }
                finally { CloseHandle(token); }
            }
            finally { CloseHandle(process); }
        }
    }

    public static class NetApi
    {
        const int MAX_PREFERRED_LENGTH = -1;
        const int DS_FORCE_REDISCOVERY = 0x00000001;
        const int DS_RETURN_DNS_NAME = 0x40000000;

        [StructLayout(LayoutKind.Sequential, CharSet = CharSet.Unicode)]
        struct DOMAIN_CONTROLLER_INFO
        {
            public string DomainControllerName;
            public string DomainControllerAddress;
            public int DomainControllerAddressType;
            public Guid DomainGuid;
            public string DomainName;
            public string DnsForestName;
            public int Flags;
            public string DcSiteName;
            public string ClientSiteName;
        }

        [DllImport("netapi32.dll", CharSet = CharSet.Unicode)]
        static extern int NetLocalGroupGetMembers(string ServerName, string LocalGroupName, int Level, out IntPtr Buffer, int PreferredMaximumLength, out int EntriesRead, out int TotalEntries, IntPtr ResumeHandle);
        [DllImport("netapi32.dll", CharSet = CharSet.Unicode)]
        static extern int DsGetDcName(string ComputerName, string DomainName, IntPtr DomainGuid, string SiteName, int Flags, out IntPtr DomainControllerInfo);
        [DllImport("netapi32.dll")]
        static extern int NetApiBufferFree(IntPtr Buffer);

        // The SIDs of a local group's members. Level 0 (LOCALGROUP_MEMBERS_INFO_0: a PSID each) looks no
        // name up: no domain controller is asked, and an orphaned SID is listed like any other. Throws
        // Win32Exception with the NET_API_STATUS (2220 NERR_GroupNotFound).
        public static string[] LocalGroupMemberSids(string groupName)
        {
            IntPtr buffer;
            int read;
            int total;
            int status = NetLocalGroupGetMembers(null, groupName, 0, out buffer, MAX_PREFERRED_LENGTH, out read, out total, IntPtr.Zero);
            try
            {
                if (status != 0)
                    throw new Win32Exception(status, string.Format("NetLocalGroupGetMembers({0}) failed: {1} ({2})", groupName, status, new Win32Exception(status).Message));
                string[] sids = new string[read];
                for (int i = 0; i < read; i++)
                    sids[i] = new SecurityIdentifier(Marshal.ReadIntPtr(buffer, i * IntPtr.Size)).Value;
                return sids;
            }
            finally
            {
                if (buffer != IntPtr.Zero) NetApiBufferFree(buffer);
            }
        }

        // 0 when the DC locator finds a domain controller of the domain ("" for the computer's own), else
        // its Win32 error (1355 ERROR_NO_SUCH_DOMAIN: none answers, or no such domain). Asked only after
        // a lookup failed, so the locator asks the network (DS_FORCE_REDISCOVERY): from its cache it
        // would name a domain controller that went away up to 15 minutes ago.
        public static int DomainControllerStatus(string domainName)
        {
            IntPtr info;
            int status = DsGetDcName(null, string.IsNullOrEmpty(domainName) ? null : domainName, IntPtr.Zero, null, DS_FORCE_REDISCOVERY, out info);
            if (info != IntPtr.Zero) NetApiBufferFree(info);
            return status;
        }

        // The DNS name of a domain given by its NetBIOS name (EU -> eu.corp.example.com), as the DC
        // locator knows it (its cache will do: a name, not a question whether the domain answers now);
        // null when it finds no domain controller of it.
        public static string DomainDnsName(string domainName)
        {
            IntPtr info;
            int status = DsGetDcName(null, domainName, IntPtr.Zero, null, DS_RETURN_DNS_NAME, out info);
            try
            {
                if (status != 0 || info == IntPtr.Zero)
                    return null;
                DOMAIN_CONTROLLER_INFO found = (DOMAIN_CONTROLLER_INFO)Marshal.PtrToStructure(info, typeof(DOMAIN_CONTROLLER_INFO));
                return string.IsNullOrEmpty(found.DomainName) ? null : found.DomainName;
            }
            finally
            {
                if (info != IntPtr.Zero) NetApiBufferFree(info);
            }
        }
    }
}
'@
}

function Get-CmfRights {
    # The rights held directly by a SID, sorted; an account that holds none is an empty list.
    param([string]$Sid)
    Initialize-CmfNative
    [string[]]@([DeadlineCloudCmf.Lsa]::EnumerateRights($Sid) | Sort-Object)
}

# Win32 errors that mean the domain could not be asked: ERROR_NO_SUCH_DOMAIN, ERROR_NO_LOGON_SERVERS,
# RPC_S_SERVER_UNAVAILABLE, ERROR_TRUSTED_RELATIONSHIP_FAILURE, ERROR_TRUSTED_DOMAIN_FAILURE.
$script:DomainUnreachableErrors = @(1355, 1311, 1722, 1789, 1788)
# Every service logon's token has these (MS-DTYP 2.4.2.4): Everyone, Authenticated Users, SERVICE.
$script:ImplicitGroups = @('S-1-1-0', 'S-1-5-11', 'S-1-5-6')

function Assert-CmfNotDomainController {
    # A domain controller has no local groups (its "local" groups are the domain's BUILTIN ones) and
    # `.\name` names nothing on it: converging a worker there would change the whole domain.
    $system = Get-CimInstance -ClassName Win32_OperatingSystem -Property ProductType
    if ([int]$system.ProductType -eq 2) {
        throw (New-CmfRefusal 'DOMAIN_CONTROLLER' ("$env:COMPUTERNAME is a domain controller: it has no local groups or local accounts " +
                '(changing its groups and rights would change them for every domain controller of the domain). ' +
                'Run the worker on a member server or workstation.'))
    }
}

function Get-CmfWin32Code {
    # The Win32 error behind a failed Translate, or $null. .NET Framework throws a plain
    # SystemException holding only the system's text for the code: it is compared with the texts
    # this host gives for the known codes (the same language), never with English words.
    param([Exception]$Exception)
    if ($Exception -is [ComponentModel.Win32Exception]) { return $Exception.NativeErrorCode }
    # On .NET Framework the SystemException holds FormatMessage's raw text, which ends in CR LF and a
    # full stop that Win32Exception's Message has trimmed: compare both trimmed the same way.
    $trim = " `t`r`n.".ToCharArray()
    $message = ([string]$Exception.Message).TrimEnd($trim)
    foreach ($code in $script:DomainUnreachableErrors) {
        if ($message -eq ((New-Object ComponentModel.Win32Exception $code).Message).TrimEnd($trim)) { return $code }
    }
    $null
}

function Get-CmfOwnDomainNames {
    # The names of this computer's own domains, which never need a domain controller: `.`, its name,
    # and BUILTIN, NT AUTHORITY and NT SERVICE as this Windows names them (VORDEFINIERT, and
    # NT-AUTORITAET with an umlaut, on a German host), taken from their SIDs (translated here, with no
    # domain controller) rather than compared with English words; the English names too.
    $names = @('.', $env:COMPUTERNAME, 'BUILTIN', 'NT AUTHORITY', 'NT SERVICE')
    foreach ($sid in @('S-1-5-32-544', 'S-1-5-18', 'S-1-5-80-0')) {
        try {
            $names += (New-Object Security.Principal.SecurityIdentifier $sid).Translate([Security.Principal.NTAccount]).Value.Split('\', 2)[0]
        }
        catch {
            Write-Verbose "no name for $sid`: $($_.Exception.Message)"
        }
    }
    $names
}

function Test-CmfDomainMember {
    # Whether this computer is joined to a domain (else no name or SID it does not map has a domain to ask).
    [bool](Get-CimInstance -ClassName Win32_ComputerSystem -Property PartOfDomain).PartOfDomain
}

function Get-CmfUnreachableDomainCode {
    # The DC locator's Win32 error when no domain controller of $Domain (the computer's own for '')
    # answers, else $null. DsGetDcName is the question Windows itself asks before any domain lookup.
    param([string]$Domain)
    Initialize-CmfNative
    $status = [DeadlineCloudCmf.NetApi]::DomainControllerStatus($Domain)
    if ($script:DomainUnreachableErrors -contains $status) { return $status }
    $null
}

function Resolve-CmfAccount {
    # @{ sid; name; domain } of an account given as name, .\name, HOST\name, DOMAIN\name, name@domain or SID.
    param([string]$Account)
    $text = $Account.Trim()
    $wellKnown = Get-CmfServiceAccountSid $text
    try {
        if ($wellKnown) {
            $sid = New-Object Security.Principal.SecurityIdentifier $wellKnown
        }
        elseif (Test-CmfSid $text) {
            $sid = New-Object Security.Principal.SecurityIdentifier ('S' + $text.Substring(1))
        }
        else {
            if ($text.StartsWith('.\')) {
                $text = "$env:COMPUTERNAME\" + $text.Substring(2)
            }
            $sid = (New-Object Security.Principal.NTAccount $text).Translate([Security.Principal.SecurityIdentifier])
        }
        $name = $sid.Translate([Security.Principal.NTAccount]).Value
    }
    catch {
        $cause = Get-CmfInnerException $_.Exception
        if ($cause -is [Security.Principal.IdentityNotMappedException]) {
            # Not mapped: missing, or of a domain no controller answered for (LookupAccountName cannot
            # tell them apart). The DC locator can: an unreachable domain is never "not found".
            $domain = $null
            if ($text.Contains('\')) { $domain = $text.Split('\', 2)[0] }
            elseif ($text.Contains('@')) { $domain = $text.Split('@', 2)[1] }
            elseif ($wellKnown -or (Test-CmfSid $text)) {
                # A SID: this computer maps its own (its accounts, BUILTIN, NT AUTHORITY) without a domain
                # controller, so an unmapped one is not found; only a domain's SID needs one, and only on a
                # domain member (a workgroup computer has no domain to ask: DsGetDcName would answer 1355).
                if (-not $wellKnown -and (Test-CmfDomainSid ('S' + $text.Substring(1))) -and (Test-CmfDomainMember)) { $domain = '' }
            }
            elseif (Test-CmfDomainMember) { $domain = '' }
            # -notcontains ignores case, as Windows does for these names
            if ($null -ne $domain -and @(Get-CmfOwnDomainNames) -notcontains $domain) {
                $code = Get-CmfUnreachableDomainCode $domain
                if ($null -ne $code) {
                    $which = $(if ($domain) { "the domain '$domain'" } else { "the computer's domain" })
                    throw (New-CmfRefusal 'DOMAIN_UNREACHABLE' ("account '$Account' cannot be resolved: no domain controller of $which " +
                            "answers $env:COMPUTERNAME (DsGetDcName: Win32 $code`: $((New-Object ComponentModel.Win32Exception $code).Message)); " +
                            'a domain that does not exist looks the same from here'))
                }
            }
            throw (New-CmfRefusal 'ACCOUNT_NOT_FOUND' "account '$Account' does not exist (as resolved from $env:COMPUTERNAME)")
        }
        $code = Get-CmfWin32Code $cause
        if ($null -ne $code -and $script:DomainUnreachableErrors -contains $code) {
            throw (New-CmfRefusal 'DOMAIN_UNREACHABLE' "account '$Account' cannot be resolved: $env:COMPUTERNAME cannot contact its domain (Win32 $code`: $($cause.Message))")
        }
        throw (New-CmfRefusal 'ACCOUNT_LOOKUP_FAILED' "account '$Account' could not be looked up on ${env:COMPUTERNAME}: $($cause.GetType().FullName): $($cause.Message)")
    }
    $parts = $name.Split('\', 2)
    @{ sid = $sid.Value; name = $name; domain = $(if ($parts.Count -eq 2) { $parts[0] } else { '' }) }
}

function Get-CmfLocalGroups {
    # Every local group: @{ name; sid; entry } (entry: its ADSI object).
    $computer = [ADSI]"WinNT://$env:COMPUTERNAME,computer"
    $children = $computer.psbase.Children  # a new collection at each access: filter this one
    $children.SchemaFilter.Add('group') | Out-Null
    foreach ($entry in $children) {
        if ($entry.psbase.SchemaClassName -ne 'Group') { continue }
        $sid = New-Object Security.Principal.SecurityIdentifier ([byte[]]$entry.psbase.InvokeGet('objectSid')), 0
        @{ name = [string]$entry.psbase.Name; sid = $sid.Value; entry = $entry }
    }
}

function Get-CmfMachineSidPrefix {
    # The SID prefix of this computer's own accounts (S-1-5-21-a-b-c-), from its local users (SID ->
    # anything, as Get-CmfLocalUsers gives them); $null when there is none.
    param([hashtable]$LocalUsers)
    @($LocalUsers.Keys | Where-Object { $_ -like 'S-1-5-21-*' } | ForEach-Object { $_.Substring(0, $_.LastIndexOf('-') + 1) }) |
        Select-Object -First 1
}

function Test-CmfDomainSid {
    # Whether only a domain controller can map $Sid: an account SID (S-1-5-21-...) outside this
    # computer's own prefix (accounts.is_domain_sid). Without $MachinePrefix the local users are read
    # for it (asked for one SID that did not map).
    param([string]$Sid, [string]$MachinePrefix)
    if ($Sid -notlike 'S-1-5-21-*') { return $false }
    $prefix = $MachinePrefix
    if (-not $PSBoundParameters.ContainsKey('MachinePrefix')) { $prefix = Get-CmfMachineSidPrefix -LocalUsers (Get-CmfLocalUsers) }
    -not ($prefix -and $Sid.StartsWith($prefix, [StringComparison]::OrdinalIgnoreCase))
}

function Get-CmfLocalUsers {
    # The local users, SID -> @{ enabled }: one WMI query (LocalAccount=TRUE keeps it from asking the domain).
    $users = @{}
    foreach ($user in @(Get-CimInstance -ClassName Win32_UserAccount -Filter 'LocalAccount=TRUE')) {
        $users[[string]$user.SID] = @{ enabled = -not $user.Disabled }
    }
    $users
}

function Get-CmfSidNames {
    # SID -> @{ name; use } for many SIDs (use: SID_NAME_USE; 6 deleted, 7 invalid and 8 unknown have no
    # name: the SID itself stands for it), in two LsaLookupSids calls. This computer names its own SIDs
    # (its accounts', BUILTIN, NT AUTHORITY: every SID but a domain's) itself, so a failure there is
    # real and fails the reading. A domain's SIDs (S-1-5-21-... outside $MachinePrefix: members of the
    # account's groups, Domain Admins in Administrators) need a domain controller: a failure of their
    # call (a broken secure channel, none answering) leaves them unnamed, unreadable, and the reading
    # goes on, as it must for a local account whose groups hold a domain's members.
    param([string[]]$Sids, [string]$MachinePrefix)
    $names = @{}
    $unique = @($Sids | Where-Object { $_ } | Select-Object -Unique)
    if ($unique.Count -eq 0) { return $names }
    Initialize-CmfNative
    $domainSids = @($unique | Where-Object { Test-CmfDomainSid -Sid $_ -MachinePrefix $MachinePrefix })
    $ownSids = @($unique | Where-Object { $domainSids -notcontains $_ })
    $found = @([DeadlineCloudCmf.Lsa]::LookupSids([string[]]$ownSids, $false)) + @([DeadlineCloudCmf.Lsa]::LookupSids([string[]]$domainSids, $true))
    foreach ($entry in $found) {
        $names[$entry.Sid] = @{ name = $(if ($entry.Name) { $entry.Name } else { $entry.Sid }); use = $entry.Use }
    }
    $names
}

function Get-CmfGroupMember {
    # One member of a local group as read_account reports it: @{ sid; name; type; enabled; orphaned }
    # (+ unreadable). A SID of this computer that does not map is an orphan (the SAM is the authority
    # for it); one of a domain that does not map may be deleted or out of reach: unreadable, counted live.
    param([string]$Sid, [hashtable]$Names, [hashtable]$LocalUsers, [string]$MachinePrefix)
    $found = $Names[$Sid]
    $use = $(if ($found) { [int]$found.use } else { 8 })
    if ($use -ge 6 -and $use -le 8) {
        if ($Sid -notlike 'S-1-5-21-*') { return @{ sid = $Sid; name = $Sid; type = 'well_known'; enabled = $true; orphaned = $false } }
        if ($use -eq 6 -or ($MachinePrefix -and $Sid.StartsWith($MachinePrefix))) {
            return @{ sid = $Sid; name = $Sid; type = 'unknown'; enabled = $false; orphaned = $true }
        }
        return @{ sid = $Sid; name = $Sid; type = 'unknown'; enabled = $true; orphaned = $false; unreadable = $true }
    }
    $type = 'group'  # a group, an alias
    if ($use -eq 1 -or $use -eq 9) { $type = 'user' }  # a user, a computer
    elseif ($use -eq 5) { $type = 'well_known' }
    $enabled = $true
    if ($LocalUsers.ContainsKey($Sid)) { $enabled = [bool]$LocalUsers[$Sid].enabled }
    @{ sid = $Sid; name = $found.name; type = $type; enabled = $enabled; orphaned = $false }
}

function Get-CmfDomainGroupSids {
    # The SIDs of the domain groups in a domain account's token, nested ones included: @{ known; sids;
    # error }. An S4U logon (a WindowsIdentity made from the account's UPN): the computer's own Kerberos
    # asks the domain controller for the groups (S4U2Self), so it works over WinRM without the
    # connection's credentials travelling on (a double hop), which reading tokenGroups over LDAP needs.
    # Fails closed: any failure leaves the groups unknown, and says whether the domain was out of reach.
    param([hashtable]$Resolved, [string]$Account, [string[]]$LocalGroupSids)
    $sam = $Resolved.name.Split('\', 2)[1]
    $upn = $Account.Trim()
    if (-not $upn.Contains('@')) {
        # sam@<the DNS name of the account's own domain>, the implicit UPN Kerberos knows it by: an account
        # of another domain of the forest is not in the computer's. The computer's domain when the DC
        # locator does not know the account's (the S4U logon then says why it fails).
        $suffix = [DeadlineCloudCmf.NetApi]::DomainDnsName($Resolved.domain)
        if (-not $suffix) { $suffix = (Get-CimInstance -ClassName Win32_ComputerSystem -Property Domain).Domain }
        $upn = "$sam@$suffix"
    }
    $identity = $null
    try {
        $identity = New-Object Security.Principal.WindowsIdentity -ArgumentList $upn
        if ($identity.User.Value -ne $Resolved.sid) {
            return @{ known = $false; sids = @(); error = @{ code = 'TOKEN_GROUPS_FAILED'; message = (
                        "$upn names $($identity.User.Value), not $($Resolved.name) ($($Resolved.sid)): the account's groups cannot be " +
                        'read through that name (give the account as its own UPN, name@domain)') } }
        }
        $sids = @($identity.Groups | ForEach-Object { $_.Value } | Where-Object { $_ -like 'S-1-5-21-*' -and $LocalGroupSids -notcontains $_ })
        return @{ known = $true; sids = @($sids); error = $null }
    }
    catch {
        $cause = Get-CmfInnerException $_.Exception
        $code = Get-CmfUnreachableDomainCode $Resolved.domain
        if ($null -ne $code) {
            return @{ known = $false; sids = @(); error = @{ code = 'DOMAIN_UNREACHABLE'; message = (
                        "no domain controller of $($Resolved.domain) answers $env:COMPUTERNAME (DsGetDcName: Win32 $code); the S4U logon " +
                        "of $upn failed: $($cause.Message)") } }
        }
        return @{ known = $false; sids = @(); error = @{ code = 'TOKEN_GROUPS_FAILED'; message = "the S4U logon of $upn failed: $($cause.GetType().FullName): $($cause.Message)" } }
    }
    finally {
        if ($null -ne $identity) { $identity.Dispose() }
    }
}

function Get-CmfPolicyRightSettings {
    # The user rights a domain GPO defines here, from the resultant set of policy of the last refresh:
    # @{ known; domain_member; rights = @{ right = @(holder text) }; error }. RSOP_UserPrivilegeRight in
    # root\rsop\computer is a local WMI read: it works over WinRM with no extra feature (no RSAT or
    # GPMC, no gpresult report file), and it says which rights a GPO owns, which secedit's export of the
    # merged policy cannot. Fails closed: a domain member whose policy result cannot be read is unknown.
    $system = Get-CimInstance -ClassName Win32_ComputerSystem -Property PartOfDomain
    if (-not $system.PartOfDomain) { return @{ known = $true; domain_member = $false; rights = @{}; error = $null } }
    $key = [Microsoft.Win32.Registry]::LocalMachine.OpenSubKey('SOFTWARE\Policies\Microsoft\Windows\System')
    if ($null -ne $key) {
        try { $logging = $key.GetValue('RSoPLogging') } finally { $key.Dispose() }
        if ($null -ne $logging -and [int]$logging -eq 0) {
            return @{ known = $false; domain_member = $true; rights = @{}; error = (
                    "a policy turns Resultant Set of Policy logging off (RSoPLogging = 0) on $env:COMPUTERNAME: which rights a GPO defines is not recorded") }
        }
    }
    try {
        $settings = @(Get-CimInstance -Namespace 'root\rsop\computer' -ClassName RSOP_UserPrivilegeRight -Filter 'precedence=1')
    }
    catch {
        return @{ known = $false; domain_member = $true; rights = @{}; error = "reading root\rsop\computer failed: $($_.Exception.Message)" }
    }
    $rights = @{}
    foreach ($setting in $settings) { $rights[[string]$setting.UserRight] = @($setting.AccountList | Where-Object { $_ } | ForEach-Object { [string]$_ }) }
    @{ known = $true; domain_member = $true; rights = $rights; error = $null }
}

function ConvertTo-CmfHolderSid {
    # A GPO's holder as written in its template (*S-1-..., or DOMAIN\name) as a SID, or $null when the
    # name does not resolve here (it then names no account of this host: never a match).
    param([string]$Holder)
    $text = $Holder.Trim().TrimStart('*')
    if (Test-CmfSid $text) { return 'S' + $text.Substring(1) }
    try {
        return (New-Object Security.Principal.NTAccount $text).Translate([Security.Principal.SecurityIdentifier]).Value
    }
    catch {
        return $null
    }
}

function Get-AccountReport {
    # The report read_account returns (see read_account.ps1); other operations include this file and call it.
    param([Parameter(Mandatory)][string]$Account)
    Assert-CmfNotDomainController
    Initialize-CmfNative
    $resolved = Resolve-CmfAccount -Account $Account
    $localUsers = Get-CmfLocalUsers
    $localGroups = @(Get-CmfLocalGroups)
    $localGroupSids = @($localGroups | ForEach-Object { $_.sid })
    $members = @{}
    foreach ($group in $localGroups) { $members[$group.sid] = @([DeadlineCloudCmf.NetApi]::LocalGroupMemberSids($group.name)) }
    # The SID prefix of this computer's own accounts: an unmapped SID under it is certainly an orphan.
    $machinePrefix = Get-CmfMachineSidPrefix -LocalUsers $localUsers

    $isGroup = $localGroupSids -contains $resolved.sid
    # A domain's account by its SID (S-1-5-21 outside this computer's prefix: accounts.is_domain_account),
    # never by its domain's name, which Windows localizes (LocalSystem is NT-AUTORITAET\SYSTEM, with an
    # umlaut, on a German host): a domain's name would send SYSTEM to an S4U logon in the domain.
    $isDomain = (Test-CmfDomainSid -Sid $resolved.sid -MachinePrefix $machinePrefix) -and -not $isGroup
    $carried = @($resolved.sid)
    if (-not $isGroup) { $carried += $script:ImplicitGroups }
    $domainGroups = @{ known = $true; sids = @(); error = $null }
    if ($isDomain) {
        $domainGroups = Get-CmfDomainGroupSids -Resolved $resolved -Account $Account -LocalGroupSids $localGroupSids
        $carried += @($domainGroups.sids)
    }
    $mine = @($localGroups | Where-Object { $null -ne (@($members[$_.sid]) | Where-Object { $carried -contains $_ } | Select-Object -First 1) })
    $tokenSids = @($mine | ForEach-Object { $_.sid }) + @($domainGroups.sids)
    if (-not $isGroup) { $tokenSids += $script:ImplicitGroups }

    $policy = Get-CmfPolicyRightSettings
    $holderSids = @{}
    foreach ($right in @($policy.rights.Keys)) {
        foreach ($holder in @($policy.rights[$right])) { $holderSids[$holder] = ConvertTo-CmfHolderSid $holder }
    }
    $ownMembers = @($mine | ForEach-Object { $members[$_.sid] })
    $names = Get-CmfSidNames -Sids (@($resolved.sid) + $tokenSids + $ownMembers + @($holderSids.Values)) -MachinePrefix $machinePrefix

    $groups = [Collections.Generic.List[object]]@()
    $groupMembers = @{}
    foreach ($group in $mine) {
        $groups.Add(@{ name = $group.name; sid = $group.sid; indirect = -not (@($members[$group.sid]) -contains $resolved.sid) })
        $groupMembers[$group.sid] = @(@($members[$group.sid]) | ForEach-Object {
                Get-CmfGroupMember -Sid $_ -Names $names -LocalUsers $localUsers -MachinePrefix $machinePrefix })
    }
    $tokenGroups = @(foreach ($sid in $tokenSids) {
            $local = $localGroups | Where-Object { $_.sid -eq $sid } | Select-Object -First 1
            $scope = $(if ($local) { 'local' } elseif ($script:ImplicitGroups -contains $sid) { 'well_known' } else { 'domain' })
            $name = $(if ($local) { $local.name } elseif ($names[$sid]) { $names[$sid].name } else { $sid })
            @{ sid = $sid; name = $name; scope = $scope }
        })
    $groupRights = @{}
    foreach ($sid in $tokenSids) { $groupRights[$sid] = @(Get-CmfRights -Sid $sid) }
    $policyRights = @{}
    foreach ($right in @($policy.rights.Keys)) {
        $policyRights[$right] = @(foreach ($holder in @($policy.rights[$right])) {
                $sid = $holderSids[$holder]
                @{ sid = $sid; name = $(if ($sid -and $names[$sid]) { $names[$sid].name } else { $holder.TrimStart('*') }) }
            })
    }

    $type = 'well_known'
    $enabled = $true
    if ($localUsers.ContainsKey($resolved.sid)) { $type = 'user'; $enabled = [bool]$localUsers[$resolved.sid].enabled }
    elseif ($isGroup) { $type = 'group' }
    elseif ($names[$resolved.sid] -and @(2, 4) -contains [int]$names[$resolved.sid].use) { $type = 'group' }
    elseif ($resolved.sid -like 'S-1-5-21-*') { $type = 'user' }
    @{
        hostname = $env:COMPUTERNAME
        sid = $resolved.sid
        name = $resolved.name
        domain = $resolved.domain
        type = $type
        enabled = [bool]$enabled
        groups = @($groups | Sort-Object -Property { $_.name })
        rights = @(Get-CmfRights -Sid $resolved.sid)
        group_rights = $groupRights
        local_groups = @($localGroups | ForEach-Object { @{ name = $_.name; sid = $_.sid } })
        group_members = $groupMembers
        token_groups = @($tokenGroups | Sort-Object -Property { $_.name })
        token_groups_known = [bool]$domainGroups.known
        token_groups_error = $domainGroups.error
        group_policy = @{ known = [bool]$policy.known; domain_member = [bool]$policy.domain_member; rights = $policyRights; error = $policy.error }
        connection_sid = [Security.Principal.WindowsIdentity]::GetCurrent().User.Value
    }
}

# English names of BUILTIN groups, so one task also names them on a localized host.
$script:WellKnownGroups = @{
    'administrators' = 'S-1-5-32-544'; 'users' = 'S-1-5-32-545'; 'guests' = 'S-1-5-32-546'
    'power users' = 'S-1-5-32-547'; 'account operators' = 'S-1-5-32-548'; 'server operators' = 'S-1-5-32-549'
    'print operators' = 'S-1-5-32-550'; 'backup operators' = 'S-1-5-32-551'; 'replicator' = 'S-1-5-32-552'
    'remote desktop users' = 'S-1-5-32-555'; 'network configuration operators' = 'S-1-5-32-556'
    'performance monitor users' = 'S-1-5-32-558'; 'performance log users' = 'S-1-5-32-559'
    'distributed com users' = 'S-1-5-32-562'; 'iis_iusrs' = 'S-1-5-32-568'; 'cryptographic operators' = 'S-1-5-32-569'
    'event log readers' = 'S-1-5-32-573'; 'hyper-v administrators' = 'S-1-5-32-578'; 'remote management users' = 'S-1-5-32-580'
}

function Get-CmfBuiltinDomainName {
    # The name Windows gives the BUILTIN domain (S-1-5-32) here: VORDEFINIERT on a German host.
    try {
        $name = (New-Object Security.Principal.SecurityIdentifier 'S-1-5-32-544').Translate([Security.Principal.NTAccount]).Value
        return $name.Split('\', 2)[0]
    }
    catch {
        return 'BUILTIN'
    }
}

function Resolve-CmfLocalGroup {
    # A local group (from Get-CmfLocalGroups) named by SID, local name, .\ / BUILTIN\ (or its localized
    # name) / HOST\ name, or the English name of a BUILTIN group; $null when there is none.
    param([string]$Group, [object[]]$LocalGroups, [string]$BuiltinName)
    $text = $Group.Trim()
    if (Test-CmfSid $text) {
        $sid = 'S' + $text.Substring(1)
        return $LocalGroups | Where-Object { $_.sid -eq $sid } | Select-Object -First 1
    }
    if ($text.Contains('\')) {
        $domain, $text = $text.Split('\', 2)
        # -notcontains ignores case, as Windows does for these names
        if (@('.', 'BUILTIN', $BuiltinName, $env:COMPUTERNAME) -notcontains $domain) {
            return $null  # a domain group is not a local group
        }
    }
    $match = $LocalGroups | Where-Object { $_.name -eq $text } | Select-Object -First 1  # -eq ignores case
    if ($match) { return $match }
    $alias = $script:WellKnownGroups[$text.ToLowerInvariant()]
    if ($alias) {
        return $LocalGroups | Where-Object { $_.sid -eq $alias } | Select-Object -First 1
    }
    $null
}

function Get-CmfServicePython {
    # pywin32 runs the service through pythonservice.exe in the Python's exec_prefix (domain notes, section 5).
    param([hashtable]$ServiceInfo)
    $image = [string]$ServiceInfo.image_path
    if (-not $image) { return $null }
    if ($image.StartsWith('"')) { $image = $image.Substring(1, $image.IndexOf('"', 1) - 1) }
    elseif ($image -match '^(.+?\.exe)') { $image = $Matches[1] }
    $folder = [IO.Path]::GetDirectoryName($image)
    foreach ($candidate in @(
            [IO.Path]::Combine($folder, 'python.exe'),
            [IO.Path]::Combine($folder, 'Scripts', 'python.exe'),
            [IO.Path]::Combine([IO.Path]::GetDirectoryName($folder), 'python.exe'))) {
        if ([IO.File]::Exists($candidate)) { return $candidate }
    }
    return $null
}

function Invoke-CmfProgram {
    # Runs a program with its own stdout and stderr: @{ exit_code; stdout; stderr }. Not `& program
    # 2>&1`: Windows PowerShell 5.1 under ErrorActionPreference Stop turns the first stderr line into
    # a terminating error. stderr is read asynchronously so that neither pipe can fill and block.
    param([string]$FilePath, [string]$Arguments, [int]$TimeoutSeconds = 120)
    $start = New-Object Diagnostics.ProcessStartInfo
    $start.FileName = $FilePath
    $start.Arguments = $Arguments
    $start.UseShellExecute = $false
    $start.CreateNoWindow = $true
    $start.RedirectStandardOutput = $true
    $start.RedirectStandardError = $true
    $process = [Diagnostics.Process]::Start($start)
    try {
        $stderrRead = $process.StandardError.ReadToEndAsync()
        $stdoutRead = $process.StandardOutput.ReadToEndAsync()
        if (-not $process.WaitForExit($TimeoutSeconds * 1000)) {
            try { $process.Kill() } catch { Write-Verbose "the program had ended meanwhile" }
            return @{ exit_code = $null; stdout = ''; stderr = "$FilePath did not finish within $TimeoutSeconds seconds" }
        }
        $process.WaitForExit()  # the pipes are complete only after the parameterless wait
        return @{ exit_code = $process.ExitCode; stdout = $stdoutRead.Result; stderr = $stderrRead.Result }
    }
    finally {
        $process.Dispose()
    }
}

function Get-CmfAgentVersion {
    param([hashtable]$ServiceInfo)
    $python = Get-CmfServicePython $ServiceInfo
    $result = @{ version = $null; location = $null; python = $python; error = $null }
    if (-not $python) {
        $result.error = "no python.exe beside the service's executable ($($ServiceInfo.image_path))"
        return $result
    }
    # -I: no PYTHON* variables, no user site. The version from the distribution's metadata and the
    # folder from find_spec: nothing of the agent is imported (its import has side effects and can
    # fail on its own). No double quotes in the code: it travels inside one quoted argument.
    $code = 'import json,os,importlib.util as u;from importlib.metadata import version as v;' +
    "s=u.find_spec('deadline_worker_agent');" +
    "print(json.dumps([v('deadline-cloud-worker-agent'),os.path.dirname(s.origin) if s and s.origin else None]))"
    try {
        $run = Invoke-CmfProgram -FilePath $python -Arguments "-I -c `"$code`""
        if ($run.exit_code -ne 0) {
            $result.error = "$python exited with $($run.exit_code): $(([string]$run.stderr).Trim())"
            return $result
        }
        $lines = @(([string]$run.stdout) -split "`r?`n" | Where-Object { $_.Trim() })
        $parsed = @(ConvertFrom-Json -InputObject $lines[-1])
        $result.version = [string]$parsed[0]
        $result.location = $(if ($null -ne $parsed[1]) { [string]$parsed[1] } else { $null })
    }
    catch {
        $result.error = "reading the agent's version with $python failed: $($_.Exception.Message) $(([string]$run.stderr).Trim())".Trim()
    }
    return $result
}

function Read-CmfAgentVariables {
    # The agent's variables (DEADLINE_WORKER_*, case-insensitive as Windows names are, which is what
    # the agent's settings read) of an open Environment key, which is then closed; $null for no key.
    param([Microsoft.Win32.RegistryKey]$Key)
    if ($null -eq $Key) { return $null }
    $variables = @{}
    try {
        foreach ($name in $Key.GetValueNames()) {
            if ($name -like 'DEADLINE_WORKER_*') { $variables[$name] = [string]$Key.GetValue($name) }
        }
    }
    finally {
        $Key.Dispose()
    }
    return $variables
}

function Get-CmfMachineAgentVariables {
    $variables = Read-CmfAgentVariables ([Microsoft.Win32.Registry]::LocalMachine.OpenSubKey('SYSTEM\CurrentControlSet\Control\Session Manager\Environment'))
    if ($null -eq $variables) { return @{} }
    return $variables
}

function Get-CmfUserAgentVariables {
    # DEADLINE_WORKER_* among the logon account's own user variables (HKU\<sid>\Environment), or $null.
    # Uncertain, so reported as a hint: the Service Control Manager builds a service's environment
    # from the machine variables and the account's profile, but whether a user variable reaches the
    # agent depends on the profile being loaded when the service starts (it is read only at start),
    # and the hive is readable here only while it is loaded (a logon, or a running service of that
    # account): null means "not known", never "none". LocalSystem's HKU\S-1-5-18 is the default
    # profile, not a user's own variables: null as well.
    param([string]$Sid)
    if (-not $Sid -or $Sid -eq 'S-1-5-18') { return $null }
    try {
        $key = [Microsoft.Win32.Registry]::Users.OpenSubKey("$Sid\Environment")
    }
    catch {
        return $null
    }
    return Read-CmfAgentVariables $key
}

function Get-CmfServiceToken {
    # Whether the token the service's process runs with holds Administrators (S-1-5-32-544) as an
    # enabled group: what the agent and its WORKER_AGENT_USER jobs have until the service restarts,
    # whatever the account's groups are now (a process keeps the token it started with).
    # @{ administrators; error }: both $null when the service does not run; administrators $null and
    # why when the token cannot be read, never a guess. The process is the one of the id and start time
    # Get-AgentServiceInfo read: one that started at another time (the service restarted meanwhile,
    # its id reused) is not taken for it.
    param([hashtable]$ServiceInfo)
    if (-not $ServiceInfo.exists -or $null -eq $ServiceInfo.pid) { return @{ administrators = $null; error = $null } }
    Initialize-CmfNative
    try {
        $token = [DeadlineCloudCmf.ProcessToken]::Read([int]$ServiceInfo.pid)
    }
    catch {
        $cause = Get-CmfInnerException $_.Exception
        return @{ administrators = $null; error = "the token of $($ServiceInfo.name)'s process $($ServiceInfo.pid) cannot be read: $($cause.Message)" }
    }
    $started = [DateTime]::FromFileTimeUtc($token.CreatedFileTime).ToString('o')
    if ($started -ne $ServiceInfo.started_at) {
        return @{ administrators = $null; error = ("process $($ServiceInfo.pid) started at $started, not at $($ServiceInfo.started_at) as " +
                "$($ServiceInfo.name)'s did when it was read: the service restarted meanwhile") }
    }
    @{ administrators = (@($token.Sids) -contains 'S-1-5-32-544'); error = $null }
}

function Get-CmfAgentReading {
    # read_agent_info's result: {agent, service, machine_environment, user_environment, account,
    # account_error, config, sessions} (see read_agent_info.ps1).
    param([string]$Service, [string]$ConfigPath, [string]$Account)
    $serviceInfo = Get-AgentServiceInfo -Name $Service
    $agent = @{ version = $null; location = $null; python = $null; error = "the service $Service does not exist" }
    if ($serviceInfo.exists) {
        $agent = Get-CmfAgentVersion $serviceInfo
        $token = Get-CmfServiceToken $serviceInfo
        $serviceInfo.token_administrators = $token.administrators
        $serviceInfo.token_error = $token.error
    }

    $accountName = $Account
    if (-not $accountName -and $serviceInfo.exists) { $accountName = [string]$serviceInfo.account }
    $accountReport = $null
    $accountError = $null
    # (Under ConstrainedLanguage the operations refuse before reading anything: Test-CmfLanguageRefused.)
    if ($accountName) {
        try {
            $accountReport = Get-AccountReport -Account $accountName
        }
        catch {
            # An account that does not resolve must not hide the rest of the reading.
            $refusal = Get-CmfRefusal $_
            if ($refusal) {
                $accountError = @{ code = $refusal.error_code; message = $refusal.error }
            }
            else {
                $inner = Get-CmfInnerException $_.Exception
                $accountError = @{ code = 'HOST_ERROR'; message = "$accountName`: $($inner.Message)" }
            }
        }
    }

    $config = @{ path = $ConfigPath; exists = $false; content = ''; modified_at = $null; sha256 = '' }
    $configText = ''
    if ($ConfigPath -and [IO.File]::Exists($ConfigPath)) {
        $bytes = [IO.File]::ReadAllBytes($ConfigPath)
        $config.exists = $true
        $config.content = [Convert]::ToBase64String($bytes)
        $config.modified_at = [IO.File]::GetLastWriteTimeUtc($ConfigPath).ToString('o')
        $config.sha256 = Get-CmfSha256Hex $bytes
        $configText = (New-Object Text.UTF8Encoding -ArgumentList $false).GetString($bytes)
    }
    $userEnvironment = $null
    if ($serviceInfo.exists) { $userEnvironment = Get-CmfUserAgentVariables -Sid $serviceInfo.account_sid }

    @{
        agent = $agent
        service = $serviceInfo
        machine_environment = Get-CmfMachineAgentVariables
        user_environment = $userEnvironment
        account = $accountReport
        account_error = $accountError
        config = $config
        sessions = Get-CmfAgentSessions -ServiceInfo $serviceInfo -ConfigText $configText
    }
}

# Before anything else: ConstrainedLanguage blocks what follows with errors that do not say why.
if (Test-CmfLanguageRefused) { return }

$Ansible.Result = Get-CmfAgentReading -Service $Service -ConfigPath $ConfigPath -Account $Account
