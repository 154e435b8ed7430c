# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Accounts and local groups (#cmf:include Accounts): resolving an account and the report read_account
# returns, and naming local groups. The same rules as plugin_utils/_windows/ (accounts.py, user_rights.py and groups.py), which
# the simulated worker runs: keep them in step.
#  - Names resolve through NTAccount.Translate, `.\name` meaning this computer; groups and members
#    are compared by SID. LocalSystem, LocalService and NetworkService map to their SIDs first.
#  - Local groups are read through ADSI and the members' objectSid: it survives orphaned SIDs, on
#    which Get-LocalGroupMember fails. Membership is decided from objectSid alone, each member on
#    its own (one unreadable member must not hide the others); names and flags are read only for
#    the account's own groups.
#  - Nested membership (a domain group inside a local group) comes from NetUserGetLocalGroups with
#    LG_INCLUDE_INDIRECT, as the account's token has it.

#cmf:include Refusal
#cmf:include Native

# Win32 errors that mean the domain could not be asked: ERROR_NO_SUCH_DOMAIN, ERROR_NO_LOGON_SERVERS,
# RPC_S_SERVER_UNAVAILABLE, ERROR_TRUSTED_RELATIONSHIP_FAILURE, ERROR_TRUSTED_DOMAIN_FAILURE.
$script:DomainUnreachableErrors = @(1355, 1311, 1722, 1789, 1788)

function Assert-CmfNotDomainController {
    # A domain controller has no local groups (its "local" groups are the domain's BUILTIN ones) and
    # `.\name` names nothing on it: converging a worker there would change the whole domain.
    $system = Get-CimInstance -ClassName Win32_OperatingSystem -Property ProductType
    if ([int]$system.ProductType -eq 2) {
        throw (New-CmfRefusal 'DOMAIN_CONTROLLER' ("$env:COMPUTERNAME is a domain controller: it has no local groups or local accounts " +
                '(changing its groups and rights would change them for every domain controller of the domain). ' +
                'Run the worker on a member server or workstation.'))
    }
}

function ConvertTo-CmfAccountName {
    # The NT name of a SID, or the SID itself when it no longer resolves (a deleted account).
    param([string]$Sid)
    try {
        (New-Object Security.Principal.SecurityIdentifier $Sid).Translate([Security.Principal.NTAccount]).Value
    }
    catch {
        $Sid
    }
}

function Get-CmfWin32Code {
    # The Win32 error behind a failed Translate, or $null. .NET Framework throws a plain
    # SystemException holding only the system's text for the code: it is compared with the texts
    # this host gives for the known codes (the same language), never with English words.
    param([Exception]$Exception)
    if ($Exception -is [ComponentModel.Win32Exception]) { return $Exception.NativeErrorCode }
    # On .NET Framework the SystemException holds FormatMessage's raw text, which ends in CR LF and a
    # full stop that Win32Exception's Message has trimmed: compare both trimmed the same way.
    $trim = " `t`r`n.".ToCharArray()
    $message = ([string]$Exception.Message).TrimEnd($trim)
    foreach ($code in $script:DomainUnreachableErrors) {
        if ($message -eq ((New-Object ComponentModel.Win32Exception $code).Message).TrimEnd($trim)) { return $code }
    }
    $null
}

function Test-CmfDomainResolves {
    # Whether the host can map the domain part of a name to a SID (it knows and reached the domain).
    param([string]$Domain)
    try {
        [void](New-Object Security.Principal.NTAccount $Domain).Translate([Security.Principal.SecurityIdentifier])
        $true
    }
    catch {
        $false
    }
}

function Resolve-CmfAccount {
    # @{ sid; name; domain } of an account given as name, .\name, HOST\name, DOMAIN\name, name@domain or SID.
    param([string]$Account)
    $text = $Account.Trim()
    $wellKnown = Get-CmfServiceAccountSid $text
    try {
        if ($wellKnown) {
            $sid = New-Object Security.Principal.SecurityIdentifier $wellKnown
        }
        elseif (Test-CmfSid $text) {
            $sid = New-Object Security.Principal.SecurityIdentifier ('S' + $text.Substring(1))
        }
        else {
            if ($text.StartsWith('.\')) {
                $text = "$env:COMPUTERNAME\" + $text.Substring(2)
            }
            $sid = (New-Object Security.Principal.NTAccount $text).Translate([Security.Principal.SecurityIdentifier])
        }
        $name = $sid.Translate([Security.Principal.NTAccount]).Value
    }
    catch {
        $cause = Get-CmfInnerException $_.Exception
        if ($cause -is [Security.Principal.IdentityNotMappedException]) {
            $domain = $null
            if ($text.Contains('\')) { $domain = $text.Split('\', 2)[0] }
            elseif ($text.Contains('@')) { $domain = $text.Split('@', 2)[1] }
            if ($domain -and $domain -ne $env:COMPUTERNAME -and -not (Test-CmfDomainResolves $domain)) {
                # A name whose domain does not resolve either: a domain that does not exist and one that
                # cannot be reached look the same from here.
                throw (New-CmfRefusal 'ACCOUNT_NOT_FOUND' ("account '$Account' does not resolve on ${env:COMPUTERNAME}, nor does its " +
                        "domain '$domain': either no such domain is known to this host, or its domain controllers cannot be reached"))
            }
            throw (New-CmfRefusal 'ACCOUNT_NOT_FOUND' "account '$Account' does not exist (as resolved from $env:COMPUTERNAME)")
        }
        $code = Get-CmfWin32Code $cause
        if ($null -ne $code -and $script:DomainUnreachableErrors -contains $code) {
            throw (New-CmfRefusal 'DOMAIN_UNREACHABLE' "account '$Account' cannot be resolved: $env:COMPUTERNAME cannot contact its domain (Win32 $code`: $($cause.Message))")
        }
        throw (New-CmfRefusal 'ACCOUNT_LOOKUP_FAILED' "account '$Account' could not be looked up on ${env:COMPUTERNAME}: $($cause.GetType().FullName): $($cause.Message)")
    }
    $parts = $name.Split('\', 2)
    @{ sid = $sid.Value; name = $name; domain = $(if ($parts.Count -eq 2) { $parts[0] } else { '' }) }
}

function Get-CmfLocalGroups {
    # Every local group: @{ name; sid; entry } (entry: its ADSI object).
    $computer = [ADSI]"WinNT://$env:COMPUTERNAME,computer"
    $children = $computer.psbase.Children  # a new collection at each access: filter this one
    $children.SchemaFilter.Add('group') | Out-Null
    foreach ($entry in $children) {
        if ($entry.psbase.SchemaClassName -ne 'Group') { continue }
        $sid = New-Object Security.Principal.SecurityIdentifier ([byte[]]$entry.psbase.InvokeGet('objectSid')), 0
        @{ name = [string]$entry.psbase.Name; sid = $sid.Value; entry = $entry }
    }
}

function Get-CmfMemberProperty {
    # A property of a member as the group's Members call returns it (a COM object), without binding
    # a DirectoryEntry to it: that bind asks the member's domain and fails for an orphan or a
    # domain that cannot be reached.
    param($Member, [string]$Property)
    $Member.GetType().InvokeMember($Property, [Reflection.BindingFlags]::GetProperty, $null, $Member, $null)
}

function Get-CmfMemberSids {
    # The members of a local group: @{ sid; path; raw } each, sid $null when it could not be read.
    param($Group)
    foreach ($raw in @($Group.psbase.Invoke('Members'))) {
        $sid = $null
        $path = $null
        try {
            $path = [string](Get-CmfMemberProperty $raw 'ADsPath')
            $sid = (New-Object Security.Principal.SecurityIdentifier ([byte[]](Get-CmfMemberProperty $raw 'objectSid')), 0).Value
        }
        catch {
            if ($path -match '^WinNT://(S-1-[0-9-]+)$') { $sid = $Matches[1] }
        }
        @{ sid = $sid; path = $path; raw = $raw }
    }
}

function Get-CmfGroupMembers {
    # Members of a local group: @{ sid; name; type; enabled; orphaned } (+ unreadable). The ADsPath of
    # an orphan is WinNT://S-1-..., with no account behind it to ask; it is kept, never an error.
    param($Group)
    foreach ($member in @(Get-CmfMemberSids -Group $Group)) {
        $label = $(if ($member.sid) { $member.sid } else { [string]$member.path })
        try {
            if ($null -eq $member.sid) { throw 'objectSid unreadable' }
            if ($member.path -match '^WinNT://S-1-[0-9-]+$') {
                @{ sid = $member.sid; name = $member.sid; type = 'unknown'; enabled = $false; orphaned = $true }
                continue
            }
            $class = [string](Get-CmfMemberProperty $member.raw 'Class')
            $enabled = $true
            if ($class -eq 'User') {
                try {
                    $enabled = -not ([int](Get-CmfMemberProperty $member.raw 'UserFlags') -band 0x2)  # ADS_UF_ACCOUNTDISABLE
                }
                catch {
                    $enabled = $true  # a domain user whose flags cannot be read from here: counted as live
                }
            }
            @{
                sid = $member.sid
                name = ConvertTo-CmfAccountName $member.sid
                type = $(if ($class -eq 'Group') { 'group' } else { 'user' })
                enabled = [bool]$enabled
                orphaned = $false
            }
        }
        catch {
            @{ sid = $label; name = $label; type = 'unknown'; enabled = $true; orphaned = $false; unreadable = $true }
        }
    }
}

function Get-CmfAccountType {
    param([string]$Sid)
    # LocalAccount=TRUE keeps WMI from asking the domain for every account it knows.
    $user = Get-CimInstance -ClassName Win32_UserAccount -Filter "LocalAccount=TRUE AND SID='$Sid'" -ErrorAction SilentlyContinue
    if ($user) { return @{ type = 'user'; enabled = -not $user.Disabled } }
    $group = Get-CimInstance -ClassName Win32_Group -Filter "LocalAccount=TRUE AND SID='$Sid'" -ErrorAction SilentlyContinue
    if ($group) { return @{ type = 'group'; enabled = $true } }
    if ($Sid -match '^S-1-5-21-') { return @{ type = 'user'; enabled = $true } }
    @{ type = 'well_known'; enabled = $true }
}

function Get-CmfIndirectGroupNames {
    # Local group names the account is in, nested membership included; $null when netapi32 cannot
    # tell (an account that is not a user: a group, a well-known SID): then direct membership alone.
    param([string]$Name)
    Initialize-CmfNative
    try {
        # The unary comma returns the array whole: no groups stays an empty list, not $null (which
        # means "cannot tell" here).
        return , @([DeadlineCloudCmf.NetApi]::LocalGroupsWithIndirect($Name))
    }
    catch {
        $null
    }
}

function Get-AccountReport {
    # The report read_account returns (see read_account.ps1); other operations include this file and call it.
    param([Parameter(Mandatory)][string]$Account)
    Assert-CmfNotDomainController
    $resolved = Resolve-CmfAccount -Account $Account
    $kind = Get-CmfAccountType -Sid $resolved.sid
    $localGroups = @(Get-CmfLocalGroups)
    $direct = @{}
    foreach ($group in $localGroups) {
        foreach ($member in @(Get-CmfMemberSids -Group $group.entry)) {
            if ($member.sid -eq $resolved.sid) { $direct[$group.sid] = $true; break }
        }
    }
    $withIndirect = $null
    if ($kind.type -eq 'user') {
        $names = Get-CmfIndirectGroupNames -Name $resolved.name
        if ($null -ne $names) { $withIndirect = @($names) }
    }
    $groups = [Collections.Generic.List[object]]@()
    $groupRights = @{}
    $groupMembers = @{}
    foreach ($group in $localGroups) {
        $isDirect = $direct.ContainsKey($group.sid)
        $isIndirect = (-not $isDirect) -and ($null -ne $withIndirect) -and ($withIndirect -contains $group.name)
        if (-not ($isDirect -or $isIndirect)) { continue }
        $groups.Add(@{ name = $group.name; sid = $group.sid; indirect = [bool]$isIndirect })
        $groupRights[$group.sid] = @(Get-CmfRights -Sid $group.sid)
        $groupMembers[$group.sid] = @(Get-CmfGroupMembers -Group $group.entry)
    }
    @{
        hostname = $env:COMPUTERNAME
        sid = $resolved.sid
        name = $resolved.name
        domain = $resolved.domain
        type = $kind.type
        enabled = [bool]$kind.enabled
        groups = @($groups | Sort-Object -Property { $_.name })
        rights = @(Get-CmfRights -Sid $resolved.sid)
        group_rights = $groupRights
        local_groups = @($localGroups | ForEach-Object { @{ name = $_.name; sid = $_.sid } })
        group_members = $groupMembers
        connection_sid = [Security.Principal.WindowsIdentity]::GetCurrent().User.Value
    }
}

# English names of BUILTIN groups, so one task also names them on a localized host.
$script:WellKnownGroups = @{
    'administrators' = 'S-1-5-32-544'; 'users' = 'S-1-5-32-545'; 'guests' = 'S-1-5-32-546'
    'power users' = 'S-1-5-32-547'; 'account operators' = 'S-1-5-32-548'; 'server operators' = 'S-1-5-32-549'
    'print operators' = 'S-1-5-32-550'; 'backup operators' = 'S-1-5-32-551'; 'replicator' = 'S-1-5-32-552'
    'remote desktop users' = 'S-1-5-32-555'; 'network configuration operators' = 'S-1-5-32-556'
    'performance monitor users' = 'S-1-5-32-558'; 'performance log users' = 'S-1-5-32-559'
    'distributed com users' = 'S-1-5-32-562'; 'iis_iusrs' = 'S-1-5-32-568'; 'cryptographic operators' = 'S-1-5-32-569'
    'event log readers' = 'S-1-5-32-573'; 'hyper-v administrators' = 'S-1-5-32-578'; 'remote management users' = 'S-1-5-32-580'
}

function Get-CmfBuiltinDomainName {
    # The name Windows gives the BUILTIN domain (S-1-5-32) here: VORDEFINIERT on a German host.
    try {
        $name = (New-Object Security.Principal.SecurityIdentifier 'S-1-5-32-544').Translate([Security.Principal.NTAccount]).Value
        return $name.Split('\', 2)[0]
    }
    catch {
        return 'BUILTIN'
    }
}

function Resolve-CmfLocalGroup {
    # A local group (from Get-CmfLocalGroups) named by SID, local name, .\ / BUILTIN\ (or its localized
    # name) / HOST\ name, or the English name of a BUILTIN group; $null when there is none.
    param([string]$Group, [object[]]$LocalGroups, [string]$BuiltinName)
    $text = $Group.Trim()
    if (Test-CmfSid $text) {
        $sid = 'S' + $text.Substring(1)
        return $LocalGroups | Where-Object { $_.sid -eq $sid } | Select-Object -First 1
    }
    if ($text.Contains('\')) {
        $domain, $text = $text.Split('\', 2)
        # -notcontains ignores case, as Windows does for these names
        if (@('.', 'BUILTIN', $BuiltinName, $env:COMPUTERNAME) -notcontains $domain) {
            return $null  # a domain group is not a local group
        }
    }
    $match = $LocalGroups | Where-Object { $_.name -eq $text } | Select-Object -First 1  # -eq ignores case
    if ($match) { return $match }
    $alias = $script:WellKnownGroups[$text.ToLowerInvariant()]
    if ($alias) {
        return $LocalGroups | Where-Object { $_.sid -eq $alias } | Select-Object -First 1
    }
    $null
}
