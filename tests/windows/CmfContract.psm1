# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# The harness of the Windows contract suite (Contract.Tests.ps1): it builds each vector's `host`
# on this Windows host with temporary accounts, folders and a test service of its own, runs the
# operation's script as win_powershell does, compares, and undoes everything it did.
# The vectors' format is described in tests/contract_vectors.py; vectors.json is their JSON copy.
# Runs on Windows PowerShell 5.1 and PowerShell 7 (ADSI and P/Invoke only: no LocalAccounts module,
# which PowerShell 7 loads through a compatibility session).

Set-StrictMode -Version 2.0
$ErrorActionPreference = 'Stop'
Add-Type -AssemblyName System.ServiceProcess

$script:Placeholder = '\{(root|root_re|host|service)\}|\{(name|qname|sid|stamp):([^{}]+)\}'
$script:BuiltinGroups = @{
    'administrators' = 'S-1-5-32-544'; 'users' = 'S-1-5-32-545'; 'guests' = 'S-1-5-32-546'
    'power users' = 'S-1-5-32-547'; 'backup operators' = 'S-1-5-32-551'; 'remote desktop users' = 'S-1-5-32-555'
}
$script:SessionProcessSeconds = 86400

if (-not ('CmfContractLsa' -as [type])) {
    Add-Type -TypeDefinition @'
// Fields the marshaller writes are never assigned here: no CS0649, on which Windows PowerShell 5.1's Add-Type fails.
#pragma warning disable 649
using System;
using System.Collections.Generic;
using System.ComponentModel;
using System.Runtime.InteropServices;
using System.Security.Principal;

// User Rights Assignment for the test accounts, independent of the scripts under test.
public static class CmfContractLsa
{
    [StructLayout(LayoutKind.Sequential)]
    struct LSA_UNICODE_STRING { public ushort Length; public ushort MaximumLength; public IntPtr Buffer; }

    [StructLayout(LayoutKind.Sequential)]
    struct LSA_OBJECT_ATTRIBUTES
    {
        public int Length; public IntPtr RootDirectory; public IntPtr ObjectName; public uint Attributes;
        public IntPtr SecurityDescriptor; public IntPtr SecurityQualityOfService;
    }

    [DllImport("advapi32.dll")] static extern uint LsaOpenPolicy(IntPtr system, ref LSA_OBJECT_ATTRIBUTES attributes, uint access, out IntPtr policy);
    [DllImport("advapi32.dll")] static extern uint LsaAddAccountRights(IntPtr policy, byte[] sid, LSA_UNICODE_STRING[] rights, uint count);
    [DllImport("advapi32.dll")] static extern uint LsaRemoveAccountRights(IntPtr policy, byte[] sid, bool allRights, LSA_UNICODE_STRING[] rights, uint count);
    [DllImport("advapi32.dll")] static extern uint LsaEnumerateAccountRights(IntPtr policy, byte[] sid, out IntPtr rights, out uint count);
    [DllImport("advapi32.dll")] static extern uint LsaFreeMemory(IntPtr buffer);
    [DllImport("advapi32.dll")] static extern uint LsaClose(IntPtr policy);
    [DllImport("advapi32.dll")] static extern int LsaNtStatusToWinError(uint status);

    const uint POLICY_ALL_ACCESS = 0x000F0FFF;
    const uint STATUS_OBJECT_NAME_NOT_FOUND = 0xC0000034;

    static byte[] Sid(string sid)
    {
        var identifier = new SecurityIdentifier(sid);
        var bytes = new byte[identifier.BinaryLength];
        identifier.GetBinaryForm(bytes, 0);
        return bytes;
    }

    static IntPtr Open()
    {
        var attributes = new LSA_OBJECT_ATTRIBUTES();
        IntPtr policy;
        Check(LsaOpenPolicy(IntPtr.Zero, ref attributes, POLICY_ALL_ACCESS, out policy), "LsaOpenPolicy");
        return policy;
    }

    static void Check(uint status, string function)
    {
        if (status != 0) throw new Win32Exception(LsaNtStatusToWinError(status), function + " failed: 0x" + status.ToString("X8"));
    }

    static LSA_UNICODE_STRING[] Strings(string right)
    {
        var text = new LSA_UNICODE_STRING();
        text.Buffer = Marshal.StringToHGlobalUni(right);
        text.Length = (ushort)(right.Length * 2);
        text.MaximumLength = (ushort)(text.Length + 2);
        return new[] { text };
    }

    public static void Add(string sid, string right)
    {
        var policy = Open();
        var rights = Strings(right);
        try { Check(LsaAddAccountRights(policy, Sid(sid), rights, 1), "LsaAddAccountRights"); }
        finally { Marshal.FreeHGlobal(rights[0].Buffer); LsaClose(policy); }
    }

    public static void Remove(string sid, string right)
    {
        var policy = Open();
        var rights = Strings(right);
        try
        {
            var status = LsaRemoveAccountRights(policy, Sid(sid), false, rights, 1);
            if (status != STATUS_OBJECT_NAME_NOT_FOUND) Check(status, "LsaRemoveAccountRights");
        }
        finally { Marshal.FreeHGlobal(rights[0].Buffer); LsaClose(policy); }
    }

    public static void RemoveAll(string sid)
    {
        var policy = Open();
        try
        {
            var status = LsaRemoveAccountRights(policy, Sid(sid), true, null, 0);
            if (status != STATUS_OBJECT_NAME_NOT_FOUND) Check(status, "LsaRemoveAccountRights");
        }
        finally { LsaClose(policy); }
    }

    public static string[] Get(string sid)
    {
        var policy = Open();
        var found = new List<string>();
        try
        {
            IntPtr buffer;
            uint count;
            var status = LsaEnumerateAccountRights(policy, Sid(sid), out buffer, out count);
            if (status == STATUS_OBJECT_NAME_NOT_FOUND) return found.ToArray();
            Check(status, "LsaEnumerateAccountRights");
            try
            {
                var size = Marshal.SizeOf(typeof(LSA_UNICODE_STRING));
                for (var i = 0; i < count; i++)
                {
                    var text = (LSA_UNICODE_STRING)Marshal.PtrToStructure(new IntPtr(buffer.ToInt64() + i * size), typeof(LSA_UNICODE_STRING));
                    found.Add(Marshal.PtrToStringUni(text.Buffer, text.Length / 2));
                }
            }
            finally { LsaFreeMemory(buffer); }
        }
        finally { LsaClose(policy); }
        return found.ToArray();
    }
}
'@
}

# The test service: a real Windows service that, while it runs, keeps one child process per line
# of the sessions file named in its command line, as the agent keeps processes per render session.
# Its other arguments make it slow to start or to stop, or end its process some seconds after a
# start without telling the Service Control Manager (which then records exit code 1067 and event 7034).
$script:TestServiceSource = @'
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.ServiceProcess;
using System.Threading;

public class CmfContractTestService : ServiceBase
{
    readonly string sessionsFile;
    readonly int startSeconds;
    readonly int stopSeconds;
    readonly int exitAfterSeconds;
    readonly List<Process> children = new List<Process>();

    public CmfContractTestService(string sessionsFile, int startSeconds, int stopSeconds, int exitAfterSeconds)
    {
        this.sessionsFile = sessionsFile;
        this.startSeconds = startSeconds;
        this.stopSeconds = stopSeconds;
        this.exitAfterSeconds = exitAfterSeconds;
    }

    protected override void OnStart(string[] args)
    {
        if (startSeconds > 0)
        {
            // START_PENDING for that long: the Service Control Manager is told to wait.
            RequestAdditionalTime((startSeconds + 30) * 1000);
            Thread.Sleep(startSeconds * 1000);
        }
        if (exitAfterSeconds >= 0)
        {
            var exit = new Thread(() => { Thread.Sleep(exitAfterSeconds * 1000); Environment.Exit(1); });
            exit.IsBackground = true;
            exit.Start();
        }
        if (sessionsFile == null || !File.Exists(sessionsFile)) return;
        foreach (var line in File.ReadAllLines(sessionsFile))
        {
            if (line.Trim().Length == 0) continue;
            var start = new ProcessStartInfo(Path.Combine(Environment.SystemDirectory, "ping.exe"), "-n 86400 127.0.0.1");
            start.UseShellExecute = false;
            start.CreateNoWindow = true;
            children.Add(Process.Start(start));
        }
    }

    protected override void OnStop()
    {
        foreach (var child in children)
        {
            try { if (!child.HasExited) child.Kill(); } catch (InvalidOperationException) { }
        }
        children.Clear();
        if (stopSeconds > 0)
        {
            // STOP_PENDING for that long.
            RequestAdditionalTime((stopSeconds + 30) * 1000);
            Thread.Sleep(stopSeconds * 1000);
        }
    }

    static int Number(string[] args, int index, int otherwise)
    {
        int value;
        return args.Length > index && int.TryParse(args[index], out value) ? value : otherwise;
    }

    public static void Main(string[] args)
    {
        ServiceBase.Run(new CmfContractTestService(args.Length > 0 ? args[0] : null, Number(args, 1, 0), Number(args, 2, 0), Number(args, 3, -1)));
    }
}
'@

# A stand-in for the Python beside the agent's service (read_agent_info runs it to read the agent's
# version): it writes python.stdout and python.stderr from its own folder and exits with the number
# in python.exitcode, whatever it is asked.
$script:StandInPythonSource = @'
using System;
using System.IO;

public static class CmfContractStandInPython
{
    static string Beside(string name)
    {
        string path = Path.Combine(AppDomain.CurrentDomain.BaseDirectory, name);
        return File.Exists(path) ? File.ReadAllText(path) : "";
    }

    public static int Main(string[] args)
    {
        Console.Out.Write(Beside("python.stdout"));
        Console.Error.Write(Beside("python.stderr"));
        string code = Beside("python.exitcode").Trim();
        return code.Length > 0 ? int.Parse(code) : 0;
    }
}
'@

function New-CmfRandomSuffix {
    -join ((1..6) | ForEach-Object { '{0:x}' -f (Get-Random -Maximum 16) })
}

function New-CmfPassword {
    $bytes = New-Object byte[] 24
    [Security.Cryptography.RandomNumberGenerator]::Create().GetBytes($bytes)
    # Complexity rules want upper, lower, digit and symbol: the fixed part gives them.
    'Cmf-9x' + [Convert]::ToBase64String($bytes).Replace('/', 'a').Replace('+', 'b').Replace('=', 'c')
}

function Get-CmfProperty {
    # The value whole: the unary comma keeps PowerShell from unrolling it, so that an empty list
    # stays an empty list (not $null) and a one-item list stays a list (not its item).
    param($Object, [string]$Name)
    if ($null -eq $Object) { return $null }
    if ($Object -is [Collections.IDictionary]) { return , $Object[$Name] }
    $property = $Object.PSObject.Properties[$Name]
    if ($property) { return , $property.Value }
    return $null
}

function Get-CmfKeys {
    param($Object)
    if ($null -eq $Object) { return @() }
    if ($Object -is [Collections.IDictionary]) { return @($Object.Keys) }
    return @($Object.PSObject.Properties | ForEach-Object { $_.Name })
}

function Test-CmfMapping {
    param($Value)
    return ($Value -is [Collections.IDictionary]) -or ($Value -is [Management.Automation.PSCustomObject])
}

function Test-CmfList {
    param($Value)
    return ($Value -is [array]) -or ($Value -is [Collections.IList] -and -not (Test-CmfMapping $Value))
}

# ---------------------------------------------------------------------------------------------
# the run: one base folder, the test service's program, and an undo list for everything

function New-CmfSession {
    param([Parameter(Mandatory)][string]$RepositoryRoot)
    $suffix = New-CmfRandomSuffix
    $base = Join-Path $env:SystemDrive "cmf-contract-$suffix"
    $session = [pscustomobject]@{
        Suffix = $suffix
        Base = $base
        Repository = $RepositoryRoot
        Scripts = Join-Path $PSScriptRoot 'scripts'
        ServiceProgram = Join-Path $base 'bin\CmfContractTestService.exe'
        StandInPython = Join-Path $base 'bin\CmfContractStandInPython.exe'
        Undo = New-Object Collections.ArrayList
        Cases = 0
        Timings = New-Object Collections.ArrayList
    }
    Register-CmfUndo $session { param($s) if (Test-Path -LiteralPath $s.Base) { Remove-Item -LiteralPath $s.Base -Recurse -Force } }
    New-Item -ItemType Directory -Path (Join-Path $base 'bin') -Force | Out-Null
    $source = Join-Path $base 'bin\CmfContractTestService.cs'
    [IO.File]::WriteAllText($source, $script:TestServiceSource)
    # csc.exe of .NET Framework 4 is part of every supported Windows; PowerShell 7's Add-Type cannot write an .exe.
    $compiler = Join-Path $env:WINDIR 'Microsoft.NET\Framework64\v4.0.30319\csc.exe'
    $run = Invoke-CmfTool $compiler @('/nologo', '/target:exe', '/reference:System.ServiceProcess.dll', "/out:$($session.ServiceProgram)", $source)
    if ($run.ExitCode -ne 0) { throw "csc.exe could not build the test service: $($run.Output -join "`n")" }
    $source = Join-Path $base 'bin\CmfContractStandInPython.cs'
    [IO.File]::WriteAllText($source, $script:StandInPythonSource)
    $run = Invoke-CmfTool $compiler @('/nologo', '/target:exe', "/out:$($session.StandInPython)", $source)
    if ($run.ExitCode -ne 0) { throw "csc.exe could not build the stand-in Python: $($run.Output -join "`n")" }
    return $session
}

function Invoke-CmfTool {
    # A native program with its stdout and stderr together: @{ ExitCode; Output }. Continue in this
    # scope: under Stop, Windows PowerShell 5.1 turns the first stderr line of `2>&1` into a
    # terminating error (PowerShell 7.2 changed that), and a compiler warning would end the run.
    param([Parameter(Mandatory)][string]$FilePath, [string[]]$ArgumentList = @())
    $ErrorActionPreference = 'Continue'
    $output = & $FilePath @ArgumentList 2>&1
    @{ ExitCode = $LASTEXITCODE; Output = @($output | ForEach-Object { [string]$_ }) }
}

function Register-CmfUndo {
    param([Parameter(Mandatory)]$Owner, [Parameter(Mandatory)][scriptblock]$Action)
    [void]$Owner.Undo.Add(@{ Action = $Action; Owner = $Owner })
}

function Invoke-CmfUndo {
    # Last in, first out; each step in its own try, so that one failure leaves nothing else behind.
    param([Parameter(Mandatory)]$Owner)
    for ($i = $Owner.Undo.Count - 1; $i -ge 0; $i--) {
        $step = $Owner.Undo[$i]
        try { & $step.Action $step.Owner } catch { Write-Warning "cleanup step failed: $($_.Exception.Message)" }
    }
    $Owner.Undo.Clear()
}

function Remove-CmfSession {
    param([Parameter(Mandatory)]$Session)
    Invoke-CmfUndo $Session
}

function Get-CmfTimingSummary {
    # Per operation: calls, and the median and longest time of a call in milliseconds (the longest
    # of the first operation to need the C# includes its compile).
    param([Parameter(Mandatory)]$Session)
    foreach ($group in @($Session.Timings | Group-Object -Property Operation | Sort-Object -Property Name)) {
        $times = @($group.Group | ForEach-Object { [long]$_.Milliseconds } | Sort-Object)
        [pscustomobject]@{ Operation = $group.Name; Calls = $times.Count; MedianMs = $times[[int][Math]::Floor(($times.Count - 1) / 2)]; MaxMs = $times[-1] }
    }
}

# ---------------------------------------------------------------------------------------------
# placeholders

function Expand-CmfValue {
    param($Context, $Value)
    if ($null -eq $Value) { return $null }
    if ($Value -is [string]) {
        $evaluator = [Text.RegularExpressions.MatchEvaluator] {
            param($match)
            Resolve-CmfPlaceholder -Context $Context -Match $match
        }
        return [regex]::Replace($Value, $script:Placeholder, $evaluator)
    }
    if (Test-CmfMapping $Value) {
        $expanded = [ordered]@{}
        foreach ($key in Get-CmfKeys $Value) {
            $expanded[(Expand-CmfValue -Context $Context -Value $key)] = Expand-CmfValue -Context $Context -Value (Get-CmfProperty $Value $key)
        }
        return [pscustomobject]$expanded
    }
    if (Test-CmfList $Value) {
        return , @(foreach ($item in $Value) { , (Expand-CmfValue -Context $Context -Value $item) })
    }
    return $Value
}

function Resolve-CmfPlaceholder {
    param($Context, $Match)
    $simple = $Match.Groups[1].Value
    $kind = $Match.Groups[2].Value
    $argument = $Match.Groups[3].Value
    switch ($simple) {
        'root' { return $Context.Root }
        'root_re' { return [regex]::Escape($Context.Root) }
        'host' { return $env:COMPUTERNAME }
        'service' { return $Context.Service }
    }
    if ($kind -eq 'stamp') {
        # The invariant culture's calendar, as write_file names its backups (th-TH would give 2568).
        return $Context.Now.AddSeconds([int]$argument).ToString('yyyyMMdd-HHmmss', [Globalization.CultureInfo]::InvariantCulture)
    }
    $table = @{ name = $Context.Names; qname = $Context.QNames; sid = $Context.Sids }[$kind]
    if ($table.ContainsKey($argument)) { return $table[$argument] }
    # A logical name this host does not have: unique to this run, so no such account exists.
    if ($kind -eq 'sid') { return "S-1-5-21-1-2-3-4999" }
    return "cmf-absent-$argument-$($Context.Session.Suffix)"
}

# ---------------------------------------------------------------------------------------------
# accounts, through ADSI (both shells)

function Get-CmfComputer { [ADSI]"WinNT://$env:COMPUTERNAME,computer" }

function Get-CmfSid {
    param([Parameter(Mandatory)][string]$Name)
    (New-Object Security.Principal.NTAccount($env:COMPUTERNAME, $Name)).Translate([Security.Principal.SecurityIdentifier]).Value
}

function Get-CmfLocalName {
    param([Parameter(Mandatory)][string]$Sid)
    $account = (New-Object Security.Principal.SecurityIdentifier($Sid)).Translate([Security.Principal.NTAccount]).Value
    return $account.Substring($account.IndexOf('\') + 1)
}

function Get-CmfGroupMemberSids {
    param([Parameter(Mandatory)][string]$GroupName)
    $group = [ADSI]"WinNT://$env:COMPUTERNAME/$GroupName,group"
    foreach ($member in @($group.psbase.Invoke('Members'))) {
        $bytes = $member.GetType().InvokeMember('objectSid', 'GetProperty', $null, $member, $null)
        (New-Object Security.Principal.SecurityIdentifier($bytes, 0)).Value
    }
}

function Add-CmfGroupMember {
    param($Context, [string]$GroupName, [string]$MemberSid)
    $group = [ADSI]"WinNT://$env:COMPUTERNAME/$GroupName,group"
    if (@(Get-CmfGroupMemberSids $GroupName) -contains $MemberSid) { return }
    $group.Add("WinNT://$MemberSid")
    Register-CmfUndo $Context ([scriptblock]::Create(
            "param(`$c) if (@(Get-CmfGroupMemberSids '$GroupName') -contains '$MemberSid') { ([ADSI]'WinNT://$env:COMPUTERNAME/$GroupName,group').Remove('WinNT://$MemberSid') }"))
}

function New-CmfUser {
    param($Context, [string]$Logical, $Spec)
    $name = "$Logical-$($Context.Suffix)"
    if ($name.Length -gt 20) { $name = $name.Substring($name.Length - 20) }  # SAM account names: 20 characters
    $password = New-CmfPassword
    $user = (Get-CmfComputer).Create('user', $name)
    $user.SetPassword($password)
    $user.SetInfo()
    $sid = Get-CmfSid $name
    Register-CmfUndo $Context ([scriptblock]::Create(
            "param(`$c) [CmfContractLsa]::RemoveAll('$sid'); (Get-CmfComputer).Delete('user', '$name')"))
    # A service that ran as the user made it a profile: removed before the user, after the service (undo runs last first).
    Register-CmfUndo $Context ([scriptblock]::Create(
            "param(`$c) Get-CimInstance -ClassName Win32_UserProfile -Filter `"SID='$sid'`" | Remove-CimInstance"))
    if ($false -eq (Get-CmfProperty $Spec 'enabled')) {
        $user.UserFlags.Value = $user.UserFlags.Value -bor 2  # ADS_UF_ACCOUNTDISABLE
        $user.SetInfo()
    }
    $Context.Names[$Logical] = $name
    $Context.QNames[$Logical] = "$env:COMPUTERNAME\$name"
    $Context.Sids[$Logical] = $sid
    $Context.Passwords[$Logical] = $password
}

function New-CmfGroup {
    param($Context, [string]$Logical)
    $name = "$Logical-$($Context.Suffix)"
    $group = (Get-CmfComputer).Create('group', $name)
    $group.SetInfo()
    $sid = Get-CmfSid $name
    Register-CmfUndo $Context ([scriptblock]::Create(
            "param(`$c) [CmfContractLsa]::RemoveAll('$sid'); (Get-CmfComputer).Delete('group', '$name')"))
    $Context.Names[$Logical] = $name
    $Context.QNames[$Logical] = "$env:COMPUTERNAME\$name"
    $Context.Sids[$Logical] = $sid
}

# ---------------------------------------------------------------------------------------------
# a vector's host on this machine

function Get-CmfSkipReason {
    param([Parameter(Mandatory)]$Case)
    $reason = Get-CmfProperty $Case 'windows_skip'
    if ($reason) { return [string]$reason }
    if (Get-CmfProperty $Case.host 'faults') {
        return 'needs a fault of the simulated worker, which this host cannot be brought to on purpose'
    }
    if (Get-CmfProperty $Case.host 'domain_groups') {
        return 'needs a domain group nested in a local group; this suite builds local accounts only'
    }
    return $null
}

function New-CmfHost {
    param([Parameter(Mandatory)]$Session, [Parameter(Mandatory)]$Case)
    $Session.Cases++
    $identity = [Security.Principal.WindowsIdentity]::GetCurrent()
    $context = [pscustomobject]@{
        Session = $Session
        Suffix = "$($Session.Suffix)$($Session.Cases)"
        Root = Join-Path $Session.Base "case-$($Session.Cases)"
        Service = "cmf-contract-$($Session.Suffix)-$($Session.Cases)"
        Now = [DateTime]::UtcNow
        Names = @{ connection = $identity.Name.Substring($identity.Name.IndexOf('\') + 1) }
        QNames = @{ connection = $identity.Name }
        Sids = @{ connection = $identity.User.Value }
        Passwords = @{}
        Undo = New-Object Collections.ArrayList
        SessionPids = @()
        Handles = New-Object Collections.ArrayList
        Skip = $null
    }
    $administrator = Get-CimInstance -ClassName Win32_UserAccount -Filter "LocalAccount=True AND SID LIKE 'S-1-5-21-%-500'"
    if ($administrator) {
        $context.Names['Administrator'] = $administrator.Name
        $context.QNames['Administrator'] = "$env:COMPUTERNAME\$($administrator.Name)"
        $context.Sids['Administrator'] = $administrator.SID
    }
    # The run undoes the case too, should the test stop before its own cleanup (undoing twice does nothing).
    [void]$Session.Undo.Add(@{ Action = { param($c) Invoke-CmfUndo $c }; Owner = $context })
    New-Item -ItemType Directory -Path $context.Root -Force | Out-Null
    Register-CmfUndo $context { param($c) foreach ($handle in @($c.Handles)) { $handle.Dispose() }; $c.Handles.Clear() }
    $spec = $Case.host
    try {
        foreach ($logical in Get-CmfKeys (Get-CmfProperty $spec 'users')) { New-CmfUser $context $logical (Get-CmfProperty $spec.users $logical) }
        foreach ($logical in @(Get-CmfProperty $spec 'orphans')) { if ($logical) { New-CmfUser $context $logical $null } }
        foreach ($logical in Get-CmfKeys (Get-CmfProperty $spec 'groups')) { New-CmfGroup $context $logical }
        foreach ($english in @('Administrators') + @(Get-CmfKeys (Get-CmfProperty $spec 'builtin'))) {
            $sid = $script:BuiltinGroups[$english.ToLowerInvariant()]
            $current = Get-CmfLocalName $sid
            $wanted = Get-CmfProperty (Get-CmfProperty (Get-CmfProperty $spec 'builtin') $english) 'name'
            if ($wanted -and $wanted -ne $current) {
                # A localized name on this host: renamed for the case, named back afterwards.
                ([ADSI]"WinNT://$env:COMPUTERNAME/$current,group").psbase.Rename($wanted)
                Register-CmfUndo $context ([scriptblock]::Create(
                        "param(`$c) ([ADSI]'WinNT://$env:COMPUTERNAME/$wanted,group').psbase.Rename('$current')"))
                $current = $wanted
            }
            $context.Names[$english] = $current
            $context.QNames[$english] = "BUILTIN\$current"
            $context.Sids[$english] = $sid
        }
        foreach ($table in 'groups', 'builtin') {
            $groups = Get-CmfProperty $spec $table
            foreach ($logical in Get-CmfKeys $groups) {
                foreach ($member in @(Get-CmfProperty (Get-CmfProperty $groups $logical) 'members')) {
                    if ($member) { Add-CmfGroupMember $context $context.Names[$logical] $context.Sids[$member] }
                }
            }
        }
        foreach ($logical in @(Get-CmfProperty $spec 'orphans')) {
            if (-not $logical) { continue }
            # The account goes, its SID stays in the groups it was in: an orphaned member.
            (Get-CmfComputer).Delete('user', $context.Names[$logical])
            $orphan = $context.Sids[$logical]
            $kept = $false
            foreach ($logicalGroup in Get-CmfKeys (Get-CmfProperty $spec 'groups')) {
                if (@(Get-CmfGroupMemberSids $context.Names[$logicalGroup]) -contains $orphan) { $kept = $true }
            }
            if (-not $kept) { $context.Skip = 'this Windows removed the deleted account from its groups, so no orphaned SID could be made' }
        }
        $rights = Get-CmfProperty $spec 'rights'
        foreach ($right in Get-CmfKeys $rights) {
            foreach ($holder in @(Get-CmfProperty $rights $right)) { [CmfContractLsa]::Add($context.Sids[$holder], $right) }
        }
        $environment = Get-CmfProperty $spec 'environment'
        foreach ($variable in Get-CmfKeys $environment) {
            $before = [Environment]::GetEnvironmentVariable($variable, 'Machine')
            [Environment]::SetEnvironmentVariable($variable, [string](Get-CmfProperty $environment $variable), 'Machine')
            $restore = if ($null -eq $before) { '$null' } else { "'" + $before.Replace("'", "''") + "'" }
            Register-CmfUndo $context ([scriptblock]::Create("param(`$c) [Environment]::SetEnvironmentVariable('$variable', $restore, 'Machine')"))
        }
        $folders = Get-CmfProperty $spec 'folders'
        foreach ($path in Get-CmfKeys $folders) {
            # A folder with the security the case gives it (the sandbox's checks): a DACL, or a junction.
            $target = Expand-CmfValue $context $path
            $entry = Expand-CmfValue $context (Get-CmfProperty $folders $path)
            if ([IO.Directory]::Exists($target)) { throw "$target exists already (another run's?): remove it first" }
            $junction = Get-CmfProperty $entry 'junction_to'
            if ($junction) {
                New-Item -ItemType Directory -Path $junction -Force | Out-Null
                New-Item -ItemType Junction -Path $target -Value $junction | Out-Null
                # Not recursive: that removes the link alone, never what it points to.
                Register-CmfUndo $context ([scriptblock]::Create("param(`$c) [IO.Directory]::Delete('$target')"))
            }
            else {
                New-Item -ItemType Directory -Path $target | Out-Null
                Register-CmfUndo $context ([scriptblock]::Create("param(`$c) [IO.Directory]::Delete('$target', `$true)"))
                # The owner a vector leaves out is Administrators, whatever the token's default owner
                # (the user's own, under a full token without UAC): only the owner section is written.
                $ownerOnly = New-Object Security.AccessControl.DirectorySecurity
                $ownerOnly.SetOwner((New-Object Security.Principal.SecurityIdentifier 'S-1-5-32-544'))
                [IO.Directory]::SetAccessControl($target, $ownerOnly)
                $dacl = Get-CmfProperty $entry 'acl'
                if ($dacl) { Set-CmfFileDacl $target $dacl }
            }
            $owner = Get-CmfProperty $entry 'owner'
            if ($owner -and $owner -ne 'Administrators') {
                $context.Skip = "giving $target to another owner needs SeRestorePrivilege, which this suite does not take"
            }
        }
        $files = Get-CmfProperty $spec 'files'
        foreach ($path in Get-CmfKeys $files) {
            $target = Expand-CmfValue $context $path
            $entry = Expand-CmfValue $context (Get-CmfProperty $files $path)
            New-Item -ItemType Directory -Path ([IO.Path]::GetDirectoryName($target)) -Force | Out-Null
            [IO.File]::WriteAllBytes($target, (ConvertTo-CmfBytes $entry))
            $dacl = Get-CmfProperty $entry 'acl'
            if ($dacl) { Set-CmfFileDacl $target $dacl }
            if (Get-CmfProperty $entry 'open_without_delete_sharing') {
                # Another holder's handle, as an editor or a scanner keeps one: read and write shared, delete not.
                $handle = New-Object IO.FileStream -ArgumentList $target, ([IO.FileMode]::Open), ([IO.FileAccess]::Read), ([IO.FileShare]::ReadWrite)
                [void]$context.Handles.Add($handle)
            }
        }
        $service = Get-CmfProperty $spec 'service'
        if ($service) { New-CmfTestService $context $service $rights (Get-CmfProperty $spec 'agent') }
        foreach ($logical in Get-CmfKeys (Get-CmfProperty $spec 'users')) {
            $variables = Get-CmfProperty (Get-CmfProperty $spec.users $logical) 'environment'
            if ($null -ne $variables) { Set-CmfUserVariables $context $logical $variables }
        }
    }
    catch {
        Invoke-CmfUndo $context
        throw
    }
    return $context
}

function ConvertTo-CmfDacl {
    # A DACL in SDDL with only its protected flag kept (Windows adds AI, auto-inherited, when it stores one).
    param([string]$Sddl)
    if ($Sddl -notmatch '^D:(?<flags>[A-Z]*)(?<aces>\(.*)$') { return $Sddl }
    'D:' + $(if ($Matches['flags'].Contains('P')) { 'P' } else { '' }) + $Matches['aces']
}

function Set-CmfFileDacl {
    param([string]$Path, [string]$Sddl)
    $security = Get-Acl -LiteralPath $Path
    $security.SetSecurityDescriptorSddlForm($Sddl, 'Access')
    Set-Acl -LiteralPath $Path -AclObject $security
}

function Get-CmfFileDacl {
    param([string]$Path)
    ConvertTo-CmfDacl (Get-Acl -LiteralPath $Path).GetSecurityDescriptorSddlForm('Access')
}

function ConvertTo-CmfBytes {
    param($Content)
    $base64 = Get-CmfProperty $Content 'base64'
    if ($null -ne $base64) { return [Convert]::FromBase64String($base64) }
    return (New-Object Text.UTF8Encoding($false)).GetBytes([string](Get-CmfProperty $Content 'text'))
}

function New-CmfTestService {
    param($Context, $Spec, $Rights, $Agent)
    $sessions = @(Get-CmfProperty $Spec 'sessions' | Where-Object { $_ })
    $sessionsFile = Join-Path $Context.Root 'sessions.txt'
    [IO.File]::WriteAllLines($sessionsFile, [string[]]@($sessions | ForEach-Object { [string]$_.id }))
    foreach ($session in $sessions) {
        # What the agent leaves under its session root while a session runs.
        New-Item -ItemType Directory -Path (Join-Path $Context.Root "sessions\$($session.id)") -Force | Out-Null
    }
    $startMode = Get-CmfProperty $Spec 'start_mode'
    $startupType = 'Automatic'
    if ("$startMode" -eq 'disabled') { $startupType = 'Disabled' }
    elseif ("$startMode" -eq 'manual') { $startupType = 'Manual' }
    $timings = foreach ($key in 'start_seconds', 'stop_seconds', 'exits_after_s') {
        $value = Get-CmfProperty $Spec $key
        if ($null -eq $value) { $(if ($key -eq 'exits_after_s') { -1 } else { 0 }) } else { [int]$value }
    }
    $program = $Context.Session.ServiceProgram
    if ($null -ne $Agent) {
        # The service runs from a folder of its own with a python.exe beside it, as pywin32's service does.
        $folder = Join-Path $Context.Root 'agent'
        New-Item -ItemType Directory -Path $folder -Force | Out-Null
        $program = Join-Path $folder 'CmfContractTestService.exe'
        Copy-Item -LiteralPath $Context.Session.ServiceProgram -Destination $program
        Copy-Item -LiteralPath $Context.Session.StandInPython -Destination (Join-Path $folder 'python.exe')
        $version = Get-CmfProperty $Agent 'version'
        if ($version) {
            $location = Join-Path $folder 'Lib\site-packages\deadline_worker_agent'
            [IO.File]::WriteAllText((Join-Path $folder 'python.stdout'), (ConvertTo-Json -InputObject @([string]$version, $location) -Compress) + "`r`n")
        }
        else {
            [IO.File]::WriteAllText((Join-Path $folder 'python.stderr'), [string](Get-CmfProperty $Agent 'stderr'))
            [IO.File]::WriteAllText((Join-Path $folder 'python.exitcode'), [string](Get-CmfProperty $Agent 'exit_code'))
        }
    }
    $binaryPath = "`"$program`" `"$sessionsFile`" $($timings -join ' ')"
    New-Service -Name $Context.Service -BinaryPathName $binaryPath -StartupType $startupType -DisplayName "cmf contract test $($Context.Service)" | Out-Null
    Register-CmfUndo $Context ([scriptblock]::Create("param(`$c) Remove-CmfTestService '$($Context.Service)'"))
    $environment = @(Get-CmfProperty $Spec 'environment' | Where-Object { $_ })
    if ($environment.Count -gt 0) {
        # The service's own variables (deleted with the service).
        $key = [Microsoft.Win32.Registry]::LocalMachine.OpenSubKey("SYSTEM\CurrentControlSet\Services\$($Context.Service)", $true)
        try { $key.SetValue('Environment', [string[]]$environment, [Microsoft.Win32.RegistryValueKind]::MultiString) } finally { $key.Dispose() }
    }
    $account = [string](Get-CmfProperty $Spec 'account')
    if ($account -and $account -ne 'LocalSystem') {
        $run = Invoke-CmfTool 'sc.exe' @('config', $Context.Service, 'obj=', ".\$($Context.Names[$account])", 'password=', $Context.Passwords[$account])
        if ($run.ExitCode -ne 0) { throw "sc.exe config failed: $($run.Output -join ' ')" }
        # The logon right is exactly what the vector says, whatever tool set the account.
        $holders = @(Get-CmfProperty $Rights 'SeServiceLogonRight')
        if ($holders -notcontains $account) { [CmfContractLsa]::Remove($Context.Sids[$account], 'SeServiceLogonRight') }
    }
    if ((Get-CmfProperty $Spec 'state') -eq 'running') {
        # (A slow start makes this wait for it: the case begins with the service running.)
        Start-Service -Name $Context.Service
        $servicePid = (Get-CimInstance -ClassName Win32_Service -Filter "Name='$($Context.Service)'").ProcessId
        $Context.SessionPids = @(Get-CimInstance -ClassName Win32_Process -Filter "ParentProcessId=$servicePid" | ForEach-Object { $_.ProcessId })
        # Groups the account leaves once its service runs: the process keeps them in its token.
        foreach ($left in @(Get-CmfProperty $Spec 'left_after_start' | Where-Object { $_ })) {
            $groupName = $Context.Names[[string]$left]
            if (@(Get-CmfGroupMemberSids $groupName) -contains $Context.Sids[$account]) {
                ([ADSI]"WinNT://$env:COMPUTERNAME/$groupName,group").Remove("WinNT://$($Context.Sids[$account])")
            }
        }
    }
}

function Set-CmfUserVariables {
    # The account's own variables, in HKU\<sid>\Environment: there only while its profile is loaded
    # (a running service of that account loads it), deleted with the profile.
    param($Context, [string]$Logical, $Variables)
    $sid = $Context.Sids[$Logical]
    $hive = [Microsoft.Win32.Registry]::Users.OpenSubKey($sid)
    if ($null -eq $hive) {
        $Context.Skip = "the profile of $Logical is not loaded (no HKU\$sid), so its user variables cannot be written"
        return
    }
    $hive.Dispose()
    $key = [Microsoft.Win32.Registry]::Users.CreateSubKey("$sid\Environment")
    try {
        foreach ($name in Get-CmfKeys $Variables) { $key.SetValue($name, [string](Get-CmfProperty $Variables $name)) }
    }
    finally {
        $key.Dispose()
    }
}

function Remove-CmfTestService {
    # Stopped (a pending start or stop is waited out first: a service accepts no stop while it starts),
    # its process ended if it hangs, then deleted.
    param([Parameter(Mandatory)][string]$Name)
    $controller = New-Object System.ServiceProcess.ServiceController -ArgumentList $Name
    $deadline = [DateTime]::UtcNow.AddSeconds(120)
    try {
        while ([DateTime]::UtcNow -lt $deadline) {
            $controller.Refresh()
            $status = [string]$controller.Status
            if ($status -eq 'Stopped') { break }
            if ($status -eq 'Running') { try { $controller.Stop() } catch { Write-Verbose "stop: $($_.Exception.Message)" } }
            Start-Sleep -Milliseconds 500
        }
    }
    catch [InvalidOperationException] {
        return  # no such service (any more)
    }
    $instance = Get-CimInstance -ClassName Win32_Service -Filter "Name='$Name'"
    if ($instance -and $instance.ProcessId -gt 0) { Stop-Process -Id $instance.ProcessId -Force -ErrorAction SilentlyContinue }
    [void](Invoke-CmfTool 'sc.exe' @('delete', $Name))
}

function Remove-CmfHost {
    param([Parameter(Mandatory)]$Context)
    Invoke-CmfUndo $Context
}

# ---------------------------------------------------------------------------------------------
# running an operation as win_powershell does

function Get-CmfScriptText {
    # The operation's script as the controller sends it: scripts\<operation>.ps1 is exported from
    # _host.powershell_host.script_text (its includes expanded there), and a pytest test fails when
    # the export is stale. No include logic here: this suite runs the bytes Ansible sends.
    param([Parameter(Mandatory)]$Session, [Parameter(Mandatory)][string]$Operation)
    return [IO.File]::ReadAllText((Join-Path $Session.Scripts "$Operation.ps1"))
}

function ConvertTo-CmfParameterName {
    # As _host.powershell_host.powershell_parameter_name: expected_sha256 -> ExpectedSha256.
    param([Parameter(Mandatory)][string]$Name)
    -join ($Name.Split('_') | ForEach-Object { if ($_) { $_.Substring(0, 1).ToUpperInvariant() + $_.Substring(1) } })
}

function Invoke-CmfOperation {
    # $LanguageMode: the runspace's, as an application control policy (WDAC, AppLocker) would set it
    # for an unsigned script: ConstrainedLanguage.
    param([Parameter(Mandatory)]$Session, [Parameter(Mandatory)][string]$Operation, [Parameter(Mandatory)]$Parameters,
        [string]$LanguageMode = 'FullLanguage')
    $bound = @{}
    foreach ($key in Get-CmfKeys $Parameters) {
        $value = Get-CmfProperty $Parameters $key
        if (Test-CmfList $value) { $value = [string[]]@($value) }
        $bound[(ConvertTo-CmfParameterName $key)] = $value
    }
    # win_powershell's $Ansible: the script sets Changed and Result; Check and Verbosity are read.
    $ansible = [pscustomobject]@{ Changed = $true; Result = $null; Check = $false; Diff = @{}; Verbosity = 0; Tmpdir = $env:TEMP; Failed = $false }
    $runspace = [runspacefactory]::CreateRunspace()
    $runspace.Open()
    $runspace.SessionStateProxy.SetVariable('Ansible', $ansible)
    $runspace.SessionStateProxy.LanguageMode = [Management.Automation.PSLanguageMode]$LanguageMode
    $shell = [PowerShell]::Create()
    $shell.Runspace = $runspace
    $clock = [Diagnostics.Stopwatch]::StartNew()
    try {
        [void]$shell.AddScript((Get-CmfScriptText $Session $Operation)).AddParameters($bound)
        try {
            [void]$shell.Invoke()
            # The time of a call in a new runspace: what the decision against a cached assembly
            # (_host/powershell_host.py) is to be revisited with. The C# is compiled by the first call
            # that needs it only: later calls in this process find its types loaded (win_powershell
            # over WinRM starts a new process for every task, and compiles every time).
            [void]$Session.Timings.Add([pscustomobject]@{ Operation = $Operation; Milliseconds = $clock.ElapsedMilliseconds })
        }
        catch {
            $inner = $_.Exception
            while ($inner.InnerException) { $inner = $inner.InnerException }
            return [pscustomobject]@{ error_code = 'HOST_ERROR'; error = $inner.Message }
        }
        if ($shell.HadErrors -and $shell.Streams.Error.Count -gt 0 -and $null -eq $ansible.Result) {
            return [pscustomobject]@{ error_code = 'HOST_ERROR'; error = [string]$shell.Streams.Error[0] }
        }
    }
    finally {
        $shell.Dispose()
        $runspace.Dispose()
    }
    if ($null -eq $ansible.Result) { return [pscustomobject]@{} }
    # The result as the controller sees it: JSON at the depth the controller asks win_powershell for
    # (_host/powershell_host.py, _RESULT_DEPTH): a result nested deeper would come back stringified there too.
    return ($ansible.Result | ConvertTo-Json -Depth 10 -Compress | ConvertFrom-Json)
}

# ---------------------------------------------------------------------------------------------
# comparing

function Test-CmfScalarEqual {
    param($Expected, $Actual)
    if ($null -eq $Expected -or $null -eq $Actual) { return ($null -eq $Expected) -and ($null -eq $Actual) }
    if (($Expected -is [bool]) -or ($Actual -is [bool])) { return ($Expected -is [bool]) -and ($Actual -is [bool]) -and ($Expected -eq $Actual) }
    $numeric = { param($v) ($v -is [int]) -or ($v -is [long]) -or ($v -is [double]) -or ($v -is [decimal]) }
    if ((& $numeric $Expected) -or (& $numeric $Actual)) {
        return (& $numeric $Expected) -and (& $numeric $Actual) -and ([decimal]$Expected -eq [decimal]$Actual)
    }
    return [string]$Expected -ceq [string]$Actual
}

function Get-CmfMismatch {
    # The same matchers as tests/contract_vectors.py mismatches().
    param($Expected, $Actual, [string]$Where = 'result')
    if (Test-CmfMapping $Expected) {
        $keys = @(Get-CmfKeys $Expected)
        if ($keys -contains '$exactly') {
            $want = @(Get-CmfProperty $Expected '$exactly')
            $got = @($Actual)
            if (-not (Test-CmfList $Actual) -or $got.Count -ne $want.Count) { return @("${Where}: $(ConvertTo-Json @($got) -Compress -Depth 20) is not exactly $(ConvertTo-Json $want -Compress -Depth 20)") }
            $problems = @()
            for ($i = 0; $i -lt $want.Count; $i++) { $problems += @(Get-CmfMismatch $want[$i] $got[$i] "$Where[$i]") }
            return $problems
        }
        if ($keys -contains '$regex') {
            if ($Actual -is [string] -and [regex]::IsMatch($Actual, (Get-CmfProperty $Expected '$regex'))) { return @() }
            return @("${Where}: '$Actual' does not match /$(Get-CmfProperty $Expected '$regex')/")
        }
        if ($keys -contains '$type') {
            $ok = switch (Get-CmfProperty $Expected '$type') {
                'list' { Test-CmfList $Actual }
                'dict' { Test-CmfMapping $Actual }
                'str' { $Actual -is [string] }
                'int' { ($Actual -is [int]) -or ($Actual -is [long]) }
                'bool' { $Actual -is [bool] }
                default { $false }
            }
            if ($ok) { return @() }
            return @("${Where}: $(ConvertTo-Json $Actual -Compress -Depth 20) is not a $(Get-CmfProperty $Expected '$type')")
        }
        if (-not (Test-CmfMapping $Actual)) { return @("${Where}: $(ConvertTo-Json $Actual -Compress -Depth 20) is not a mapping") }
        $actualKeys = @(Get-CmfKeys $Actual)
        $problems = @()
        foreach ($key in $keys) {
            if ($key -eq '$without_keys') {
                foreach ($unwanted in @(Get-CmfProperty $Expected $key)) { if ($actualKeys -contains $unwanted) { $problems += "${Where}: has the key '$unwanted'" } }
            }
            elseif ($actualKeys -notcontains $key) { $problems += "${Where}: no key '$key'" }
            else { $problems += @(Get-CmfMismatch (Get-CmfProperty $Expected $key) (Get-CmfProperty $Actual $key) "$Where.$key") }
        }
        return $problems
    }
    if (Test-CmfList $Expected) {
        if (-not (Test-CmfList $Actual)) { return @("${Where}: $(ConvertTo-Json $Actual -Compress -Depth 20) is not a list") }
        $problems = @()
        foreach ($item in $Expected) {
            $found = $false
            foreach ($candidate in $Actual) { if (@(Get-CmfMismatch $item $candidate).Count -eq 0) { $found = $true; break } }
            if (-not $found) { $problems += "${Where}: no item matches $(ConvertTo-Json $item -Compress -Depth 20) in $(ConvertTo-Json @($Actual) -Compress -Depth 20)" }
        }
        return $problems
    }
    if (Test-CmfScalarEqual $Expected $Actual) { return @() }
    return @("${Where}: '$Actual' != '$Expected'")
}

function Get-CmfAfterMismatch {
    # How this host differs from a case's `after`, read with the system's own interfaces.
    param([Parameter(Mandatory)]$Context, $After)
    $problems = @()
    if ($null -eq $After) { return $problems }
    $files = Get-CmfProperty $After 'files'
    foreach ($path in Get-CmfKeys $files) {
        $want = Get-CmfProperty $files $path
        $exists = [IO.File]::Exists($path)
        if ($null -eq $want) { if ($exists) { $problems += "after: $path exists" }; continue }
        if (-not $exists) { $problems += "after: $path does not exist"; continue }
        $got = [Convert]::ToBase64String([IO.File]::ReadAllBytes($path))
        $wanted = [Convert]::ToBase64String((ConvertTo-CmfBytes $want))
        if ($got -ne $wanted) { $problems += "after: $path holds $got (base64), not $wanted" }
    }
    $acls = Get-CmfProperty $After 'acls'
    foreach ($path in Get-CmfKeys $acls) {
        if (-not [IO.File]::Exists($path)) { $problems += "after: $path does not exist, so it has no ACL"; continue }
        $got = Get-CmfFileDacl $path
        $wanted = ConvertTo-CmfDacl (Get-CmfProperty $acls $path)
        if ($got -ne $wanted) { $problems += "after: $path has the ACL $got, not $wanted" }
    }
    $backups = Get-CmfProperty $After 'backups'
    foreach ($pattern in Get-CmfKeys $backups) {
        $found = @(Get-ChildItem -LiteralPath ([IO.Path]::GetDirectoryName($pattern)) -Filter ([IO.Path]::GetFileName($pattern)) -File -ErrorAction SilentlyContinue)
        if ($found.Count -ne [int](Get-CmfProperty $backups $pattern)) { $problems += "after: $($found.Count) files match $pattern, not $(Get-CmfProperty $backups $pattern)" }
    }
    $rights = Get-CmfProperty $After 'rights'
    foreach ($account in Get-CmfKeys $rights) {
        $held = @([CmfContractLsa]::Get($Context.Sids[$account]))
        $spec = Get-CmfProperty $rights $account
        foreach ($right in @(Get-CmfProperty $spec 'has')) { if ($right -and $held -notcontains $right) { $problems += "after: $account lacks $right" } }
        foreach ($right in @(Get-CmfProperty $spec 'lacks')) { if ($right -and $held -contains $right) { $problems += "after: $account holds $right" } }
    }
    $members = Get-CmfProperty $After 'members'
    foreach ($group in Get-CmfKeys $members) {
        $sids = @(Get-CmfGroupMemberSids $Context.Names[$group])
        $spec = Get-CmfProperty $members $group
        foreach ($member in @(Get-CmfProperty $spec 'has')) { if ($member -and $sids -notcontains $Context.Sids[$member]) { $problems += "after: $member is not in $group" } }
        foreach ($member in @(Get-CmfProperty $spec 'lacks')) { if ($member -and $sids -contains $Context.Sids[$member]) { $problems += "after: $member is in $group" } }
    }
    $service = Get-CmfProperty $After 'service'
    if ($service) {
        $instance = Get-CimInstance -ClassName Win32_Service -Filter "Name='$($Context.Service)'"
        $state = Get-CmfProperty $service 'state'
        if ($state -and $instance.State.ToLowerInvariant().Replace(' ', '_') -ne $state) { $problems += "after: the service is $($instance.State), not $state" }
        $running = @(Get-CmfProperty $service 'sessions' | Where-Object { $_ })
        if ($running.Count -gt 0) {
            $alive = @($Context.SessionPids | Where-Object { Get-Process -Id $_ -ErrorAction SilentlyContinue })
            if ($alive.Count -ne $running.Count) { $problems += "after: $($alive.Count) session processes run, not $($running.Count)" }
        }
        $interrupted = @(Get-CmfProperty $service 'interrupted_sessions' | Where-Object { $_ })
        if ($interrupted.Count -gt 0) {
            $alive = @($Context.SessionPids | Where-Object { Get-Process -Id $_ -ErrorAction SilentlyContinue })
            if ($Context.SessionPids.Count -ne $interrupted.Count) { $problems += "after: the service ran $($Context.SessionPids.Count) session processes, not $($interrupted.Count)" }
            if ($alive.Count -gt 0) { $problems += "after: $($alive.Count) session processes still run after the stop" }
        }
    }
    return $problems
}

function Test-CmfCase {
    # Every way this host fails the case; empty when it passes.
    param([Parameter(Mandatory)]$Context, [Parameter(Mandatory)][string]$Operation, [Parameter(Mandatory)]$Case)
    $parameters = Expand-CmfValue $Context $Case.parameters
    $expect = Expand-CmfValue $Context $Case.expect
    $mode = [string](Get-CmfProperty $Case.host 'language_mode')
    if (-not $mode) { $mode = 'FullLanguage' }
    $result = Invoke-CmfOperation -Session $Context.Session -Operation $Operation -Parameters $parameters -LanguageMode $mode
    $problems = @(Get-CmfMismatch $expect $result)
    if (-not (@(Get-CmfKeys $expect) -contains 'error_code') -and (@(Get-CmfKeys $result) -contains 'error_code')) {
        $problems += "refused: $($result.error_code): $($result.error)"
    }
    $problems += @(Get-CmfAfterMismatch $Context (Expand-CmfValue $Context (Get-CmfProperty $Case 'after')))
    return $problems
}

$exported = @(
    'New-CmfSession', 'Remove-CmfSession', 'New-CmfHost', 'Remove-CmfHost', 'Get-CmfSkipReason', 'Test-CmfCase',
    'Get-CmfMismatch', 'Invoke-CmfOperation', 'Get-CmfScriptText', 'Expand-CmfValue', 'Get-CmfGroupMemberSids', 'Get-CmfComputer',
    'Get-CmfProperty', 'Test-CmfList', 'Get-CmfTimingSummary'
)
Export-ModuleMember -Function $exported
