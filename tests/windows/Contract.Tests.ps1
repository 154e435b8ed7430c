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
    if ($script:session) { Remove-CmfSession -Session $script:session }
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

    It 'sends each script with its includes expanded' {
        foreach ($operation in 'read_account', 'control_service') {
            $text = Get-CmfScriptText -Session $script:session -Operation $operation
            $text | Should -Not -Match '(?m)^#cmf:include '
            $errors = $null
            [void][Management.Automation.Language.Parser]::ParseInput($text, [ref]$null, [ref]$errors)
            $errors | Should -BeNullOrEmpty
        }
    }
}
