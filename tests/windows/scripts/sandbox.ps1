# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# The self-test's sandbox (worker_selftest): present makes a local user $Name (random password,
# disabled from its creation), a local group "${Name}g" with no members and a folder $Name under the
# system temp folder holding a marker file; absent first removes every right the user holds (through
# the LSA: deleting the user leaves them behind as an orphaned SID), then deletes the user, the group
# and the folder, each on its own (one that fails does not keep the others). Both are idempotent.
# What the sandbox finds under its names must be its own: the user and the group carry its
# description and the folder its marker file, else it refuses before it changes anything (a local
# account called cmf-selftest that someone else made is never reused, nor deleted).
# The folder is where the self-test runs write_file as administrator (temporary files, File.Replace
# with a backup name, deletes, and absent's recursive delete), and every local user may create
# folders under the system temp folder: one of the sandbox's name could be planted there, with a
# junction or hard links inside, to steer those writes (a local privilege escalation). So the folder
# is made with a protected DACL (SYSTEM and Administrators only, owned by Administrators), and
# before it is reused or deleted, and right after it is made (CreateDirectory also succeeds on a
# folder someone made since it was looked for), it must be no junction or symbolic link, owned by
# Administrators or SYSTEM, and writable by no one else: else SANDBOX_NOT_OURS.
# Users and groups through ADSI WinNT (no LocalAccounts module: it fails on orphaned SIDs and is
# missing on some Server Core images).
# Result: user @{name; sid}, group @{name; sid}, folder (sid $null for what does not exist), files
# (the names of the files in the folder, as absent found them before it removed the folder: the
# self-test checks that a replace left nothing behind).
# Refusals: CONSTRAINED_LANGUAGE (before anything is read), INVALID_NAME, SANDBOX_NOT_OURS;
# SANDBOX_CLEANUP_FAILED (absent could not remove everything: what is left and why, with changed).
param(
    [Parameter(Mandatory)][string]$Name,
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
#  - Local groups are listed through ADSI, their members as SIDs alone (NetLocalGroupGetMembers level
#    0: it survives orphaned SIDs, on which Get-LocalGroupMember fails, and asks no domain controller).
#    Names and kinds are looked up only for the account's own groups, in one LsaLookupSids call for
#    this computer's SIDs and one for a domain's (whose failure leaves them unnamed), so that a
#    reading stays fast, and goes on, when no domain controller answers.
#  - The account's token groups: its domain groups (nested ones included) from an S4U logon, the
#    groups every service logon carries (Everyone, Authenticated Users, SERVICE), and the local groups
#    that hold any of these or the account. They are "known" only when the domain answered.
#  - The rights a domain GPO defines come from the resultant set of policy of the last refresh.

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

# Before anything else: ConstrainedLanguage blocks what follows with errors that do not say why.
if (Test-CmfLanguageRefused) { return }

# A refusal with its code, as the simulated worker gives it (a ValidatePattern would fail the
# binding instead, with no code to compare).
if ($Name -notmatch '^[A-Za-z0-9_-]{1,19}$') {
    $Ansible.Result = @{ error_code = 'INVALID_NAME'; error = "sandbox name '$Name': 1 to 19 letters, digits, '-' or '_'" }
    return
}

$Marker = 'deadline_cloud.cmf self-test sandbox (removed by the self-test)'
$MarkerFile = '.deadline-cloud-cmf-sandbox'
$groupName = "${Name}g"
$folder = Join-Path (Join-Path $env:SystemRoot 'Temp') $Name
$computer = [ADSI]"WinNT://$env:COMPUTERNAME,computer"
# The only principals that may own or write the folder: SYSTEM and Administrators.
$TrustedSids = @('S-1-5-18', 'S-1-5-32-544')
# Rights that change a folder or what is in it: write data / add file, append data / add subfolder,
# write extended attributes, delete child, write attributes, delete, write DAC, write owner, and
# GENERIC_ALL and GENERIC_WRITE as an ACE may carry them.
$WriteRights = 0x2 -bor 0x4 -bor 0x10 -bor 0x40 -bor 0x100 -bor 0x10000 -bor 0x40000 -bor 0x80000 -bor 0x10000000 -bor 0x40000000

function Find-SandboxEntry {
    # The local user or group called $EntryName, or $null (Find throws when there is none).
    param([string]$EntryName, [string]$Class)
    try {
        $computer.psbase.Children.Find($EntryName, $Class)
    }
    catch {
        $null
    }
}

function Get-SandboxSid {
    param($Entry)
    if ($null -eq $Entry) { return $null }
    (New-Object Security.Principal.SecurityIdentifier ([byte[]]$Entry.psbase.InvokeGet('objectSid')), 0).Value
}

function New-SandboxPassword {
    # 24 random bytes in base64 plus one character of each class, for any complexity policy.
    $bytes = New-Object byte[] 24
    $random = New-Object Security.Cryptography.RNGCryptoServiceProvider
    try { $random.GetBytes($bytes) } finally { $random.Dispose() }
    [Convert]::ToBase64String($bytes) + 'aZ7!'
}

function Get-SandboxFiles {
    # The names of the files in the sandbox folder, sorted; none when there is no folder.
    if (-not [IO.Directory]::Exists($folder)) { return @() }
    @([IO.Directory]::GetFiles($folder) | ForEach-Object { [IO.Path]::GetFileName($_) } | Sort-Object)
}

function New-SandboxFolderSecurity {
    # The folder's security descriptor: owned by Administrators, a protected DACL (nothing inherited
    # from the system temp folder, where every user may create) giving SYSTEM and Administrators full
    # control, for the folder and what is made in it.
    $security = New-Object Security.AccessControl.DirectorySecurity
    $security.SetAccessRuleProtection($true, $false)
    $security.SetOwner((New-Object Security.Principal.SecurityIdentifier 'S-1-5-32-544'))
    foreach ($sid in $TrustedSids) {
        $rule = New-Object Security.AccessControl.FileSystemAccessRule -ArgumentList (New-Object Security.Principal.SecurityIdentifier $sid),
        ([Security.AccessControl.FileSystemRights]::FullControl), ([Security.AccessControl.InheritanceFlags]'ContainerInherit, ObjectInherit'),
        ([Security.AccessControl.PropagationFlags]::None), ([Security.AccessControl.AccessControlType]::Allow)
        $security.AddAccessRule($rule)
    }
    $security
}

function Get-FolderDistrust {
    # Why the existing folder cannot be trusted with the self-test's writes ($null when it can): a
    # junction or symbolic link (its target would take the writes), an owner other than SYSTEM or
    # Administrators (an owner may always change the DACL), or an allow ACE that lets anyone else write.
    $attributes = [IO.File]::GetAttributes($folder)  # the link's own attributes: a reparse point is not followed
    if (($attributes -band [IO.FileAttributes]::ReparsePoint) -ne 0) {
        return "a folder $folder that is a junction or symbolic link"
    }
    try {
        $security = [IO.Directory]::GetAccessControl($folder, [Security.AccessControl.AccessControlSections]'Owner, Access')
    } catch {
        # a DACL that denies Administrators READ_CONTROL: a refusal, not the script's own failure
        return "a folder $folder whose security cannot be read ($($_.Exception.Message))"
    }
    $owner = $security.GetOwner([Security.Principal.SecurityIdentifier]).Value
    if ($TrustedSids -notcontains $owner) { return "a folder $folder owned by $owner" }
    $writers = @(foreach ($rule in @($security.GetAccessRules($true, $true, [Security.Principal.SecurityIdentifier]))) {
            if ($rule.AccessControlType -ne [Security.AccessControl.AccessControlType]::Allow) { continue }
            # an inherit-only entry counts too: what the self-test makes in the folder inherits it
            if ($TrustedSids -contains $rule.IdentityReference.Value) { continue }
            if (([int]$rule.FileSystemRights -band $WriteRights) -ne 0) { $rule.IdentityReference.Value }
        })
    if ($writers.Count -gt 0) { return "a folder $folder that $(@($writers | Select-Object -Unique) -join ', ') may write" }
    $null
}

function Get-ForeignReason {
    # Why what exists under the sandbox's names is not the sandbox's own ($null when all of it is).
    param($User, $Group)
    $found = @()
    foreach ($entry in @(@{ what = "a local user $Name"; entry = $User }, @{ what = "a local group $groupName"; entry = $Group })) {
        if ($null -eq $entry.entry) { continue }
        try { $description = [string]$entry.entry.psbase.InvokeGet('Description') } catch { $description = '' }
        if ($description -ne $Marker) { $found += "$($entry.what) (description '$description')" }
    }
    if ([IO.Directory]::Exists($folder)) {
        $distrust = Get-FolderDistrust
        if ($distrust) { $found += $distrust }
        elseif (-not [IO.File]::Exists((Join-Path $folder $MarkerFile))) { $found += "a folder $folder without the sandbox's marker file $MarkerFile" }
    }
    if ($found.Count -eq 0) { return $null }
    "$env:COMPUTERNAME has $($found -join ' and ') that the self-test did not make (or cannot trust): nothing was changed; " +
    'pick another sandbox_name, or remove them if they are left-overs'
}

$user = Find-SandboxEntry -EntryName $Name -Class 'user'
$group = Find-SandboxEntry -EntryName $groupName -Class 'group'
$userSid = Get-SandboxSid $user
$groupSid = Get-SandboxSid $group
$foreign = Get-ForeignReason -User $user -Group $group
if ($foreign) {
    $Ansible.Result = @{ error_code = 'SANDBOX_NOT_OURS'; error = $foreign }
    return
}

if ($State -eq 'present') {
    # The folder first: should it turn out not to be ours, nothing else has been made.
    if (-not [IO.Directory]::Exists($folder)) {
        [IO.Directory]::CreateDirectory($folder, (New-SandboxFolderSecurity)) | Out-Null
        $distrust = Get-FolderDistrust  # CreateDirectory succeeds on a folder made since Exists: look again
        if ($distrust) {
            $Ansible.Result = @{ error_code = 'SANDBOX_NOT_OURS'; error = "$env:COMPUTERNAME has $distrust, made while the self-test made its own: nothing was changed; pick another sandbox_name" }
            return
        }
        [IO.File]::WriteAllBytes((Join-Path $folder $MarkerFile), [byte[]]@())
        $Ansible.Changed = $true
    }
    if ($null -eq $user) {
        $user = $computer.Create('user', $Name)
        $user.SetPassword((New-SandboxPassword))
        $user.Put('Description', $Marker)
        # Disabled before it first exists (the first SetInfo creates it): never an enabled account, not even for an instant.
        $user.Put('UserFlags', 0x0203)  # ADS_UF_SCRIPT | ADS_UF_ACCOUNTDISABLE | ADS_UF_NORMAL_ACCOUNT
        $user.SetInfo()
        $userSid = Get-SandboxSid $user
        $Ansible.Changed = $true
    }
    if ($null -eq $group) {
        $group = $computer.Create('group', $groupName)
        $group.Put('Description', $Marker)
        $group.SetInfo()
        $groupSid = Get-SandboxSid $group
        $Ansible.Changed = $true
    }
    $files = @(Get-SandboxFiles)
}
else {
    $files = @(Get-SandboxFiles)  # before they go: the self-test checks what its writes left
    # Each removal on its own: one that fails is reported, and the others are still made.
    $left = [Collections.Generic.List[string]]@()
    if ($null -ne $user) {
        $rightsGone = $false
        try {
            $held = @(Get-CmfRights -Sid $userSid)
            if ($held.Count -gt 0) {
                [DeadlineCloudCmf.Lsa]::RemoveRights($userSid, [string[]]$held)
                $Ansible.Changed = $true
            }
            $rightsGone = $true
        }
        catch {
            # The user stays: deleted now, its rights would stay behind as an orphaned SID.
            $left.Add("the rights of $Name ($userSid), so the user is kept for a later run to remove: $($_.Exception.Message)")
        }
        if ($rightsGone) {
            try {
                $computer.Delete('user', $Name)
                $Ansible.Changed = $true
            }
            catch {
                $left.Add("the user $Name ($userSid): $($_.Exception.Message)")
            }
        }
    }
    if ($null -ne $group) {
        try {
            $computer.Delete('group', $groupName)
            $Ansible.Changed = $true
        }
        catch {
            $left.Add("the group $groupName ($groupSid): $($_.Exception.Message)")
        }
    }
    if ([IO.Directory]::Exists($folder)) {
        try {
            [IO.Directory]::Delete($folder, $true)
            $Ansible.Changed = $true
        }
        catch {
            $left.Add("the folder $folder`: $($_.Exception.Message)")
        }
    }
    if ($left.Count -gt 0) {
        $Ansible.Result = @{
            error_code = 'SANDBOX_CLEANUP_FAILED'
            error = "the self-test could not remove its whole sandbox from $env:COMPUTERNAME; left: $($left -join '; ')"
            changed = [bool]$Ansible.Changed
        }
        return
    }
}

$Ansible.Result = @{
    user = @{ name = $Name; sid = $userSid }
    group = @{ name = $groupName; sid = $groupSid }
    folder = $folder
    files = @($files)
}
