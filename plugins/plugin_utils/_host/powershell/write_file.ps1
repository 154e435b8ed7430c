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

#cmf:include Refusal
#cmf:include Sha256

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
