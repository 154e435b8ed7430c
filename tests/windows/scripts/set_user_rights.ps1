# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Grants (present) or revokes (absent) user rights held directly by one account, through the LSA on
# its SID, in one call: only the difference is applied. $Rights are canonical constants, checked on
# the controller. Result: added, removed, before (direct rights before), report (read_account's, after),
# gpo_rights (those of added/removed that a domain GPO defines: the next policy refresh rewrites them;
# [] when none or when the policy result cannot be read). Refusals: UNKNOWN_RIGHT (a name this Windows
# does not know, refused before any change; STATUS_NO_SUCH_PRIVILEGE 0xC0000060 from the LSA maps to it
# too), LSA_ERROR ("<function> failed: 0x<NTSTATUS> (<system text>)"), DOMAIN_CONTROLLER,
# CONSTRAINED_LANGUAGE, the account's lookup errors.
param(
    [Parameter(Mandatory)][string]$Account,
    [Parameter(Mandatory)][AllowEmptyCollection()][string[]]$Rights,
    [Parameter(Mandatory)][ValidateSet('present', 'absent')][string]$State
)
$ErrorActionPreference = 'Stop'
$Ansible.Changed = $false
# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Accounts and local groups (#cmf:include Accounts): resolving an account and the report read_account
# returns, and naming local groups. The same rules as plugin_utils/_windows/ (accounts.py, user_rights.py and groups.py), which
# the simulated worker runs: keep them in step.
#  - Names resolve through NTAccount.Translate, `.\name` meaning this computer; groups and members
#    are compared by SID. LocalSystem, LocalService and NetworkService map to their SIDs first.
#  - Local groups are read through ADSI and the members' objectSid: it survives orphaned SIDs, on
#    which Get-LocalGroupMember fails. Membership is decided from objectSid alone, each member on
#    its own (one unreadable member must not hide the others); names and flags are read only for
#    the account's own groups.
#  - Nested membership (a domain group inside a local group) comes from NetUserGetLocalGroups with
#    LG_INCLUDE_INDIRECT, as the account's token has it.

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
# Native calls (#cmf:include Native): the LSA (user rights on an account's SID, never secedit, whose
# export and import of the whole policy rewrites other accounts' rights) and netapi32 (local groups
# with nested membership). Only operations that make these calls include this file, and
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
    public static class Lsa
    {
        const uint STATUS_OBJECT_NAME_NOT_FOUND = 0xC0000034;  // the account holds no right
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

        [DllImport("advapi32.dll")]
        static extern uint LsaOpenPolicy(IntPtr SystemName, ref LSA_OBJECT_ATTRIBUTES ObjectAttributes, int DesiredAccess, out IntPtr PolicyHandle);
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

        public static void AddRights(string sid, string[] rights) { Change(sid, rights, true); }
        public static void RemoveRights(string sid, string[] rights) { Change(sid, rights, false); }
    }

    public static class NetApi
    {
        const int LG_INCLUDE_INDIRECT = 1;
        const int MAX_PREFERRED_LENGTH = -1;

        [StructLayout(LayoutKind.Sequential, CharSet = CharSet.Unicode)]
        struct LOCALGROUP_USERS_INFO_0
        {
            [MarshalAs(UnmanagedType.LPWStr)] public string Name;
        }

        [DllImport("netapi32.dll", CharSet = CharSet.Unicode)]
        static extern int NetUserGetLocalGroups(string ServerName, string UserName, int Level, int Flags, out IntPtr Buffer, int PreferredMaximumLength, out int EntriesRead, out int TotalEntries);
        [DllImport("netapi32.dll")]
        static extern int NetApiBufferFree(IntPtr Buffer);

        // The names of every local group the account is in, directly or through a group nested in
        // it (as its token would have them). UserName: DOMAIN\name. Throws Win32Exception with the
        // NET_API_STATUS (2221 NERR_UserNotFound for an account that is not a user, e.g. a group).
        public static string[] LocalGroupsWithIndirect(string userName)
        {
            IntPtr buffer;
            int read;
            int total;
            int status = NetUserGetLocalGroups(null, userName, 0, LG_INCLUDE_INDIRECT, out buffer, MAX_PREFERRED_LENGTH, out read, out total);
            try
            {
                if (status != 0)
                    throw new Win32Exception(status, string.Format("NetUserGetLocalGroups failed: {0} ({1})", status, new Win32Exception(status).Message));
                List<string> names = new List<string>();
                int size = Marshal.SizeOf(typeof(LOCALGROUP_USERS_INFO_0));
                for (int i = 0; i < read; i++)
                {
                    LOCALGROUP_USERS_INFO_0 entry = (LOCALGROUP_USERS_INFO_0)Marshal.PtrToStructure(
                        new IntPtr(buffer.ToInt64() + (long)i * size), typeof(LOCALGROUP_USERS_INFO_0));
                    names.Add(entry.Name);
                }
                return names.ToArray();
            }
            finally
            {
                if (buffer != IntPtr.Zero) NetApiBufferFree(buffer);
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

function ConvertTo-CmfAccountName {
    # The NT name of a SID, or the SID itself when it no longer resolves (a deleted account).
    param([string]$Sid)
    try {
        (New-Object Security.Principal.SecurityIdentifier $Sid).Translate([Security.Principal.NTAccount]).Value
    }
    catch {
        $Sid
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

function Test-CmfDomainResolves {
    # Whether the host can map the domain part of a name to a SID (it knows and reached the domain).
    param([string]$Domain)
    try {
        [void](New-Object Security.Principal.NTAccount $Domain).Translate([Security.Principal.SecurityIdentifier])
        $true
    }
    catch {
        $false
    }
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
            $domain = $null
            if ($text.Contains('\')) { $domain = $text.Split('\', 2)[0] }
            elseif ($text.Contains('@')) { $domain = $text.Split('@', 2)[1] }
            if ($domain -and $domain -ne $env:COMPUTERNAME -and -not (Test-CmfDomainResolves $domain)) {
                # A name whose domain does not resolve either: a domain that does not exist and one that
                # cannot be reached look the same from here.
                throw (New-CmfRefusal 'ACCOUNT_NOT_FOUND' ("account '$Account' does not resolve on ${env:COMPUTERNAME}, nor does its " +
                        "domain '$domain': either no such domain is known to this host, or its domain controllers cannot be reached"))
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

function Get-CmfMemberProperty {
    # A property of a member as the group's Members call returns it (a COM object), without binding
    # a DirectoryEntry to it: that bind asks the member's domain and fails for an orphan or a
    # domain that cannot be reached.
    param($Member, [string]$Property)
    $Member.GetType().InvokeMember($Property, [Reflection.BindingFlags]::GetProperty, $null, $Member, $null)
}

function Get-CmfMemberSids {
    # The members of a local group: @{ sid; path; raw } each, sid $null when it could not be read.
    param($Group)
    foreach ($raw in @($Group.psbase.Invoke('Members'))) {
        $sid = $null
        $path = $null
        try {
            $path = [string](Get-CmfMemberProperty $raw 'ADsPath')
            $sid = (New-Object Security.Principal.SecurityIdentifier ([byte[]](Get-CmfMemberProperty $raw 'objectSid')), 0).Value
        }
        catch {
            if ($path -match '^WinNT://(S-1-[0-9-]+)$') { $sid = $Matches[1] }
        }
        @{ sid = $sid; path = $path; raw = $raw }
    }
}

function Get-CmfGroupMembers {
    # Members of a local group: @{ sid; name; type; enabled; orphaned } (+ unreadable). The ADsPath of
    # an orphan is WinNT://S-1-..., with no account behind it to ask; it is kept, never an error.
    param($Group)
    foreach ($member in @(Get-CmfMemberSids -Group $Group)) {
        $label = $(if ($member.sid) { $member.sid } else { [string]$member.path })
        try {
            if ($null -eq $member.sid) { throw 'objectSid unreadable' }
            if ($member.path -match '^WinNT://S-1-[0-9-]+$') {
                @{ sid = $member.sid; name = $member.sid; type = 'unknown'; enabled = $false; orphaned = $true }
                continue
            }
            $class = [string](Get-CmfMemberProperty $member.raw 'Class')
            $enabled = $true
            if ($class -eq 'User') {
                try {
                    $enabled = -not ([int](Get-CmfMemberProperty $member.raw 'UserFlags') -band 0x2)  # ADS_UF_ACCOUNTDISABLE
                }
                catch {
                    $enabled = $true  # a domain user whose flags cannot be read from here: counted as live
                }
            }
            @{
                sid = $member.sid
                name = ConvertTo-CmfAccountName $member.sid
                type = $(if ($class -eq 'Group') { 'group' } else { 'user' })
                enabled = [bool]$enabled
                orphaned = $false
            }
        }
        catch {
            @{ sid = $label; name = $label; type = 'unknown'; enabled = $true; orphaned = $false; unreadable = $true }
        }
    }
}

function Get-CmfAccountType {
    param([string]$Sid)
    # LocalAccount=TRUE keeps WMI from asking the domain for every account it knows.
    $user = Get-CimInstance -ClassName Win32_UserAccount -Filter "LocalAccount=TRUE AND SID='$Sid'" -ErrorAction SilentlyContinue
    if ($user) { return @{ type = 'user'; enabled = -not $user.Disabled } }
    $group = Get-CimInstance -ClassName Win32_Group -Filter "LocalAccount=TRUE AND SID='$Sid'" -ErrorAction SilentlyContinue
    if ($group) { return @{ type = 'group'; enabled = $true } }
    if ($Sid -match '^S-1-5-21-') { return @{ type = 'user'; enabled = $true } }
    @{ type = 'well_known'; enabled = $true }
}

function Get-CmfIndirectGroupNames {
    # Local group names the account is in, nested membership included; $null when netapi32 cannot
    # tell (an account that is not a user: a group, a well-known SID): then direct membership alone.
    param([string]$Name)
    Initialize-CmfNative
    try {
        # The unary comma returns the array whole: no groups stays an empty list, not $null (which
        # means "cannot tell" here).
        return , @([DeadlineCloudCmf.NetApi]::LocalGroupsWithIndirect($Name))
    }
    catch {
        $null
    }
}

function Get-AccountReport {
    # The report read_account returns (see read_account.ps1); other operations include this file and call it.
    param([Parameter(Mandatory)][string]$Account)
    Assert-CmfNotDomainController
    $resolved = Resolve-CmfAccount -Account $Account
    $kind = Get-CmfAccountType -Sid $resolved.sid
    $localGroups = @(Get-CmfLocalGroups)
    $direct = @{}
    foreach ($group in $localGroups) {
        foreach ($member in @(Get-CmfMemberSids -Group $group.entry)) {
            if ($member.sid -eq $resolved.sid) { $direct[$group.sid] = $true; break }
        }
    }
    $withIndirect = $null
    if ($kind.type -eq 'user') {
        $names = Get-CmfIndirectGroupNames -Name $resolved.name
        if ($null -ne $names) { $withIndirect = @($names) }
    }
    $groups = [Collections.Generic.List[object]]@()
    $groupRights = @{}
    $groupMembers = @{}
    foreach ($group in $localGroups) {
        $isDirect = $direct.ContainsKey($group.sid)
        $isIndirect = (-not $isDirect) -and ($null -ne $withIndirect) -and ($withIndirect -contains $group.name)
        if (-not ($isDirect -or $isIndirect)) { continue }
        $groups.Add(@{ name = $group.name; sid = $group.sid; indirect = [bool]$isIndirect })
        $groupRights[$group.sid] = @(Get-CmfRights -Sid $group.sid)
        $groupMembers[$group.sid] = @(Get-CmfGroupMembers -Group $group.entry)
    }
    @{
        hostname = $env:COMPUTERNAME
        sid = $resolved.sid
        name = $resolved.name
        domain = $resolved.domain
        type = $kind.type
        enabled = [bool]$kind.enabled
        groups = @($groups | Sort-Object -Property { $_.name })
        rights = @(Get-CmfRights -Sid $resolved.sid)
        group_rights = $groupRights
        local_groups = @($localGroups | ForEach-Object { @{ name = $_.name; sid = $_.sid } })
        group_members = $groupMembers
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

function Get-GpoDefinedRights {
    # The rights a domain GPO sets on this computer (the policy result of its last refresh); the
    # namespace exists only on a domain member that has applied policy, and reading it may be refused.
    try {
        $entries = @(Get-CimInstance -Namespace 'root\rsop\computer' -ClassName RSOP_UserPrivilegeRight -Filter 'precedence=1')
        return @($entries | ForEach-Object { [string]$_.UserRight })
    }
    catch {
        return @()
    }
}

# Before anything else: ConstrainedLanguage blocks what follows with errors that do not say why.
if (Test-CmfLanguageRefused) { return }

try {
    Assert-CmfNotDomainController
    $resolved = Resolve-CmfAccount -Account $Account
    Initialize-CmfNative  # compiled only once the account resolves: the LSA is called next
    $unknown = @($Rights | Where-Object { -not [DeadlineCloudCmf.Lsa]::IsKnownRight($_) })
    if ($unknown.Count -gt 0) {
        throw (New-CmfRefusal 'UNKNOWN_RIGHT' ("account $($resolved.name): $($unknown -join ', ') is no privilege or logon right " +
                "on $env:COMPUTERNAME; nothing was changed"))
    }
    $before = @(Get-CmfRights -Sid $resolved.sid)
    # -contains compares case-insensitively, as the LSA does
    $added = @(if ($State -eq 'present') { $Rights | Where-Object { $before -notcontains $_ } })
    $removed = @(if ($State -eq 'absent') { $Rights | Where-Object { $before -contains $_ } })
    [DeadlineCloudCmf.Lsa]::AddRights($resolved.sid, [string[]]$added)
    [DeadlineCloudCmf.Lsa]::RemoveRights($resolved.sid, [string[]]$removed)
    $Ansible.Changed = ($added.Count + $removed.Count) -gt 0
    $gpoRights = @()
    if ($Ansible.Changed) {
        $defined = @(Get-GpoDefinedRights)
        $gpoRights = @(@($added) + @($removed) | Where-Object { $defined -contains $_ })
    }
    $Ansible.Result = @{
        added = @($added)
        removed = @($removed)
        before = @($before)
        report = Get-AccountReport -Account $resolved.sid
        gpo_rights = @($gpoRights)
    }
}
catch {
    $refusal = Get-CmfRefusal $_
    if (-not $refusal) { throw }
    $Ansible.Result = $refusal
}
