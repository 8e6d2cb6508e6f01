# azd postprovision hook (Windows): sync the Function App's triggers and reset AZURE_KEY_VAULT_RECOVER. Same steps as
# postprovision.sh; see there and docs/deploy.md.
$ErrorActionPreference = 'Stop'

foreach ($name in 'AZURE_FUNCTION_APP_ID', 'AZURE_FUNCTION_APP_NAME') {
    if (-not [Environment]::GetEnvironmentVariable($name)) {
        throw "postprovision: $name is not set; run 'azd provision' first"
    }
}

if ($env:AZURE_KEY_VAULT_RECOVER -eq 'true') {
    azd env set AZURE_KEY_VAULT_RECOVER false
    if ($LASTEXITCODE -eq 0) {
        Write-Host 'postprovision: the Key Vault was recovered; AZURE_KEY_VAULT_RECOVER is false again'
    } else {
        Write-Warning "postprovision: could not reset AZURE_KEY_VAULT_RECOVER: run 'azd env set AZURE_KEY_VAULT_RECOVER false'"
    }
}

# az rest prefixes a URL that starts with a resource id with the current cloud's ARM endpoint.
$syncUrl = "$($env:AZURE_FUNCTION_APP_ID)/syncfunctiontriggers?api-version=2024-04-01"
for ($attempt = 1; $attempt -le 3; $attempt++) {
    az rest --method post --url $syncUrl --output none
    if ($LASTEXITCODE -eq 0) {
        Write-Host "postprovision: triggers of $($env:AZURE_FUNCTION_APP_NAME) synced"
        exit 0
    }
    if ($attempt -lt 3) {
        Write-Warning "postprovision: trigger sync attempt $attempt failed; retrying in 20 s"
        Start-Sleep -Seconds 20
    }
}
Write-Warning "postprovision: could not sync the triggers of $($env:AZURE_FUNCTION_APP_NAME) (no code deployed yet?). After 'azd deploy', or to pick up a changed sweep schedule: az rest --method post --url '$syncUrl'"
exit 0
