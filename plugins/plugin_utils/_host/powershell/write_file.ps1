# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Replaces a file with new bytes, atomically, only if it still has the hash that was read.
# The new content goes to a temporary file in the same folder; [IO.File]::Replace then swaps it
# in and keeps the target's ACL (Move-Item would carry the temporary file's ACL instead).
# Temporary names are short (~cmf<6 hex>.tmp, and ~cmf<6 hex>.old for the original while it is
# swapped): the .NET Framework of Windows PowerShell 5.1 refuses paths beyond MAX_PATH (260
# characters), so a name barely longer than the target's keeps every target that fits within it.
# Result: sha256 (of the new bytes), backup_file (null when no backup), warnings [text] (what a
# successful write left behind: a temporary file or the original's copy that could not be deleted).
# Refusals: FILE_CHANGED (a file removed since it was read names the copy of the bytes read, when
# a backup or a swapped-out original in its folder holds them), FILE_EXISTS, FOLDER_NOT_FOUND,
# REPLACE_FAILED (the swap failed, e.g. the target is held open without delete sharing: the
# target is as it was, or the error says where its bytes and the new ones are; win32_error, and
# changed: true when the target is not as it was),
# CONSTRAINED_LANGUAGE.
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

function Get-FreeTemporaryStem([string]$Folder) {
    # ~cmf<6 hex> in $Folder, with neither its .tmp nor its .old taken.
    while ($true) {
        $stem = [IO.Path]::Combine($Folder, '~cmf' + [Guid]::NewGuid().ToString('N').Substring(0, 6))
        if (-not ([IO.File]::Exists("$stem.tmp") -or [IO.File]::Exists("$stem.old"))) { return $stem }
    }
}

function Find-CopyOfBytes([string]$Target, [string]$Sha256) {
    # A backup (<name>.<stamp>.bak) or a swapped-out original (~cmf*.old) beside $Target that holds
    # the bytes with $Sha256, newest name first; $null when none does.
    $folder = [IO.Path]::GetDirectoryName($Target)
    $candidates = @([IO.Directory]::GetFiles($folder, [IO.Path]::GetFileName($Target) + '.*.bak')) + @([IO.Directory]::GetFiles($folder, '~cmf*.old'))
    foreach ($candidate in @($candidates | Sort-Object -Descending)) {
        try {
            if ((Get-CmfSha256Hex ([IO.File]::ReadAllBytes($candidate))) -eq $Sha256) { return $candidate }
        }
        catch {
            Write-Verbose "cannot read $candidate`: $($_.Exception.Message)"
        }
    }
    $null
}

function Get-Win32Code([Exception]$Exception) {
    # The Win32 error inside an IOException's HRESULT (0x8007xxxx: severity bit, facility 7), else $null.
    $hresult = [int]$Exception.HResult
    if ($hresult -lt 0 -and (($hresult -shr 16) -band 0x1FFF) -eq 7) { return $hresult -band 0xFFFF }
    $null
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
    $copy = Find-CopyOfBytes $Path $ExpectedSha256.ToLowerInvariant()
    $where = $(if ($copy) { "; the bytes that were read are in $copy" } else { '' })
    Set-Refusal 'FILE_CHANGED' "$Path was removed since it was read$where"
    return
}
if ($exists -and (Get-CmfSha256Hex ([IO.File]::ReadAllBytes($Path))) -ne $ExpectedSha256.ToLowerInvariant()) {
    Set-Refusal 'FILE_CHANGED' "$Path changed since it was read"
    return
}

$bytes = [Convert]::FromBase64String($Content)
$stem = Get-FreeTemporaryStem $folder
$temp = "$stem.tmp"
$backupFile = $null
$warnings = [Collections.Generic.List[string]]@()
# ReplaceFile moves the original aside under a name of its own before it moves the new file in.
# When the second move fails (Win32 1177 ERROR_UNABLE_TO_MOVE_REPLACEMENT_2 and friends) the target
# is gone: the original is put back from that name and the temporary file, the only copy of the new
# bytes, is deleted only once the target exists again. Without a backup the original still goes
# aside under a name of ours, deleted after success: with no name ([NullString]::Value, never $null,
# which PowerShell passes as "") a failure 1176 leaves it under a name Windows chose, out of reach.
$aside = $(if ($Backup) { Get-FreeBackupName $Path } else { "$stem.old" })
try {
    # CreateNew: never over a file someone else made meanwhile.
    $stream = New-Object IO.FileStream -ArgumentList $temp, ([IO.FileMode]::CreateNew), ([IO.FileAccess]::Write), ([IO.FileShare]::None)
    try { $stream.Write($bytes, 0, $bytes.Length) } finally { $stream.Dispose() }
    if ($exists) {
        try {
            [IO.File]::Replace($temp, $Path, $aside)
        }
        catch {
            $cause = Get-CmfInnerException $_.Exception
            $what = "replacing $Path failed ($($cause.Message.Trim()))"
            if ([IO.File]::Exists($Path)) {
                $outcome = "$Path is as it was"
            }
            elseif ([IO.File]::Exists($aside)) {
                try {
                    [IO.File]::Move($aside, $Path)  # the original back, with its own ACL
                    $outcome = "$Path was put back as it was"
                }
                catch {
                    $Ansible.Changed = $true
                    $outcome = "$Path is missing: its bytes are in $aside, the new ones in $temp"
                }
            }
            else {
                $Ansible.Changed = $true
                try {
                    [IO.File]::Move($temp, $Path)
                    $outcome = "its original was not found, so the new bytes were moved in (with the folder's ACL, not the original's)"
                }
                catch {
                    $outcome = "$Path is missing and its original was not found: the new bytes are in $temp"
                }
            }
            # changed: the original may be gone, or the new bytes moved in without its ACL (see above).
            $Ansible.Result = @{ error_code = 'REPLACE_FAILED'; error = "$what; $outcome"; win32_error = Get-Win32Code $cause; changed = [bool]$Ansible.Changed }
            return
        }
        if ($Backup) {
            $backupFile = $aside
        }
        elseif ([IO.File]::Exists($aside)) {
            # The new file is in place: an old copy that cannot be deleted now is left, not an error.
            try { [IO.File]::Delete($aside) } catch { $warnings.Add("the original's copy $aside could not be deleted: $($_.Exception.Message)") }
        }
    }
    else {
        [IO.File]::Move($temp, $Path)
    }
    $Ansible.Changed = $true
}
finally {
    # Only once the target exists: otherwise the temporary file may hold the only copy of the new bytes.
    if ([IO.File]::Exists($temp) -and [IO.File]::Exists($Path)) {
        try { [IO.File]::Delete($temp) } catch { $warnings.Add("the temporary file $temp could not be deleted: $($_.Exception.Message)") }
    }
}
$Ansible.Result = @{ sha256 = (Get-CmfSha256Hex $bytes); backup_file = $backupFile; warnings = @($warnings) }
