# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Native calls (#cmf:include Native): the LSA (user rights on an account's SID, never secedit, whose
# export and import of the whole policy rewrites other accounts' rights) and netapi32 (local groups
# with nested membership). Only operations that make these calls include this file, and
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
