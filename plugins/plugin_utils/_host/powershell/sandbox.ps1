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
#cmf:include Accounts

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
