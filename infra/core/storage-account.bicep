// A StorageV2 account reachable with Entra ID only (shared keys off, so no connection string can work), HTTPS and
// TLS 1.2, no public blob access, plus its private blob containers and its queues. Role assignments live with their
// users.

@description('Azure region of the account.')
param location string

@description('Tags for every resource (azd-env-name).')
param tags object

@minLength(3)
@maxLength(24)
@description('Globally unique account name: 3-24 lower-case letters and digits.')
param name string

@description('Private blob containers to create.')
param containers array = []

@description('Queues to create (a Functions queue trigger\'s <queue>-poison queue is listed too, so that roles can be scoped to it).')
param queues array = []

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35: Flex Consumption without a virtual network reaches its storage over the public endpoint; access is Entra-only (shared keys are off)
  // checkov:skip=CKV_AZURE_59: public network access stays enabled for the same reason (no virtual network); anonymous blob access is off
  // checkov:skip=CKV_AZURE_206: locally redundant is enough: the ledger, the event queue and dead letters are operational data (a sweep re-judges every tag), not the images themselves
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

resource blobContainers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [
  for container in containers: {
    parent: blobService
    name: container
    properties: {
      publicAccess: 'None'
    }
  }
]

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource storageQueues 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = [
  for queue in queues: {
    parent: queueService
    name: queue
  }
]

output id string = account.id
output name string = account.name
output blobEndpoint string = 'https://${account.name}.blob.${environment().suffixes.storage}'
output tableEndpoint string = 'https://${account.name}.table.${environment().suffixes.storage}'
output queueEndpoint string = 'https://${account.name}.queue.${environment().suffixes.storage}'
