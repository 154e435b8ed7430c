# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Reads a file's exact bytes and their SHA-256. Read-only, so it also runs in check mode.
# Result: exists, content (base64, '' when absent), sha256 (lower hex, '' when absent).
# Refusals: CONSTRAINED_LANGUAGE (WDAC or AppLocker enforced), before anything is read.
[CmdletBinding(SupportsShouldProcess)]
param(
    [Parameter(Mandatory)][string]$Path
)
$ErrorActionPreference = 'Stop'
$Ansible.Changed = $false

#cmf:include Refusal
#cmf:include Sha256

# Before anything else: ConstrainedLanguage blocks what follows with errors that do not say why.
if (Test-CmfLanguageRefused) { return }

if (-not [IO.File]::Exists($Path)) {
    $Ansible.Result = @{ exists = $false; content = ''; sha256 = '' }
    return
}
$bytes = [IO.File]::ReadAllBytes($Path)
$Ansible.Result = @{
    exists = $true
    content = [Convert]::ToBase64String($bytes)
    sha256 = Get-CmfSha256Hex $bytes
}
