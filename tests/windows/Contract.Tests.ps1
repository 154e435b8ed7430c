# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# The host contract on a real Windows host: every vector of tests/contract/vectors (read here from
# vectors.json, their JSON copy) is built on this host, its operation's script is run as
# win_powershell runs it, and the result and the host afterwards are compared.
# Needs Pester 5.2 or later and an elevated shell; changes this host (temporary accounts, services,
# a folder under the system drive) and undoes it. See README.md. Use a disposable host.
#Requires -Version 5.1

BeforeDiscovery {
    $document = [IO.File]::ReadAllText((Join-Path $PSScriptRoot 'vectors.json')) | ConvertFrom-Json
    $operations = foreach ($property in $document.PSObject.Properties) {
        @{
            Operation = $property.Name
            Cases = @(foreach ($case in $property.Value.cases) { @{ Operation = $property.Name; Name = $case.name; Case = $case } })
        }
    }
}

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'CmfContract.psm1') -Force
    $principal = New-Object Security.Principal.WindowsPrincipal([Security.Principal.WindowsIdentity]::GetCurrent())
    if (-not $principal.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)) {
        throw 'the contract suite creates accounts and services: run it from an elevated shell'
    }
    $script:session = New-CmfSession -RepositoryRoot ([IO.Path]::GetFullPath((Join-Path $PSScriptRoot '..\..')))
}

AfterAll {
    # Runs after failures too: everything the run made is undone, last first.
    if ($script:session) {
        # Each operation's time per call on this host (a new runspace per call, as win_powershell has).
        Get-CmfTimingSummary -Session $script:session | Format-Table -AutoSize | Out-String -Width 200 | Write-Host
        Remove-CmfSession -Session $script:session
    }
}

Describe 'contract vectors of <Operation>' -ForEach $operations {
    It '<Name>' -ForEach $Cases {
        $skip = Get-CmfSkipReason -Case $Case
        if ($skip) {
            Set-ItResult -Skipped -Because $skip
            return
        }
        $hostContext = New-CmfHost -Session $script:session -Case $Case
        try {
            if ($hostContext.Skip) {
                Set-ItResult -Skipped -Because $hostContext.Skip
                return
            }
            $problems = @(Test-CmfCase -Context $hostContext -Operation $Operation -Case $Case)
            $problems | Should -BeNullOrEmpty -Because ($Case.why)
        }
        finally {
            Remove-CmfHost -Context $hostContext
        }
    }
}

Describe 'the harness' {
    It 'catches a wrong expectation' {
        # The comparison itself, as test_vectors.py checks it on the Python side.
        @(Get-CmfMismatch -Expected ([pscustomobject]@{ sha256 = 'a' }) -Actual ([pscustomobject]@{ sha256 = 'b' })).Count | Should -Be 1
        @(Get-CmfMismatch -Expected ([pscustomobject]@{ ids = [pscustomobject]@{ '$exactly' = @('s-1') } }) -Actual ([pscustomobject]@{ ids = @('s-1', 's-2') })).Count | Should -Be 1
        @(Get-CmfMismatch -Expected ([pscustomobject]@{ rights = [pscustomobject]@{ '$exactly' = @() } }) -Actual ([pscustomobject]@{ rights = @() })).Count | Should -Be 0
        @(Get-CmfMismatch -Expected ([pscustomobject]@{ enabled = $true }) -Actual ([pscustomobject]@{ enabled = 1 })).Count | Should -Be 1
    }

    It 'keeps empty and one-item lists whole' {
        # PowerShell unrolls a function's output: without the unary comma an empty list comes back
        # as $null and a one-item list as its item, and vectors with [] or [x] fail for the harness.
        $document = '{"none": [], "one": ["S-1-5-32-544"], "two": ["a", "b"], "text": "x", "nothing": null}' | ConvertFrom-Json
        $none = Get-CmfProperty $document 'none'
        $null -eq $none | Should -BeFalse
        Test-CmfList $none | Should -BeTrue
        $none.Count | Should -Be 0
        $one = Get-CmfProperty $document 'one'
        Test-CmfList $one | Should -BeTrue
        $one.Count | Should -Be 1
        $one[0] | Should -Be 'S-1-5-32-544'
        (Get-CmfProperty $document 'two').Count | Should -Be 2
        Get-CmfProperty $document 'text' | Should -Be 'x'
        $null -eq (Get-CmfProperty $document 'nothing') | Should -BeTrue
        $null -eq (Get-CmfProperty $document 'absent') | Should -BeTrue
        $table = @{ none = @(); one = @('a') }
        Test-CmfList (Get-CmfProperty $table 'none') | Should -BeTrue
        Test-CmfList (Get-CmfProperty $table 'one') | Should -BeTrue
        # and through placeholders and the comparison
        $expanded = Expand-CmfValue -Context $null -Value $document
        Test-CmfList $expanded.none | Should -BeTrue
        Test-CmfList $expanded.one | Should -BeTrue
        @(Get-CmfMismatch -Expected ([pscustomobject]@{ none = [pscustomobject]@{ '$exactly' = @() } }) -Actual $document).Count | Should -Be 0
        @(Get-CmfMismatch -Expected ([pscustomobject]@{ one = [pscustomobject]@{ '$exactly' = @('S-1-5-32-544') } }) -Actual $document).Count | Should -Be 0
        @(Get-CmfMismatch -Expected ([pscustomobject]@{ one = @('S-1-5-32-544') }) -Actual $document).Count | Should -Be 0
        @(Get-CmfMismatch -Expected ([pscustomobject]@{ none = [pscustomobject]@{ '$exactly' = @('x') } }) -Actual $document).Count | Should -Be 1
    }

    It 'tells the types $type names apart' {
        $document = '{"list": [], "one": [1], "dict": {"a": 1}, "str": "x", "int": 5, "big": 4294967296, "bool": true, "null": null}' | ConvertFrom-Json
        $cases = @(
            @('list', 'list', 0), @('one', 'list', 0), @('dict', 'list', 1), @('str', 'list', 1), @('null', 'list', 1),
            @('dict', 'dict', 0), @('list', 'dict', 1),
            @('str', 'str', 0), @('int', 'str', 1), @('null', 'str', 1),
            @('int', 'int', 0), @('big', 'int', 0), @('bool', 'int', 1), @('str', 'int', 1),
            @('bool', 'bool', 0), @('int', 'bool', 1), @('str', 'bool', 1)
        )
        foreach ($case in $cases) {
            $key, $type, $wanted = $case
            $expected = [pscustomobject]@{ $key = [pscustomobject]@{ '$type' = $type } }
            @(Get-CmfMismatch -Expected $expected -Actual $document).Count | Should -Be $wanted -Because "$key is checked as $type"
        }
    }

    It 'runs the scripts exported from the controller, which need no include' {
        $exported = @(Get-ChildItem -LiteralPath (Join-Path $PSScriptRoot 'scripts') -Filter '*.ps1' | ForEach-Object { $_.BaseName })
        $exported.Count | Should -BeGreaterThan 0
        foreach ($operation in $exported) {
            $text = Get-CmfScriptText -Session $script:session -Operation $operation
            $text | Should -Not -Match '(?m)^#cmf:include '
            $errors = $null
            [void][Management.Automation.Language.Parser]::ParseInput($text, [ref]$null, [ref]$errors)
            $errors | Should -BeNullOrEmpty
        }
    }
}
