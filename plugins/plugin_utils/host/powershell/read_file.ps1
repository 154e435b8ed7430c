# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Reads a file's exact bytes and their SHA-256. Read-only, so it also runs in check mode.
[CmdletBinding(SupportsShouldProcess)]
param(
    [Parameter(Mandatory)][string]$Path
)
$ErrorActionPreference = 'Stop'
$Ansible.Changed = $false

if (-not [IO.File]::Exists($Path)) {
    $Ansible.Result = @{ exists = $false; content = ''; sha256 = '' }
    return
}
$bytes = [IO.File]::ReadAllBytes($Path)
$sha = [Security.Cryptography.SHA256]::Create()
try {
    $hash = [BitConverter]::ToString($sha.ComputeHash($bytes)).Replace('-', '').ToLowerInvariant()
}
finally {
    $sha.Dispose()
}
$Ansible.Result = @{
    exists = $true
    content = [Convert]::ToBase64String($bytes)
    sha256 = $hash
}
