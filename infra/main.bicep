// Platform Guard on Azure: a Flex Consumption Function App that guards an existing Azure Container Registry.
//
//   azd up        # provision (this template), deploy the code, then the postdeploy hook deploys
//                 # event-subscription.bicep: the registry's Event Grid subscription to the event queue, switched
//                 # over once the queue trigger that works the queue is deployed.
//
// The registry and its resource group already exist; everything else is created in one new resource group
// (rg-<environment>). What runs on the registry's resource group (role assignments on the registry, the Event Grid
// system topic) is in app/registry.bicep. docs/deploy.md walks through it.
targetScope = 'subscription'

// --- azd ----------------------------------------------------------------------------------------------------------

@minLength(1)
@maxLength(64)
@description('Name of the azd environment; it seeds every resource name and is the azd-env-name tag on everything.')
param environmentName string

@minLength(1)
@description('Azure region of the new resources (Flex Consumption must be offered there: az functionapp list-flexconsumption-locations).')
param location string

@description('Resource group for the new resources; empty: rg-<environmentName>.')
param resourceGroupName string = ''

@description('Object id of the person or pipeline running the deployment (azd: AZURE_PRINCIPAL_ID); when set it may read the dead letters and queues (deployerDataReader) and write the Key Vault secrets (with upstreamCredentials).')
param principalId string = ''

@allowed([
  'User'
  'ServicePrincipal'
])
@description('Kind of principal principalId is (azd: AZURE_PRINCIPAL_TYPE, User or ServicePrincipal); every role assignment to principalId carries it, since ARM refuses an assignment whose principalType does not match the principal.')
param principalType string = 'User'

@description('Whether principalId gets read-only access to what docs/deploy.md inspects after a deploy: Storage Blob Data Reader on the dead-letter container and Storage Queue Data Reader on the event queue and its poison queue. false: grant those by hand to whoever investigates.')
param deployerDataReader bool = true

// --- the guarded registry -------------------------------------------------------------------------------------------

@minLength(5)
@maxLength(50)
@description('Name of the existing Azure Container Registry to guard.')
param registryName string

@minLength(1)
@maxLength(90)
@description('Resource group of that registry (it must be in the same subscription).')
param registryResourceGroupName string

@description('Name of the registry\'s Event Grid system topic; empty: evgst-<token>. A registry can have only one system topic: give the existing one\'s name to adopt it.')
param registrySystemTopicName string = ''

// --- behaviour ------------------------------------------------------------------------------------------------------

@description('Base64 of a policy YAML file for the PLATFORM_GUARD_POLICY app setting (azd: AZURE_POLICY_BASE64, e.g. base64 -w0 my.yaml); empty: the content of infra/policy.yaml, which Bicep reads itself. Base64 because azd pastes environment values raw into main.parameters.json, which a multi-line YAML with quotes would break.')
param policyBase64 string = ''

@description('Loop guard, PLATFORM_GUARD_LOOP_GUARD: at most N remediations of one tag per window, as N/SECONDS.')
param loopGuard string = '3/3600'

@description('Comma-separated repository globs whose violations are only alerted (PLATFORM_GUARD_PAUSED_REPOSITORIES); empty: none.')
param pausedRepositories string = ''

@description('NCRONTAB schedule of the registry sweep timer (PLATFORM_GUARD_SWEEP_SCHEDULE), e.g. 0 0 3 * * *; empty: no sweep.')
param sweepSchedule string = ''

@description('Whether the scheduled sweep remediates (PLATFORM_GUARD_SWEEP_REMEDIATE); false: violations are only recorded and alerted.')
param sweepRemediate bool = false

@description('Upstream registries that need credentials, as objects {registry: host, usernameSecretName, passwordSecretName} naming Key Vault secrets. Empty: no Key Vault and anonymous upstreams.')
param upstreamCredentials array = []

@description('True for one provision after the Key Vault kv-<token> was deleted (it stays soft-deleted for 90 days and purge protection forbids purging it): the vault and its secrets are recovered (createMode recover) instead of failing on the name. The postprovision hook sets it back to false: recover fails when there is no deleted vault.')
param keyVaultRecover bool = false

@description('E-mail address that receives the quarantine / failure / loop-guard alert.')
param alertEmail string

// --- scale ----------------------------------------------------------------------------------------------------------

@minValue(0)
@maxValue(20)
@description('Always-ready instances kept warm for the queue trigger function (billed while idle); 0: scale from zero.')
param alwaysReadyInstanceCount int = 0

@minValue(1)
@maxValue(1000)
@description('Most instances the Flex Consumption plan scales out to.')
param maximumInstanceCount int = 40

@allowed([
  512
  2048
  4096
])
@description('Memory of each instance in MB.')
param instanceMemoryMB int = 2048

// --- names ----------------------------------------------------------------------------------------------------------

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}
// The queue trigger in function_app.py, the worker of the event queue: the always-ready group name.
var eventFunctionName = 'registry_queue'
// The event queue (PLATFORM_GUARD_QUEUE_NAME): Event Grid delivers the registry's events into it, the HTTP routes put
// theirs, the queue trigger works them; the Functions host moves a message whose last try failed to <name>-poison.
var eventQueueName = 'platform-guard-events'
var policyText = empty(policyBase64) ? loadTextContent('policy.yaml') : base64ToString(policyBase64)
var useKeyVault = !empty(upstreamCredentials)
var deploymentContainerName = 'app-package'
var deadLetterContainerName = 'deadletter'

resource appResourceGroup 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: empty(resourceGroupName) ? 'rg-${environmentName}' : resourceGroupName
  location: location
  tags: tags
}

resource registryResourceGroup 'Microsoft.Resources/resourceGroups@2024-03-01' existing = {
  name: registryResourceGroupName
}

module identities 'app/identities.bicep' = {
  name: 'identities'
  scope: appResourceGroup
  params: {
    location: location
    tags: tags
    functionIdentityName: 'id-guard-${resourceToken}'
    eventGridIdentityName: 'id-evg-${resourceToken}'
  }
}

module monitoring 'core/monitoring.bicep' = {
  name: 'monitoring'
  scope: appResourceGroup
  params: {
    location: location
    tags: tags
    logAnalyticsName: 'log-${resourceToken}'
    applicationInsightsName: 'appi-${resourceToken}'
    publisherPrincipalId: identities.outputs.functionPrincipalId
  }
}

// Functions host state and the deployment package: the host needs Blob Data Owner on this account.
module hostStorage 'core/storage-account.bicep' = {
  name: 'host-storage'
  scope: appResourceGroup
  params: {
    location: location
    tags: tags
    name: 'st${resourceToken}'
    containers: [
      deploymentContainerName
    ]
  }
}

// The ledger (Table Storage), the event queue and its poison queue, and Event Grid's dead letters, apart from the
// host's account.
module dataStorage 'core/storage-account.bicep' = {
  name: 'data-storage'
  scope: appResourceGroup
  params: {
    location: location
    tags: tags
    name: 'stdata${resourceToken}'
    containers: [
      deadLetterContainerName
    ]
    queues: [
      eventQueueName
      '${eventQueueName}-poison'
    ]
  }
}

module storageRoles 'app/storage-roles.bicep' = {
  name: 'storage-roles'
  scope: appResourceGroup
  params: {
    hostStorageAccountName: hostStorage.outputs.name
    dataStorageAccountName: dataStorage.outputs.name
    deadLetterContainerName: deadLetterContainerName
    eventQueueName: eventQueueName
    functionPrincipalId: identities.outputs.functionPrincipalId
    eventGridPrincipalId: identities.outputs.eventGridPrincipalId
    deployerPrincipalId: deployerDataReader ? principalId : ''
    deployerPrincipalType: principalType
  }
}

module outcomesTopic 'app/outcomes-topic.bicep' = {
  name: 'outcomes-topic'
  scope: appResourceGroup
  params: {
    location: location
    tags: tags
    name: 'evgt-outcomes-${resourceToken}'
    senderPrincipalId: identities.outputs.functionPrincipalId
  }
}

module keyVault 'core/key-vault.bicep' = if (useKeyVault) {
  name: 'key-vault'
  scope: appResourceGroup
  params: {
    location: location
    tags: tags
    name: 'kv-${resourceToken}'
    readerPrincipalId: identities.outputs.functionPrincipalId
    writerPrincipalId: principalId
    writerPrincipalType: principalType
    recover: keyVaultRecover
  }
}

module registry 'app/registry.bicep' = {
  name: 'registry-${resourceToken}'
  scope: registryResourceGroup
  params: {
    tags: tags
    registryName: registryName
    functionPrincipalId: identities.outputs.functionPrincipalId
    systemTopicName: empty(registrySystemTopicName) ? 'evgst-${resourceToken}' : registrySystemTopicName
    eventGridIdentityId: identities.outputs.eventGridIdentityId
  }
}

module functionApp 'app/function-app.bicep' = {
  name: 'function-app'
  scope: appResourceGroup
  params: {
    location: location
    tags: tags
    planName: 'plan-${resourceToken}'
    name: 'func-${resourceToken}'
    identityId: identities.outputs.functionIdentityId
    identityClientId: identities.outputs.functionClientId
    hostStorageAccountName: hostStorage.outputs.name
    deploymentContainerName: deploymentContainerName
    alwaysReadyFunctionName: eventFunctionName
    alwaysReadyInstanceCount: alwaysReadyInstanceCount
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
    applicationInsightsConnectionString: monitoring.outputs.applicationInsightsConnectionString
    registryResourceId: registry.outputs.registryId
    registryLoginServer: registry.outputs.loginServer
    policyText: policyText
    loopGuard: loopGuard
    pausedRepositories: pausedRepositories
    sweepSchedule: sweepSchedule
    sweepRemediate: sweepRemediate
    tablesEndpoint: dataStorage.outputs.tableEndpoint
    queueEndpoint: dataStorage.outputs.queueEndpoint
    queueName: eventQueueName
    outcomesTopicEndpoint: outcomesTopic.outputs.endpoint
    keyVaultUri: useKeyVault ? keyVault.outputs.uri : ''
    upstreamCredentials: upstreamCredentials
  }
  // The identity must hold its storage roles before the host starts with identity-based AzureWebJobsStorage.
  dependsOn: [
    storageRoles
  ]
}

module alerts 'app/alerts.bicep' = {
  name: 'alerts'
  scope: appResourceGroup
  params: {
    location: location
    tags: tags
    actionGroupName: 'ag-${resourceToken}'
    alertRuleName: 'alert-outcomes-${resourceToken}'
    alertEmail: alertEmail
    applicationInsightsId: monitoring.outputs.applicationInsightsId
  }
}

// azd stores these in the environment (.azure/<env>/.env); the postdeploy hook reads them.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = appResourceGroup.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output AZURE_FUNCTION_APP_ID string = functionApp.outputs.id
output AZURE_FUNCTION_NAME string = eventFunctionName
output AZURE_FUNCTION_IDENTITY_CLIENT_ID string = identities.outputs.functionClientId
output AZURE_FUNCTION_IDENTITY_PRINCIPAL_ID string = identities.outputs.functionPrincipalId
output AZURE_REGISTRY_ID string = registry.outputs.registryId
output AZURE_REGISTRY_LOGIN_SERVER string = registry.outputs.loginServer
output AZURE_REGISTRY_RESOURCE_GROUP string = registryResourceGroupName
output AZURE_EVENTGRID_SYSTEM_TOPIC_NAME string = registry.outputs.systemTopicName
output AZURE_EVENTGRID_IDENTITY_ID string = identities.outputs.eventGridIdentityId
output AZURE_EVENT_QUEUE_STORAGE_ACCOUNT_ID string = dataStorage.outputs.id
output AZURE_EVENT_QUEUE_ENDPOINT string = dataStorage.outputs.queueEndpoint
output AZURE_EVENT_QUEUE_NAME string = eventQueueName
output AZURE_DEADLETTER_STORAGE_ACCOUNT_ID string = dataStorage.outputs.id
output AZURE_DEADLETTER_CONTAINER_NAME string = deadLetterContainerName
output AZURE_LEDGER_TABLES_ENDPOINT string = dataStorage.outputs.tableEndpoint
output AZURE_OUTCOMES_TOPIC_ENDPOINT string = outcomesTopic.outputs.endpoint
output AZURE_APPLICATION_INSIGHTS_NAME string = monitoring.outputs.applicationInsightsName
output AZURE_KEY_VAULT_NAME string = useKeyVault ? keyVault.outputs.name : ''

// The outcomes workbook on the Application Insights component (app/workbook.bicep): the component > Workbooks.
module workbook 'app/workbook.bicep' = {
  name: 'workbook'
  scope: appResourceGroup
  params: {
    location: location
    tags: tags
    applicationInsightsId: monitoring.outputs.applicationInsightsId
    displayName: 'Platform Guard outcomes (${environmentName})'
  }
}

output AZURE_WORKBOOK_ID string = workbook.outputs.id
