# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Accounts, local groups and user rights, shared by the account operations (#cmf:include Accounts).
# The same rules as plugin_utils/accounts.py, user_rights.py and group_membership.py, which the
# simulated worker runs: keep them in step.
#  - Names resolve through NTAccount.Translate, `.\name` meaning this computer; groups and members
#    are compared by SID.
#  - Rights go through the LSA on the account's SID, never secedit (an export and import of the
#    whole policy rewrites other accounts' rights).
#  - Local groups are read through ADSI and the members' objectSid: it survives orphaned SIDs, on
#    which Get-LocalGroupMember fails.

if (-not ('DeadlineCloudCmf.Lsa' -as [type])) {
    Add-Type -TypeDefinition @'
using System;
using System.Collections.Generic;
using System.ComponentModel;
using System.Runtime.InteropServices;
using System.Security.Principal;

namespace DeadlineCloudCmf
{
    // A refusal with a stable code, reported to the controller as error_code / error.
    public class OperationRefused : Exception
    {
        public string Code { get; private set; }
        public OperationRefused(string code, string message) : base(message) { Code = code; }
    }

    public static class Lsa
    {
        const uint STATUS_OBJECT_NAME_NOT_FOUND = 0xC0000034;  // the account holds no right
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

        static void Check(uint status, string what)
        {
            if (status != 0)
                throw new Win32Exception((int)LsaNtStatusToWinError(status), what);
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
}
'@
}

$script:AdministratorsSid = 'S-1-5-32-544'
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

function New-CmfRefusal {
    param([string]$Code, [string]$Message)
    New-Object -TypeName DeadlineCloudCmf.OperationRefused -ArgumentList $Code, $Message
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
    if ($cause -is [DeadlineCloudCmf.OperationRefused]) {
        return @{ error_code = $cause.Code; error = $cause.Message }
    }
    $null
}

function Test-CmfSid {
    param([string]$Text)
    $Text -match '^[Ss]-1-\d+(-\d+)+$'
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

function Resolve-CmfAccount {
    # @{ sid; name } of an account given as name, .\name, HOST\name, DOMAIN\name, name@domain or SID.
    param([string]$Account)
    $text = $Account.Trim()
    try {
        if (Test-CmfSid $text) {
            $sid = New-Object Security.Principal.SecurityIdentifier ('S' + $text.Substring(1))
            $name = $sid.Translate([Security.Principal.NTAccount]).Value
        }
        else {
            if ($text.StartsWith('.\')) {
                $text = "$env:COMPUTERNAME\" + $text.Substring(2)
            }
            $sid = (New-Object Security.Principal.NTAccount $text).Translate([Security.Principal.SecurityIdentifier])
            $name = $sid.Translate([Security.Principal.NTAccount]).Value
        }
    }
    catch {
        $cause = Get-CmfInnerException $_.Exception
        if ($cause -is [Security.Principal.IdentityNotMappedException]) {
            throw (New-CmfRefusal 'ACCOUNT_NOT_FOUND' "account '$Account' does not exist on $env:COMPUTERNAME")
        }
        # Translate raises a plain SystemException when the domain cannot be asked (no trust, no DC).
        throw (New-CmfRefusal 'DOMAIN_UNREACHABLE' "account '$Account' cannot be resolved from ${env:COMPUTERNAME}: $($cause.Message)")
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

function Get-CmfGroupMembers {
    # Members of a local group by objectSid: @{ sid; name; type; enabled; orphaned }. The ADsPath of an
    # orphan is WinNT://S-1-..., with no account behind it to ask; it is kept, never an error.
    param($Group)
    foreach ($raw in @($Group.psbase.Invoke('Members'))) {
        $member = ([ADSI]$raw).psbase
        $sid = (New-Object Security.Principal.SecurityIdentifier ([byte[]]$member.InvokeGet('objectSid')), 0).Value
        $path = [string]$member.InvokeGet('ADsPath')
        if ($path -match '^WinNT://S-1-[0-9-]+$') {
            @{ sid = $sid; name = $sid; type = 'unknown'; enabled = $false; orphaned = $true }
            continue
        }
        $class = [string]$member.SchemaClassName
        $enabled = $true
        if ($class -eq 'User') {
            try {
                $enabled = -not ([int]$member.InvokeGet('UserFlags') -band 0x2)  # ADS_UF_ACCOUNTDISABLE
            }
            catch {
                $enabled = $true  # a domain user whose flags cannot be read from here: counted as live
            }
        }
        @{
            sid = $sid
            name = ConvertTo-CmfAccountName $sid
            type = $(if ($class -eq 'Group') { 'group' } else { 'user' })
            enabled = [bool]$enabled
            orphaned = $false
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

function Get-CmfRights {
    param([string]$Sid)
    [string[]]@([DeadlineCloudCmf.Lsa]::EnumerateRights($Sid) | Sort-Object)
}

function Get-AccountReport {
    # The report read_account returns (see read_account.ps1); other operations include this file and call it.
    param([Parameter(Mandatory)][string]$Account)
    $resolved = Resolve-CmfAccount -Account $Account
    $kind = Get-CmfAccountType -Sid $resolved.sid
    $localGroups = @(Get-CmfLocalGroups)
    $groups = [Collections.Generic.List[object]]@()
    $groupRights = @{}
    $groupMembers = @{}
    foreach ($group in $localGroups) {
        $groupRights[$group.sid] = @(Get-CmfRights -Sid $group.sid)
        $members = @(Get-CmfGroupMembers -Group $group.entry)
        if (@($members | Where-Object { $_.sid -eq $resolved.sid }).Count -gt 0) {
            $groups.Add(@{ name = $group.name; sid = $group.sid })
            $groupMembers[$group.sid] = $members
        }
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

function Resolve-CmfLocalGroup {
    # A local group (from Get-CmfLocalGroups) named by SID, local name, .\ / BUILTIN\ / HOST\ name,
    # or the English name of a BUILTIN group; $null when there is none.
    param([string]$Group, [object[]]$LocalGroups)
    $text = $Group.Trim()
    if (Test-CmfSid $text) {
        $sid = 'S' + $text.Substring(1)
        return $LocalGroups | Where-Object { $_.sid -eq $sid } | Select-Object -First 1
    }
    if ($text.Contains('\')) {
        $domain, $text = $text.Split('\', 2)
        if ($domain -ne '.' -and $domain -ne 'BUILTIN' -and $domain -ne $env:COMPUTERNAME) {
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

function Get-CmfRemovalRefusal {
    # Why removing the account from a group is refused (the rules of group_membership.removal_refusal), or $null.
    param([hashtable]$Report, [hashtable]$Group)
    if ($Group.sid -ne $script:AdministratorsSid) { return $null }
    $prefix = "refusing to remove $($Report.name) ($($Report.sid)) from $($Group.name) ($($script:AdministratorsSid)), nothing was changed: "
    if ($Report.connection_sid -eq $Report.sid) {
        return $prefix + 'it is the account Ansible is connected as, which would lose administrator rights mid-run'
    }
    if ($Report.sid -match '^S-1-5-21-.*-500$') {
        return $prefix + 'it is the built-in Administrator (RID 500), the account of last resort'
    }
    $others = @($Report.group_members[$Group.sid] | Where-Object { $_.sid -ne $Report.sid -and -not $_.orphaned -and $_.enabled })
    if ($others.Count -eq 0) {
        return $prefix + 'it would leave the group with no enabled member'
    }
    $null
}
