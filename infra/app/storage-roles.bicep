// Storage roles, each on the narrowest scope that works:
//   Function App identity: Storage Blob Data Owner on the host account (the Functions host keeps its locks, keys and
//     the deployment package in containers it manages there), Storage Table Data Contributor on the data account (the
//     ledger's tables and the event queue adapter's key-lease table; nothing else lives in that account's table
//     service), Storage Queue Data Contributor on the event queue and on its poison queue only: the queue trigger
//     receives, updates (a failed try's visibility) and deletes messages, the host creates the poison queue if needed
//     and moves messages into it, and the HTTP routes add messages (StorageQueue also creates both queues if needed).
//     Message Processor + Sender would not let it create a queue.
//   Event Grid identity: Storage Blob Data Contributor on the dead-letter container only, and Storage Queue Data
//     Message Sender on the event queue only (it delivers the registry's events there).
//   The deployer (azd's AZURE_PRINCIPAL_ID, when given): read-only, for the checks docs/deploy.md runs after a deploy:
//     Storage Blob Data Reader on the dead-letter container (`az storage blob list --auth-mode login`) and Storage Queue
//     Data Reader on the event queue and the poison queue (`az storage message peek --auth-mode login`). Data-plane
//     commands with --auth-mode login are authorised by data roles only; the deployer's Owner or Contributor does not
//     grant them.

@description('Name of the account holding the Functions host state and the deployment package.')
param hostStorageAccountName string

@description('Name of the account holding the ledger tables, the event queue and the dead-letter container.')
param dataStorageAccountName string

@description('Name of the dead-letter container in the data account.')
param deadLetterContainerName string

@description('Name of the event queue in the data account (its poison queue is <name>-poison).')
param eventQueueName string

@description('Principal id of the Function App\'s identity.')
param functionPrincipalId string

@description('Principal id of the identity Event Grid delivers events and writes dead letters with.')
param eventGridPrincipalId string

@description('Principal id of the person or pipeline that deploys, given read access to the dead letters and both queues; empty: none.')
param deployerPrincipalId string = ''

@allowed([
  'User'
  'ServicePrincipal'
])
@description('Kind of principal deployerPrincipalId is.')
param deployerPrincipalType string = 'User'

var storageBlobDataOwnerRoleId = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
var storageBlobDataContributorRoleId = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
var storageTableDataContributorRoleId = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
var storageQueueDataContributorRoleId = '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
var storageQueueDataMessageSenderRoleId = 'c6a89b2d-59bc-44d0-9896-0f6e12d7b80a'
var storageBlobDataReaderRoleId = '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1'
var storageQueueDataReaderRoleId = '19e7f393-937e-4f77-808e-94535e297925'

resource hostStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: hostStorageAccountName
}

resource dataStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: dataStorageAccountName
}

resource dataBlobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' existing = {
  parent: dataStorage
  name: 'default'
}

resource deadLetterContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  parent: dataBlobService
  name: deadLetterContainerName
}

resource dataQueueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' existing = {
  parent: dataStorage
  name: 'default'
}

resource eventQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' existing = {
  parent: dataQueueService
  name: eventQueueName
}

resource poisonQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' existing = {
  parent: dataQueueService
  name: '${eventQueueName}-poison'
}

resource hostBlobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(hostStorage.id, functionPrincipalId, storageBlobDataOwnerRoleId)
  scope: hostStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataOwnerRoleId)
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource ledgerTableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(dataStorage.id, functionPrincipalId, storageTableDataContributorRoleId)
  scope: dataStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageTableDataContributorRoleId)
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource deadLetterWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(deadLetterContainer.id, eventGridPrincipalId, storageBlobDataContributorRoleId)
  scope: deadLetterContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributorRoleId)
    principalId: eventGridPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource eventQueueWorker 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(eventQueue.id, functionPrincipalId, storageQueueDataContributorRoleId)
  scope: eventQueue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataContributorRoleId)
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource poisonQueueWorker 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(poisonQueue.id, functionPrincipalId, storageQueueDataContributorRoleId)
  scope: poisonQueue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataContributorRoleId)
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource eventQueueSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(eventQueue.id, eventGridPrincipalId, storageQueueDataMessageSenderRoleId)
  scope: eventQueue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataMessageSenderRoleId)
    principalId: eventGridPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource deadLetterReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(deployerPrincipalId)) {
  name: guid(deadLetterContainer.id, deployerPrincipalId, storageBlobDataReaderRoleId)
  scope: deadLetterContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataReaderRoleId)
    principalId: deployerPrincipalId
    principalType: deployerPrincipalType
  }
}

resource eventQueueReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(deployerPrincipalId)) {
  name: guid(eventQueue.id, deployerPrincipalId, storageQueueDataReaderRoleId)
  scope: eventQueue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataReaderRoleId)
    principalId: deployerPrincipalId
    principalType: deployerPrincipalType
  }
}

resource poisonQueueReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(deployerPrincipalId)) {
  name: guid(poisonQueue.id, deployerPrincipalId, storageQueueDataReaderRoleId)
  scope: poisonQueue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataReaderRoleId)
    principalId: deployerPrincipalId
    principalType: deployerPrincipalType
  }
}
