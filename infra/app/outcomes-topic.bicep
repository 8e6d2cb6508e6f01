// The Event Grid custom topic that receives notable outcomes (quarantined, loopguard, failed, violation, reimported) as
// CloudEvents 1.0 (importer/adapters/sinks/eventgrid.py), with local (access key) auth disabled: only the Function App's
// identity may publish (EventGrid Data Sender). Subscribe a webhook, Logic App or queue to it to route alerts anywhere.

@description('Azure region of the topic.')
param location string

@description('Tags for every resource (azd-env-name).')
param tags object

@description('Name of the custom topic.')
param name string

@description('Principal id of the identity that publishes outcomes.')
param senderPrincipalId string

var eventGridDataSenderRoleId = 'd5a91429-5739-47e2-a06b-3470a27159e7'

resource topic 'Microsoft.EventGrid/topics@2025-02-15' = {
  // checkov:skip=CKV_AZURE_193: the Function App (no virtual network) publishes over the public endpoint; only Entra-authorised senders are accepted
  name: name
  location: location
  tags: tags
  // For subscribers that deliver with the topic's identity (deliveryWithResourceIdentity); it holds no roles here.
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    inputSchema: 'CloudEventSchemaV1_0'
    disableLocalAuth: true
    minimumTlsVersionAllowed: '1.2'
    publicNetworkAccess: 'Enabled'
  }
}

resource sender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(topic.id, senderPrincipalId, eventGridDataSenderRoleId)
  scope: topic
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', eventGridDataSenderRoleId)
    principalId: senderPrincipalId
    principalType: 'ServicePrincipal'
  }
}

output id string = topic.id
output endpoint string = topic.properties.endpoint
