# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Replaces a file with new bytes, atomically, only if it still has the hash that was read.
# The new content goes to a temporary file in the same folder; [IO.File]::Replace then swaps it
# in and keeps the target's ACL (Move-Item would carry the temporary file's ACL instead).
param(
    [Parameter(Mandatory)][string]$Path,
    [Parameter(Mandatory)][AllowEmptyString()][string]$Content,
    [Parameter(Mandatory)][AllowEmptyString()][string]$ExpectedSha256,
    [Parameter(Mandatory)][bool]$Backup
)
$ErrorActionPreference = 'Stop'
$Ansible.Changed = $false

function Get-Sha256Hex([byte[]]$Bytes) {
    $sha = [Security.Cryptography.SHA256]::Create()
    try {
        return [BitConverter]::ToString($sha.ComputeHash($Bytes)).Replace('-', '').ToLowerInvariant()
    }
    finally {
        $sha.Dispose()
    }
}

function Set-Refusal([string]$Code, [string]$Message) {
    $Ansible.Result = @{ error_code = $Code; error = $Message }
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
if ($exists -and (Get-Sha256Hex ([IO.File]::ReadAllBytes($Path))) -ne $ExpectedSha256.ToLowerInvariant()) {
    Set-Refusal 'FILE_CHANGED' "$Path changed since it was read"
    return
}

$bytes = [Convert]::FromBase64String($Content)
$temp = [IO.Path]::Combine($folder, ".{0}.{1}.tmp" -f [IO.Path]::GetFileName($Path), [Guid]::NewGuid().ToString('N'))
$backupFile = $null
try {
    [IO.File]::WriteAllBytes($temp, $bytes)
    if ($exists) {
        if ($Backup) {
            $backupFile = '{0}.{1}.bak' -f $Path, [DateTime]::UtcNow.ToString('yyyyMMdd-HHmmss')
            # Replace moves the original to the backup name, so the copy keeps its own ACL too.
            [IO.File]::Replace($temp, $Path, $backupFile)
        }
        else {
            [IO.File]::Replace($temp, $Path, $null)
        }
    }
    else {
        [IO.File]::Move($temp, $Path)
    }
}
finally {
    if ([IO.File]::Exists($temp)) {
        [IO.File]::Delete($temp)
    }
}
$Ansible.Changed = $true
$Ansible.Result = @{ sha256 = (Get-Sha256Hex $bytes); backup_file = $backupFile }
