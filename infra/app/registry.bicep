// Everything on the guarded registry's own resource group: the Function App's rights on the registry and the
// registry's Event Grid system topic. The event subscription on that topic comes later (event-subscription.bicep).
//
// Registry rights, all scoped to the registry itself:
//   role assignment permissions mode "RBAC Registry Permissions" (usesAbac false):
//     AcrPush (pull/read + push/write: read and write manifests, blobs, tags and their properties) and AcrDelete
//     (untag and delete); AcrPull is not assigned because AcrPush already holds its only action.
//   "RBAC Registry + ABAC Repository Permissions" (usesAbac true), where AcrPush/AcrDelete are ignored:
//     Container Registry Repository Contributor (read, write, delete, metadata) on every repository.
//   both: a custom role holding only Microsoft.ContainerRegistry/registries/importImage/action (server-side import),
//     defined on this resource group and assigned on the registry.
targetScope = 'resourceGroup'

@description('Tags for every resource (azd-env-name).')
param tags object

@description('Name of the existing registry in this resource group.')
param registryName string

@description('True when the registry uses ABAC repository permissions (see main.bicep).')
param usesAbac bool

@description('Principal id of the Function App\'s identity.')
param functionPrincipalId string

@description('Name of the registry\'s Event Grid system topic (created, or adopted when it exists).')
param systemTopicName string

@description('Resource id of the user-assigned identity Event Grid writes dead letters with.')
param eventGridIdentityId string

@description('azd environment name, to keep the custom role\'s name unique in the tenant.')
param environmentName string

var acrPushRoleId = '8311e382-0749-4cb8-b61a-304f252e45ec'
var acrDeleteRoleId = 'c2f4ef07-c644-48eb-af81-4b1b4947fb11'
var repositoryContributorRoleId = '2efddaa5-3f1f-4df3-97df-af3f13818f4c'

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' existing = {
  name: registryName
}

resource importRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(resourceGroup().id, registry.id, environmentName, 'platform-guard-import-image')
  properties: {
    roleName: 'Platform Guard image importer (${registryName}, ${environmentName})'
    description: 'Server-side import into the registry (ARM importImage), nothing else.'
    type: 'CustomRole'
    permissions: [
      {
        actions: [
          'Microsoft.ContainerRegistry/registries/importImage/action'
        ]
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
    assignableScopes: [
      resourceGroup().id
    ]
  }
}

resource importer 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(registry.id, functionPrincipalId, importRole.id)
  scope: registry
  properties: {
    roleDefinitionId: importRole.id
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource pusher 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!usesAbac) {
  name: guid(registry.id, functionPrincipalId, acrPushRoleId)
  scope: registry
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', acrPushRoleId)
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource deleter 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!usesAbac) {
  name: guid(registry.id, functionPrincipalId, acrDeleteRoleId)
  scope: registry
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', acrDeleteRoleId)
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource repositoryContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (usesAbac) {
  name: guid(registry.id, functionPrincipalId, repositoryContributorRoleId)
  scope: registry
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', repositoryContributorRoleId)
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Event Grid's view of the registry. It carries the dead-letter identity; the subscription to the function is
// deployed after the code (event-subscription.bicep).
resource systemTopic 'Microsoft.EventGrid/systemTopics@2025-02-15' = {
  name: systemTopicName
  location: registry.location
  tags: tags
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${eventGridIdentityId}': {}
    }
  }
  properties: {
    source: registry.id
    topicType: 'Microsoft.ContainerRegistry.Registries'
  }
}

output registryId string = registry.id
output loginServer string = registry.properties.loginServer
output systemTopicName string = systemTopic.name
