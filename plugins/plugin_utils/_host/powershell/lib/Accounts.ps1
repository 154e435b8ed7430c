# Copyright: contributors to deadline_cloud.cmf
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Accounts and local groups (#cmf:include Accounts): resolving an account and the report read_account
# returns, and naming local groups. The same rules as plugin_utils/_windows/ (accounts.py, user_rights.py and groups.py), which
# the simulated worker runs: keep them in step.
#  - Names resolve through NTAccount.Translate, `.\name` meaning this computer; groups and members
#    are compared by SID. LocalSystem, LocalService and NetworkService map to their SIDs first.
#  - Local groups are listed through ADSI, their members as SIDs alone (NetLocalGroupGetMembers level
#    0: it survives orphaned SIDs, on which Get-LocalGroupMember fails, and asks no domain controller).
#    Names and kinds are looked up only for the account's own groups, in one LsaLookupSids call for
#    this computer's SIDs and one for a domain's (whose failure leaves them unnamed), so that a
#    reading stays fast, and goes on, when no domain controller answers.
#  - The account's token groups: its domain groups (nested ones included) from an S4U logon, the
#    groups every service logon carries (Everyone, Authenticated Users, SERVICE), and the local groups
#    that hold any of these or the account. They are "known" only when the domain answered.
#  - The rights a domain GPO defines come from the resultant set of policy of the last refresh.

#cmf:include Refusal
#cmf:include Native

# Win32 errors that mean the domain could not be asked: ERROR_NO_SUCH_DOMAIN, ERROR_NO_LOGON_SERVERS,
# RPC_S_SERVER_UNAVAILABLE, ERROR_TRUSTED_RELATIONSHIP_FAILURE, ERROR_TRUSTED_DOMAIN_FAILURE.
$script:DomainUnreachableErrors = @(1355, 1311, 1722, 1789, 1788)
# Every service logon's token has these (MS-DTYP 2.4.2.4): Everyone, Authenticated Users, SERVICE.
$script:ImplicitGroups = @('S-1-1-0', 'S-1-5-11', 'S-1-5-6')

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

function Get-CmfOwnDomainNames {
    # The names of this computer's own domains, which never need a domain controller: `.`, its name,
    # and BUILTIN, NT AUTHORITY and NT SERVICE as this Windows names them (VORDEFINIERT, and
    # NT-AUTORITAET with an umlaut, on a German host), taken from their SIDs (translated here, with no
    # domain controller) rather than compared with English words; the English names too.
    $names = @('.', $env:COMPUTERNAME, 'BUILTIN', 'NT AUTHORITY', 'NT SERVICE')
    foreach ($sid in @('S-1-5-32-544', 'S-1-5-18', 'S-1-5-80-0')) {
        try {
            $names += (New-Object Security.Principal.SecurityIdentifier $sid).Translate([Security.Principal.NTAccount]).Value.Split('\', 2)[0]
        }
        catch {
            Write-Verbose "no name for $sid`: $($_.Exception.Message)"
        }
    }
    $names
}

function Test-CmfDomainMember {
    # Whether this computer is joined to a domain (else no name or SID it does not map has a domain to ask).
    [bool](Get-CimInstance -ClassName Win32_ComputerSystem -Property PartOfDomain).PartOfDomain
}

function Get-CmfUnreachableDomainCode {
    # The DC locator's Win32 error when no domain controller of $Domain (the computer's own for '')
    # answers, else $null. DsGetDcName is the question Windows itself asks before any domain lookup.
    param([string]$Domain)
    Initialize-CmfNative
    $status = [DeadlineCloudCmf.NetApi]::DomainControllerStatus($Domain)
    if ($script:DomainUnreachableErrors -contains $status) { return $status }
    $null
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
            # Not mapped: missing, or of a domain no controller answered for (LookupAccountName cannot
            # tell them apart). The DC locator can: an unreachable domain is never "not found".
            $domain = $null
            if ($text.Contains('\')) { $domain = $text.Split('\', 2)[0] }
            elseif ($text.Contains('@')) { $domain = $text.Split('@', 2)[1] }
            elseif ($wellKnown -or (Test-CmfSid $text)) {
                # A SID: this computer maps its own (its accounts, BUILTIN, NT AUTHORITY) without a domain
                # controller, so an unmapped one is not found; only a domain's SID needs one, and only on a
                # domain member (a workgroup computer has no domain to ask: DsGetDcName would answer 1355).
                if (-not $wellKnown -and (Test-CmfDomainSid ('S' + $text.Substring(1))) -and (Test-CmfDomainMember)) { $domain = '' }
            }
            elseif (Test-CmfDomainMember) { $domain = '' }
            # -notcontains ignores case, as Windows does for these names
            if ($null -ne $domain -and @(Get-CmfOwnDomainNames) -notcontains $domain) {
                $code = Get-CmfUnreachableDomainCode $domain
                if ($null -ne $code) {
                    $which = $(if ($domain) { "the domain '$domain'" } else { "the computer's domain" })
                    throw (New-CmfRefusal 'DOMAIN_UNREACHABLE' ("account '$Account' cannot be resolved: no domain controller of $which " +
                            "answers $env:COMPUTERNAME (DsGetDcName: Win32 $code`: $((New-Object ComponentModel.Win32Exception $code).Message)); " +
                            'a domain that does not exist looks the same from here'))
                }
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

function Get-CmfMachineSidPrefix {
    # The SID prefix of this computer's own accounts (S-1-5-21-a-b-c-), from its local users (SID ->
    # anything, as Get-CmfLocalUsers gives them); $null when there is none.
    param([hashtable]$LocalUsers)
    @($LocalUsers.Keys | Where-Object { $_ -like 'S-1-5-21-*' } | ForEach-Object { $_.Substring(0, $_.LastIndexOf('-') + 1) }) |
        Select-Object -First 1
}

function Test-CmfDomainSid {
    # Whether only a domain controller can map $Sid: an account SID (S-1-5-21-...) outside this
    # computer's own prefix (accounts.is_domain_sid). Without $MachinePrefix the local users are read
    # for it (asked for one SID that did not map).
    param([string]$Sid, [string]$MachinePrefix)
    if ($Sid -notlike 'S-1-5-21-*') { return $false }
    $prefix = $MachinePrefix
    if (-not $PSBoundParameters.ContainsKey('MachinePrefix')) { $prefix = Get-CmfMachineSidPrefix -LocalUsers (Get-CmfLocalUsers) }
    -not ($prefix -and $Sid.StartsWith($prefix, [StringComparison]::OrdinalIgnoreCase))
}

function Get-CmfLocalUsers {
    # The local users, SID -> @{ enabled }: one WMI query (LocalAccount=TRUE keeps it from asking the domain).
    $users = @{}
    foreach ($user in @(Get-CimInstance -ClassName Win32_UserAccount -Filter 'LocalAccount=TRUE')) {
        $users[[string]$user.SID] = @{ enabled = -not $user.Disabled }
    }
    $users
}

function Get-CmfSidNames {
    # SID -> @{ name; use } for many SIDs (use: SID_NAME_USE; 6 deleted, 7 invalid and 8 unknown have no
    # name: the SID itself stands for it), in two LsaLookupSids calls. This computer names its own SIDs
    # (its accounts', BUILTIN, NT AUTHORITY: every SID but a domain's) itself, so a failure there is
    # real and fails the reading. A domain's SIDs (S-1-5-21-... outside $MachinePrefix: members of the
    # account's groups, Domain Admins in Administrators) need a domain controller: a failure of their
    # call (a broken secure channel, none answering) leaves them unnamed, unreadable, and the reading
    # goes on, as it must for a local account whose groups hold a domain's members.
    param([string[]]$Sids, [string]$MachinePrefix)
    $names = @{}
    $unique = @($Sids | Where-Object { $_ } | Select-Object -Unique)
    if ($unique.Count -eq 0) { return $names }
    Initialize-CmfNative
    $domainSids = @($unique | Where-Object { Test-CmfDomainSid -Sid $_ -MachinePrefix $MachinePrefix })
    $ownSids = @($unique | Where-Object { $domainSids -notcontains $_ })
    $found = @([DeadlineCloudCmf.Lsa]::LookupSids([string[]]$ownSids, $false)) + @([DeadlineCloudCmf.Lsa]::LookupSids([string[]]$domainSids, $true))
    foreach ($entry in $found) {
        $names[$entry.Sid] = @{ name = $(if ($entry.Name) { $entry.Name } else { $entry.Sid }); use = $entry.Use }
    }
    $names
}

function Get-CmfGroupMember {
    # One member of a local group as read_account reports it: @{ sid; name; type; enabled; orphaned }
    # (+ unreadable). A SID of this computer that does not map is an orphan (the SAM is the authority
    # for it); one of a domain that does not map may be deleted or out of reach: unreadable, counted live.
    param([string]$Sid, [hashtable]$Names, [hashtable]$LocalUsers, [string]$MachinePrefix)
    $found = $Names[$Sid]
    $use = $(if ($found) { [int]$found.use } else { 8 })
    if ($use -ge 6 -and $use -le 8) {
        if ($Sid -notlike 'S-1-5-21-*') { return @{ sid = $Sid; name = $Sid; type = 'well_known'; enabled = $true; orphaned = $false } }
        if ($use -eq 6 -or ($MachinePrefix -and $Sid.StartsWith($MachinePrefix))) {
            return @{ sid = $Sid; name = $Sid; type = 'unknown'; enabled = $false; orphaned = $true }
        }
        return @{ sid = $Sid; name = $Sid; type = 'unknown'; enabled = $true; orphaned = $false; unreadable = $true }
    }
    $type = 'group'  # a group, an alias
    if ($use -eq 1 -or $use -eq 9) { $type = 'user' }  # a user, a computer
    elseif ($use -eq 5) { $type = 'well_known' }
    $enabled = $true
    if ($LocalUsers.ContainsKey($Sid)) { $enabled = [bool]$LocalUsers[$Sid].enabled }
    @{ sid = $Sid; name = $found.name; type = $type; enabled = $enabled; orphaned = $false }
}

function Get-CmfDomainGroupSids {
    # The SIDs of the domain groups in a domain account's token, nested ones included: @{ known; sids;
    # error }. An S4U logon (a WindowsIdentity made from the account's UPN): the computer's own Kerberos
    # asks the domain controller for the groups (S4U2Self), so it works over WinRM without the
    # connection's credentials travelling on (a double hop), which reading tokenGroups over LDAP needs.
    # Fails closed: any failure leaves the groups unknown, and says whether the domain was out of reach.
    param([hashtable]$Resolved, [string]$Account, [string[]]$LocalGroupSids)
    $sam = $Resolved.name.Split('\', 2)[1]
    $upn = $Account.Trim()
    if (-not $upn.Contains('@')) {
        # sam@<the DNS name of the account's own domain>, the implicit UPN Kerberos knows it by: an account
        # of another domain of the forest is not in the computer's. The computer's domain when the DC
        # locator does not know the account's (the S4U logon then says why it fails).
        $suffix = [DeadlineCloudCmf.NetApi]::DomainDnsName($Resolved.domain)
        if (-not $suffix) { $suffix = (Get-CimInstance -ClassName Win32_ComputerSystem -Property Domain).Domain }
        $upn = "$sam@$suffix"
    }
    $identity = $null
    try {
        $identity = New-Object Security.Principal.WindowsIdentity -ArgumentList $upn
        if ($identity.User.Value -ne $Resolved.sid) {
            return @{ known = $false; sids = @(); error = @{ code = 'TOKEN_GROUPS_FAILED'; message = (
                        "$upn names $($identity.User.Value), not $($Resolved.name) ($($Resolved.sid)): the account's groups cannot be " +
                        'read through that name (give the account as its own UPN, name@domain)') } }
        }
        $sids = @($identity.Groups | ForEach-Object { $_.Value } | Where-Object { $_ -like 'S-1-5-21-*' -and $LocalGroupSids -notcontains $_ })
        return @{ known = $true; sids = @($sids); error = $null }
    }
    catch {
        $cause = Get-CmfInnerException $_.Exception
        $code = Get-CmfUnreachableDomainCode $Resolved.domain
        if ($null -ne $code) {
            return @{ known = $false; sids = @(); error = @{ code = 'DOMAIN_UNREACHABLE'; message = (
                        "no domain controller of $($Resolved.domain) answers $env:COMPUTERNAME (DsGetDcName: Win32 $code); the S4U logon " +
                        "of $upn failed: $($cause.Message)") } }
        }
        return @{ known = $false; sids = @(); error = @{ code = 'TOKEN_GROUPS_FAILED'; message = "the S4U logon of $upn failed: $($cause.GetType().FullName): $($cause.Message)" } }
    }
    finally {
        if ($null -ne $identity) { $identity.Dispose() }
    }
}

function Get-CmfPolicyRightSettings {
    # The user rights a domain GPO defines here, from the resultant set of policy of the last refresh:
    # @{ known; domain_member; rights = @{ right = @(holder text) }; error }. RSOP_UserPrivilegeRight in
    # root\rsop\computer is a local WMI read: it works over WinRM with no extra feature (no RSAT or
    # GPMC, no gpresult report file), and it says which rights a GPO owns, which secedit's export of the
    # merged policy cannot. Fails closed: a domain member whose policy result cannot be read is unknown.
    $system = Get-CimInstance -ClassName Win32_ComputerSystem -Property PartOfDomain
    if (-not $system.PartOfDomain) { return @{ known = $true; domain_member = $false; rights = @{}; error = $null } }
    $key = [Microsoft.Win32.Registry]::LocalMachine.OpenSubKey('SOFTWARE\Policies\Microsoft\Windows\System')
    if ($null -ne $key) {
        try { $logging = $key.GetValue('RSoPLogging') } finally { $key.Dispose() }
        if ($null -ne $logging -and [int]$logging -eq 0) {
            return @{ known = $false; domain_member = $true; rights = @{}; error = (
                    "a policy turns Resultant Set of Policy logging off (RSoPLogging = 0) on $env:COMPUTERNAME: which rights a GPO defines is not recorded") }
        }
    }
    try {
        $settings = @(Get-CimInstance -Namespace 'root\rsop\computer' -ClassName RSOP_UserPrivilegeRight -Filter 'precedence=1')
    }
    catch {
        return @{ known = $false; domain_member = $true; rights = @{}; error = "reading root\rsop\computer failed: $($_.Exception.Message)" }
    }
    $rights = @{}
    foreach ($setting in $settings) { $rights[[string]$setting.UserRight] = @($setting.AccountList | Where-Object { $_ } | ForEach-Object { [string]$_ }) }
    @{ known = $true; domain_member = $true; rights = $rights; error = $null }
}

function ConvertTo-CmfHolderSid {
    # A GPO's holder as written in its template (*S-1-..., or DOMAIN\name) as a SID, or $null when the
    # name does not resolve here (it then names no account of this host: never a match).
    param([string]$Holder)
    $text = $Holder.Trim().TrimStart('*')
    if (Test-CmfSid $text) { return 'S' + $text.Substring(1) }
    try {
        return (New-Object Security.Principal.NTAccount $text).Translate([Security.Principal.SecurityIdentifier]).Value
    }
    catch {
        return $null
    }
}

function Get-AccountReport {
    # The report read_account returns (see read_account.ps1); other operations include this file and call it.
    param([Parameter(Mandatory)][string]$Account)
    Assert-CmfNotDomainController
    Initialize-CmfNative
    $resolved = Resolve-CmfAccount -Account $Account
    $localUsers = Get-CmfLocalUsers
    $localGroups = @(Get-CmfLocalGroups)
    $localGroupSids = @($localGroups | ForEach-Object { $_.sid })
    $members = @{}
    foreach ($group in $localGroups) { $members[$group.sid] = @([DeadlineCloudCmf.NetApi]::LocalGroupMemberSids($group.name)) }
    # The SID prefix of this computer's own accounts: an unmapped SID under it is certainly an orphan.
    $machinePrefix = Get-CmfMachineSidPrefix -LocalUsers $localUsers

    $isGroup = $localGroupSids -contains $resolved.sid
    # A domain's account by its SID (S-1-5-21 outside this computer's prefix: accounts.is_domain_account),
    # never by its domain's name, which Windows localizes (LocalSystem is NT-AUTORITAET\SYSTEM, with an
    # umlaut, on a German host): a domain's name would send SYSTEM to an S4U logon in the domain.
    $isDomain = (Test-CmfDomainSid -Sid $resolved.sid -MachinePrefix $machinePrefix) -and -not $isGroup
    $carried = @($resolved.sid)
    if (-not $isGroup) { $carried += $script:ImplicitGroups }
    $domainGroups = @{ known = $true; sids = @(); error = $null }
    if ($isDomain) {
        $domainGroups = Get-CmfDomainGroupSids -Resolved $resolved -Account $Account -LocalGroupSids $localGroupSids
        $carried += @($domainGroups.sids)
    }
    $mine = @($localGroups | Where-Object { $null -ne (@($members[$_.sid]) | Where-Object { $carried -contains $_ } | Select-Object -First 1) })
    $tokenSids = @($mine | ForEach-Object { $_.sid }) + @($domainGroups.sids)
    if (-not $isGroup) { $tokenSids += $script:ImplicitGroups }

    $policy = Get-CmfPolicyRightSettings
    $holderSids = @{}
    foreach ($right in @($policy.rights.Keys)) {
        foreach ($holder in @($policy.rights[$right])) { $holderSids[$holder] = ConvertTo-CmfHolderSid $holder }
    }
    $ownMembers = @($mine | ForEach-Object { $members[$_.sid] })
    $names = Get-CmfSidNames -Sids (@($resolved.sid) + $tokenSids + $ownMembers + @($holderSids.Values)) -MachinePrefix $machinePrefix

    $groups = [Collections.Generic.List[object]]@()
    $groupMembers = @{}
    foreach ($group in $mine) {
        $groups.Add(@{ name = $group.name; sid = $group.sid; indirect = -not (@($members[$group.sid]) -contains $resolved.sid) })
        $groupMembers[$group.sid] = @(@($members[$group.sid]) | ForEach-Object {
                Get-CmfGroupMember -Sid $_ -Names $names -LocalUsers $localUsers -MachinePrefix $machinePrefix })
    }
    $tokenGroups = @(foreach ($sid in $tokenSids) {
            $local = $localGroups | Where-Object { $_.sid -eq $sid } | Select-Object -First 1
            $scope = $(if ($local) { 'local' } elseif ($script:ImplicitGroups -contains $sid) { 'well_known' } else { 'domain' })
            $name = $(if ($local) { $local.name } elseif ($names[$sid]) { $names[$sid].name } else { $sid })
            @{ sid = $sid; name = $name; scope = $scope }
        })
    $groupRights = @{}
    foreach ($sid in $tokenSids) { $groupRights[$sid] = @(Get-CmfRights -Sid $sid) }
    $policyRights = @{}
    foreach ($right in @($policy.rights.Keys)) {
        $policyRights[$right] = @(foreach ($holder in @($policy.rights[$right])) {
                $sid = $holderSids[$holder]
                @{ sid = $sid; name = $(if ($sid -and $names[$sid]) { $names[$sid].name } else { $holder.TrimStart('*') }) }
            })
    }

    $type = 'well_known'
    $enabled = $true
    if ($localUsers.ContainsKey($resolved.sid)) { $type = 'user'; $enabled = [bool]$localUsers[$resolved.sid].enabled }
    elseif ($isGroup) { $type = 'group' }
    elseif ($names[$resolved.sid] -and @(2, 4) -contains [int]$names[$resolved.sid].use) { $type = 'group' }
    elseif ($resolved.sid -like 'S-1-5-21-*') { $type = 'user' }
    @{
        hostname = $env:COMPUTERNAME
        sid = $resolved.sid
        name = $resolved.name
        domain = $resolved.domain
        type = $type
        enabled = [bool]$enabled
        groups = @($groups | Sort-Object -Property { $_.name })
        rights = @(Get-CmfRights -Sid $resolved.sid)
        group_rights = $groupRights
        local_groups = @($localGroups | ForEach-Object { @{ name = $_.name; sid = $_.sid } })
        group_members = $groupMembers
        token_groups = @($tokenGroups | Sort-Object -Property { $_.name })
        token_groups_known = [bool]$domainGroups.known
        token_groups_error = $domainGroups.error
        group_policy = @{ known = [bool]$policy.known; domain_member = [bool]$policy.domain_member; rights = $policyRights; error = $policy.error }
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
