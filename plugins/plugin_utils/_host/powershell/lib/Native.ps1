# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Native calls (#cmf:include Native): the LSA (user rights on an account's SID, never secedit, whose
# export and import of the whole policy rewrites other accounts' rights; names of many SIDs in one
# lookup), netapi32 (a local group's members as SIDs, the DC locator) and a process's token (the
# groups the agent's service process runs with). Only operations that make these calls include this file, and
# Initialize-CmfNative compiles the C# at its first use, once per call (Add-Type costs time on
# every run). The C# is C# 5: Windows PowerShell 5.1 compiles it with the .NET Framework compiler.

#cmf:include Refusal

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
