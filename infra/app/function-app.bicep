// The Function App on a Flex Consumption plan (Linux, Python 3.11), running as the user-assigned identity:
// identity-based AzureWebJobsStorage and deployment storage (no account keys anywhere), Entra ID telemetry ingestion,
// upstream credentials as Key Vault references. HTTPS only, TLS 1.2, FTP and basic publishing credentials off.
//
// App settings are exactly those the code reads (importer/app/settings.py), plus the Functions host's own (among them
// the queue trigger's identity-based connection, PlatformGuardQueue__*, as importer/entry/queue_trigger.py names it).

@description('Azure region of the plan and the app.')
param location string

@description('Tags for every resource (azd-env-name); the app also gets azd-service-name.')
param tags object

@description('Name of the Flex Consumption plan.')
param planName string

@description('Name of the Function App (also its default host name).')
param name string

@description('Resource id of the Function App\'s user-assigned identity.')
param identityId string

@description('Client id of that identity (AZURE_CLIENT_ID, storage and telemetry authentication).')
param identityClientId string

@description('Name of the account holding the host state and the deployment container.')
param hostStorageAccountName string

@description('Blob container the deployment package is uploaded to.')
param deploymentContainerName string

@description('The queue trigger function kept warm by always-ready instances (function_app.py).')
param alwaysReadyFunctionName string

@minValue(0)
@description('Always-ready instances for that function; 0 turns always-ready off.')
param alwaysReadyInstanceCount int

@minValue(1)
@description('Most instances the app scales out to.')
param maximumInstanceCount int

@description('Memory of each instance in MB.')
param instanceMemoryMB int

@description('Application Insights connection string (ingestion needs an Entra token: local auth is off).')
param applicationInsightsConnectionString string

@description('ARM id of the guarded registry (PLATFORM_GUARD_ACR_RESOURCE_ID).')
param registryResourceId string

@description('Login server of the guarded registry as ARM reports it (PLATFORM_GUARD_ACR_LOGIN_SERVER): <name>.azurecr.io, or <name>-<hash>.azurecr.io with a domain name label scope.')
param registryLoginServer string

@description('Policy YAML (PLATFORM_GUARD_POLICY).')
param policyText string

@description('Loop guard N/SECONDS (PLATFORM_GUARD_LOOP_GUARD).')
param loopGuard string

@description('Repository globs with remediation paused (PLATFORM_GUARD_PAUSED_REPOSITORIES); empty: setting left out.')
param pausedRepositories string

@description('NCRONTAB schedule of the sweep timer (PLATFORM_GUARD_SWEEP_SCHEDULE); empty: settings left out, no timer.')
param sweepSchedule string

@description('Whether the scheduled sweep remediates (PLATFORM_GUARD_SWEEP_REMEDIATE).')
param sweepRemediate bool

@description('Table endpoint of the ledger account (PLATFORM_GUARD_TABLES_ENDPOINT).')
param tablesEndpoint string

@description('Queue service endpoint of the account holding the event queue (PLATFORM_GUARD_QUEUE_ENDPOINT and the queue trigger\'s PlatformGuardQueue__queueServiceUri).')
param queueEndpoint string

@description('Name of the event queue (PLATFORM_GUARD_QUEUE_NAME): the queue trigger listens on it, the HTTP routes put events on it.')
param queueName string

@description('Endpoint of the outcomes custom topic (PLATFORM_GUARD_EVENTGRID_TOPIC_ENDPOINT).')
param outcomesTopicEndpoint string

@description('Vault URI (https://<vault>.vault.azure.net/) holding the upstream credentials; empty when none are used.')
param keyVaultUri string

@description('Upstream credentials: {registry, usernameSecretName, passwordSecretName} objects (see main.bicep).')
param upstreamCredentials array

// Identity-based AzureWebJobsStorage (no AccountKey), Entra ID telemetry ingestion, the identity for the SDKs.
var hostSettings = [
  {
    name: 'AzureWebJobsStorage__credential'
    value: 'managedidentity'
  }
  {
    name: 'AzureWebJobsStorage__clientId'
    value: identityClientId
  }
  {
    name: 'AzureWebJobsStorage__blobServiceUri'
    value: 'https://${hostStorageAccountName}.blob.${environment().suffixes.storage}'
  }
  {
    name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
    value: applicationInsightsConnectionString
  }
  {
    name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
    value: 'Authorization=AAD;ClientId=${identityClientId}'
  }
  {
    name: 'AZURE_CLIENT_ID'
    value: identityClientId
  }
]

var guardSettings = [
  {
    name: 'PLATFORM_GUARD_ACR_RESOURCE_ID'
    value: registryResourceId
  }
  {
    name: 'PLATFORM_GUARD_ACR_LOGIN_SERVER'
    value: registryLoginServer
  }
  {
    name: 'PLATFORM_GUARD_POLICY'
    value: policyText
  }
  {
    name: 'PLATFORM_GUARD_LOOP_GUARD'
    value: loopGuard
  }
  {
    name: 'PLATFORM_GUARD_TABLES_ENDPOINT'
    value: tablesEndpoint
  }
  {
    name: 'PLATFORM_GUARD_EVENTGRID_TOPIC_ENDPOINT'
    value: outcomesTopicEndpoint
  }
]

// The event queue, by identity: the queue trigger's connection (the host reads PlatformGuardQueue__*) and the same
// queue for the code (the HTTP routes' intake).
var queueSettings = [
  {
    name: 'PlatformGuardQueue__queueServiceUri'
    value: queueEndpoint
  }
  {
    name: 'PlatformGuardQueue__credential'
    value: 'managedidentity'
  }
  {
    name: 'PlatformGuardQueue__clientId'
    value: identityClientId
  }
  {
    name: 'PLATFORM_GUARD_QUEUE_ENDPOINT'
    value: queueEndpoint
  }
  {
    name: 'PLATFORM_GUARD_QUEUE_NAME'
    value: queueName
  }
]

var pausedSettings = empty(pausedRepositories) ? [] : [
  {
    name: 'PLATFORM_GUARD_PAUSED_REPOSITORIES'
    value: pausedRepositories
  }
]

var sweepSettings = empty(sweepSchedule) ? [] : [
  {
    name: 'PLATFORM_GUARD_SWEEP_SCHEDULE'
    value: sweepSchedule
  }
  {
    name: 'PLATFORM_GUARD_SWEEP_REMEDIATE'
    value: sweepRemediate ? 'true' : 'false'
  }
]

// PLATFORM_GUARD_REGISTRY_<KEY>_USERNAME/_PASSWORD, KEY as importer.settings.credentials_key: the host upper-cased,
// every character a host may hold besides letters and digits ('.', '-', ':') turned into '_'. Values are Key Vault
// references resolved by the platform with keyVaultReferenceIdentity; the secrets never pass through a deployment.
var credentialKeys = [for credential in upstreamCredentials: toUpper(replace(replace(replace(credential.registry, '.', '_'), '-', '_'), ':', '_'))]

var usernameSettings = [for (credential, i) in upstreamCredentials: {
  name: 'PLATFORM_GUARD_REGISTRY_${credentialKeys[i]}_USERNAME'
  value: '@Microsoft.KeyVault(SecretUri=${keyVaultUri}secrets/${credential.usernameSecretName}/)'
}]

var passwordSettings = [for (credential, i) in upstreamCredentials: {
  name: 'PLATFORM_GUARD_REGISTRY_${credentialKeys[i]}_PASSWORD'
  value: '@Microsoft.KeyVault(SecretUri=${keyVaultUri}secrets/${credential.passwordSecretName}/)'
}]

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225: zone redundancy on Flex Consumption is a separate opt-in; events wait in the queue through an outage
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_222: registry webhooks reach the HTTP routes over the public endpoint; calls need a function key and the bearer token
  // checkov:skip=CKV_AZURE_212: Flex Consumption starts instances per event; warm capacity is alwaysReadyInstanceCount
  // checkov:skip=CKV_AZURE_213: the platform health check (ping and replace instances) is for dedicated plans; GET /api/health serves external probes
  // checkov:skip=CKV_AZURE_17: client certificates would break registry webhooks, which authenticate with the function key and bearer token
  name: name
  location: location
  tags: union(tags, {
    'azd-service-name': 'guard'
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    keyVaultReferenceIdentity: identityId
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      appSettings: concat(hostSettings, guardSettings, queueSettings, pausedSettings, sweepSettings, usernameSettings, passwordSettings)
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: 'https://${hostStorageAccountName}.blob.${environment().suffixes.storage}/${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        alwaysReady: (alwaysReadyInstanceCount > 0) ? [
          {
            name: 'function:${alwaysReadyFunctionName}'
            instanceCount: alwaysReadyInstanceCount
          }
        ] : []
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

// Deployments authenticate with Entra ID (azd, az); no publishing user names or passwords.
resource ftpCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'scm'
  properties: {
    allow: false
  }
}

output id string = functionApp.id
output name string = functionApp.name
output defaultHostName string = functionApp.properties.defaultHostName
