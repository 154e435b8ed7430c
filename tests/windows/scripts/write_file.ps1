# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Replaces a file with new bytes, atomically, only if it still has the hash that was read.
# The new content goes to a temporary file in the same folder; [IO.File]::Replace then swaps it
# in and keeps the target's ACL (Move-Item would carry the temporary file's ACL instead).
# Result: sha256 (of the new bytes), backup_file (null when no backup).
# Refusals: FILE_CHANGED, FILE_EXISTS, FOLDER_NOT_FOUND, CONSTRAINED_LANGUAGE.
param(
    [Parameter(Mandatory)][string]$Path,
    [Parameter(Mandatory)][AllowEmptyString()][string]$Content,
    [Parameter(Mandatory)][AllowEmptyString()][string]$ExpectedSha256,
    [Parameter(Mandatory)][bool]$Backup
)
$ErrorActionPreference = 'Stop'
$Ansible.Changed = $false

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

# Before anything else: ConstrainedLanguage blocks what follows with errors that do not say why.
if (Test-CmfLanguageRefused) { return }

function Set-Refusal([string]$Code, [string]$Message) {
    $Ansible.Result = @{ error_code = $Code; error = $Message }
}

function Get-FreeBackupName([string]$Target) {
    # One-second resolution: two writes in the same second get -1, -2 ... rather than collide.
    $stem = '{0}.{1}' -f $Target, [DateTime]::UtcNow.ToString('yyyyMMdd-HHmmss', [Globalization.CultureInfo]::InvariantCulture)
    $candidate = "$stem.bak"
    $suffix = 0
    while ([IO.File]::Exists($candidate) -or [IO.Directory]::Exists($candidate)) {
        $suffix += 1
        $candidate = "$stem-$suffix.bak"
    }
    $candidate
}

$folder = [IO.Path]::GetDirectoryName($Path)
if (-not [IO.Directory]::Exists($folder)) {
    Set-Refusal 'FOLDER_NOT_FOUND' "the folder $folder does not exist"
    return
}
$exists = [IO.File]::Exists($Path)
if ($exists -and -not $ExpectedSha256) {
    Set-Refusal 'FILE_EXISTS' "$Path exists already"
    return
}
if (-not $exists -and $ExpectedSha256) {
    Set-Refusal 'FILE_CHANGED' "$Path was removed since it was read"
    return
}
if ($exists -and (Get-CmfSha256Hex ([IO.File]::ReadAllBytes($Path))) -ne $ExpectedSha256.ToLowerInvariant()) {
    Set-Refusal 'FILE_CHANGED' "$Path changed since it was read"
    return
}

$bytes = [Convert]::FromBase64String($Content)
$temp = [IO.Path]::Combine($folder, ".{0}.{1}.tmp" -f [IO.Path]::GetFileName($Path), [Guid]::NewGuid().ToString('N'))
$backupFile = $null
# ReplaceFile moves the original aside under a name of its own before it moves the new file in.
# When the second move fails (Win32 1177 ERROR_UNABLE_TO_MOVE_REPLACEMENT_2 and friends) the target
# is gone: the original is put back from that name and the temporary file, the only copy of the new
# bytes, is deleted only once the target exists again. Without a backup the original still goes
# aside under a name of ours, deleted after success: with no name ([NullString]::Value, never $null,
# which PowerShell passes as "") a failure 1176 leaves it under a name Windows chose, out of reach.
$aside = $(if ($Backup) { Get-FreeBackupName $Path } else { '{0}.{1}.old' -f $temp, 'replace' })
try {
    [IO.File]::WriteAllBytes($temp, $bytes)
    if ($exists) {
        try {
            [IO.File]::Replace($temp, $Path, $aside)
        }
        catch {
            $failure = $_
            if (-not [IO.File]::Exists($Path)) {
                if ([IO.File]::Exists($aside)) {
                    [IO.File]::Move($aside, $Path)  # the original back, with its own ACL
                }
                elseif ([IO.File]::Exists($temp)) {
                    [IO.File]::Move($temp, $Path)  # no original left to restore: the new bytes at least
                }
            }
            throw $failure
        }
        if ($Backup) {
            $backupFile = $aside
        }
        elseif ([IO.File]::Exists($aside)) {
            # The new file is in place: an old copy that cannot be deleted now is left, not an error.
            try { [IO.File]::Delete($aside) } catch { Write-Warning "could not delete $aside`: $($_.Exception.Message)" }
        }
    }
    else {
        [IO.File]::Move($temp, $Path)
    }
}
finally {
    if ([IO.File]::Exists($temp) -and [IO.File]::Exists($Path)) {
        [IO.File]::Delete($temp)
    }
}
$Ansible.Changed = $true
$Ansible.Result = @{ sha256 = (Get-CmfSha256Hex $bytes); backup_file = $backupFile }
