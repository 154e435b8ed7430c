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
