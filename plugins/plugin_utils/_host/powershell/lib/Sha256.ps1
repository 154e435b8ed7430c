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
