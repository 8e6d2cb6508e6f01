// Everything on the guarded registry's own resource group: the Function App's rights on the registry and the
// registry's Event Grid system topic. The event subscription on that topic comes later (event-subscription.bicep).
//
// Registry rights, all built-in roles scoped to the registry itself, none of them defined here (so the deployer needs
// no Microsoft.Authorization/roleDefinitions/write):
//   Container Registry Data Importer and Data Reader: server-side import (ARM importImage, registries/read, pull):
//     the role Microsoft's reference names for `az acr import`, which starts and follows the same long-running
//     operation as the app's poller (a custom role holding only importImage/action left the poller without read).
//   AcrPush (pull/read + push/write: manifests, blobs, tags and their properties, locks) and AcrDelete (untag and
//     delete), honoured in the "RBAC Registry Permissions" mode; AcrPull is not assigned: AcrPush holds its only action.
//   Container Registry Repository Contributor (read, write, delete, metadata and locks on every repository) and
//     Container Registry Repository Catalog Lister (/acr/v1/_catalog and /v2/_catalog: the sweep, `doctor`), honoured
//     in the "RBAC Registry + ABAC Repository Permissions" mode, which ignores AcrPush and AcrDelete.
// Both families are assigned whatever the registry's mode: each mode honours one of them and ignores the other, so the
// app has the same effective rights in either mode, needs no parameter that could be set wrong, and keeps working when
// the registry is switched to ABAC mode (Microsoft's migration guide assigns the ABAC roles before the switch; ACR plans
// to move every registry to that mode). Sources: learn.microsoft.com/azure/container-registry/
// container-registry-rbac-built-in-roles-directory-reference and container-registry-rbac-abac-repository-permissions
// ("Recommended transition plan"), github.com/Azure/acr/issues/883.
targetScope = 'resourceGroup'

@description('Tags for every resource (azd-env-name).')
param tags object

@description('Name of the existing registry in this resource group.')
param registryName string

@description('Principal id of the Function App\'s identity.')
param functionPrincipalId string

@description('Name of the registry\'s Event Grid system topic (created, or adopted when it exists).')
param systemTopicName string

@description('Resource id of the user-assigned identity Event Grid writes dead letters with.')
param eventGridIdentityId string

// Built-in role definition ids (learn.microsoft.com/azure/role-based-access-control/built-in-roles, Containers).
var dataImporterRoleId = '577a9874-89fd-4f24-9dbd-b5034d0ad23a'
var acrPushRoleId = '8311e382-0749-4cb8-b61a-304f252e45ec'
var acrDeleteRoleId = 'c2f4ef07-c644-48eb-af81-4b1b4947fb11'
var repositoryContributorRoleId = '2efddaa5-3f1f-4df3-97df-af3f13818f4c'
var catalogListerRoleId = 'bfdb9389-c9a5-478a-bb2f-ba9ca092c3c7'

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' existing = {
  name: registryName
}

resource importer 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(registry.id, functionPrincipalId, dataImporterRoleId)
  scope: registry
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', dataImporterRoleId)
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource pusher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(registry.id, functionPrincipalId, acrPushRoleId)
  scope: registry
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', acrPushRoleId)
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource deleter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(registry.id, functionPrincipalId, acrDeleteRoleId)
  scope: registry
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', acrDeleteRoleId)
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource repositoryContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(registry.id, functionPrincipalId, repositoryContributorRoleId)
  scope: registry
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', repositoryContributorRoleId)
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource catalogLister 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(registry.id, functionPrincipalId, catalogListerRoleId)
  scope: registry
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', catalogListerRoleId)
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Event Grid's view of the registry. It carries the dead-letter identity; the subscription to the event queue is
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
// The registry's real login server: <name>.azurecr.io, or <name>-<hash>.azurecr.io for a registry created with a
// domain name label scope; the app gets it as PLATFORM_GUARD_ACR_LOGIN_SERVER instead of deriving it from the name.
output loginServer string = registry.properties.loginServer
output systemTopicName string = systemTopic.name
