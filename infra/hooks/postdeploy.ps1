# azd postdeploy hook (Windows): the second deployment, the registry's Event Grid subscription to the event queue
# (infra/event-subscription.bicep). Same steps as postdeploy.sh; see there and docs/deploy.md.
$ErrorActionPreference = 'Stop'

$template = Join-Path $PSScriptRoot '..' 'event-subscription.bicep'
$required = 'AZURE_SUBSCRIPTION_ID', 'AZURE_ENV_NAME', 'AZURE_REGISTRY_RESOURCE_GROUP', 'AZURE_EVENTGRID_SYSTEM_TOPIC_NAME',
            'AZURE_EVENT_QUEUE_STORAGE_ACCOUNT_ID', 'AZURE_EVENT_QUEUE_NAME', 'AZURE_DEADLETTER_STORAGE_ACCOUNT_ID',
            'AZURE_DEADLETTER_CONTAINER_NAME', 'AZURE_EVENTGRID_IDENTITY_ID'
foreach ($name in $required) {
    if (-not [Environment]::GetEnvironmentVariable($name)) {
        throw "postdeploy: $name is not set; run 'azd provision' first"
    }
}

for ($attempt = 1; $attempt -le 5; $attempt++) {
    az deployment group create `
        --subscription $env:AZURE_SUBSCRIPTION_ID `
        --resource-group $env:AZURE_REGISTRY_RESOURCE_GROUP `
        --name "platform-guard-events-$($env:AZURE_ENV_NAME)" `
        --template-file $template `
        --parameters `
            systemTopicName=$env:AZURE_EVENTGRID_SYSTEM_TOPIC_NAME `
            queueStorageAccountId=$env:AZURE_EVENT_QUEUE_STORAGE_ACCOUNT_ID `
            queueName=$env:AZURE_EVENT_QUEUE_NAME `
            deadLetterStorageAccountId=$env:AZURE_DEADLETTER_STORAGE_ACCOUNT_ID `
            deadLetterContainerName=$env:AZURE_DEADLETTER_CONTAINER_NAME `
            eventGridIdentityId=$env:AZURE_EVENTGRID_IDENTITY_ID `
        --output none
    if ($LASTEXITCODE -eq 0) {
        Write-Host "postdeploy: the registry's ImagePushed and ChartPushed events go to queue $($env:AZURE_EVENT_QUEUE_NAME)"
        exit 0
    }
    Write-Warning "postdeploy: attempt $attempt failed (role assignment not propagated yet?); retrying in 30 s"
    Start-Sleep -Seconds 30
}
throw 'postdeploy: the Event Grid subscription failed 5 times; see docs/deploy.md (Troubleshooting)'
