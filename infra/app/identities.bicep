// The two user-assigned identities: one for the Function App (registry, ledger, topic, Key Vault, telemetry), one for
// Event Grid (delivers events to the event queue and writes dead letters, nothing else), so that a delivery problem
// never runs with the app's registry rights.

@description('Azure region of the identities.')
param location string

@description('Tags for every resource (azd-env-name).')
param tags object

@description('Name of the Function App\'s identity.')
param functionIdentityName string

@description('Name of the identity the registry\'s Event Grid system topic delivers events to the queue and writes dead letters with.')
param eventGridIdentityName string

resource functionIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: functionIdentityName
  location: location
  tags: tags
}

resource eventGridIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: eventGridIdentityName
  location: location
  tags: tags
}

output functionIdentityId string = functionIdentity.id
output functionPrincipalId string = functionIdentity.properties.principalId
output functionClientId string = functionIdentity.properties.clientId
output eventGridIdentityId string = eventGridIdentity.id
output eventGridPrincipalId string = eventGridIdentity.properties.principalId
