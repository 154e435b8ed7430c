# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# The self-test's sandbox (worker_selftest): present makes a local user $Name (random password,
# disabled), a local group "${Name}g" with no members and a folder $Name under the system temp
# folder; absent first removes every right the user holds (through the LSA: deleting the user
# leaves them behind as an orphaned SID), then deletes the user, the group and the folder. Both are
# idempotent. Users and groups through ADSI WinNT (no LocalAccounts module: it fails on orphaned
# SIDs and is missing on some Server Core images).
# Result: user @{name; sid}, group @{name; sid}, folder (sid $null for what does not exist).
# Refusals: CONSTRAINED_LANGUAGE (WDAC or AppLocker enforced), before anything is read.
param(
    [Parameter(Mandatory)][string]$Name,
    [Parameter(Mandatory)][ValidateSet('present', 'absent')][string]$State
)
$ErrorActionPreference = 'Stop'
$Ansible.Changed = $false
#cmf:include Accounts

# Before anything else: ConstrainedLanguage blocks what follows with errors that do not say why.
if (Test-CmfLanguageRefused) { return }

# A refusal with its code, as the simulated worker gives it (a ValidatePattern would fail the
# binding instead, with no code to compare).
if ($Name -notmatch '^[A-Za-z0-9_-]{1,19}$') {
    $Ansible.Result = @{ error_code = 'INVALID_NAME'; error = "sandbox name '$Name': 1 to 19 letters, digits, '-' or '_'" }
    return
}

$groupName = "${Name}g"
$folder = Join-Path (Join-Path $env:SystemRoot 'Temp') $Name
$computer = [ADSI]"WinNT://$env:COMPUTERNAME,computer"

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

$user = Find-SandboxEntry -EntryName $Name -Class 'user'
$group = Find-SandboxEntry -EntryName $groupName -Class 'group'
$userSid = Get-SandboxSid $user
$groupSid = Get-SandboxSid $group

if ($State -eq 'present') {
    if ($null -eq $user) {
        $user = $computer.Create('user', $Name)
        $user.SetPassword((New-SandboxPassword))
        $user.Put('Description', 'deadline_cloud.cmf self-test sandbox (removed by the self-test)')
        $user.SetInfo()
        $user.Put('UserFlags', ([int]$user.psbase.InvokeGet('UserFlags') -bor 0x2))  # ADS_UF_ACCOUNTDISABLE
        $user.SetInfo()
        $userSid = Get-SandboxSid $user
        $Ansible.Changed = $true
    }
    if ($null -eq $group) {
        $group = $computer.Create('group', $groupName)
        $group.Put('Description', 'deadline_cloud.cmf self-test sandbox (removed by the self-test)')
        $group.SetInfo()
        $groupSid = Get-SandboxSid $group
        $Ansible.Changed = $true
    }
    if (-not [IO.Directory]::Exists($folder)) {
        [IO.Directory]::CreateDirectory($folder) | Out-Null
        $Ansible.Changed = $true
    }
}
else {
    if ($null -ne $user) {
        $held = @(Get-CmfRights -Sid $userSid)
        if ($held.Count -gt 0) {
            [DeadlineCloudCmf.Lsa]::RemoveRights($userSid, [string[]]$held)
        }
        $computer.Delete('user', $Name)
        $Ansible.Changed = $true
    }
    if ($null -ne $group) {
        $computer.Delete('group', $groupName)
        $Ansible.Changed = $true
    }
    if ([IO.Directory]::Exists($folder)) {
        [IO.Directory]::Delete($folder, $true)
        $Ansible.Changed = $true
    }
}

$Ansible.Result = @{
    user = @{ name = $Name; sid = $userSid }
    group = @{ name = $groupName; sid = $groupSid }
    folder = $folder
}
