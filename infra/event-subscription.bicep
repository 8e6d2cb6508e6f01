// The second deployment: the Event Grid subscription from the registry's system topic to the function. It runs after
// the code is deployed (infra/hooks/postdeploy.*), because Event Grid checks that the destination function exists
// ("Destination endpoint not found" otherwise). Deployed to the registry's resource group:
//
//   az deployment group create -g <registry rg> -f infra/event-subscription.bicep -p systemTopicName=… functionAppId=… …
//
// Delivery: Event Grid schema (the Python binding reads it), one event per call, pushes of images and charts only,
// bounded retries, then dead letters in a blob container written with the Event Grid identity (no keys).
targetScope = 'resourceGroup'

@description('Name of the registry\'s Event Grid system topic (AZURE_EVENTGRID_SYSTEM_TOPIC_NAME).')
param systemTopicName string

@description('Resource id of the Function App (AZURE_FUNCTION_APP_ID).')
param functionAppId string

@description('The Event Grid trigger function in function_app.py.')
param functionName string = 'registry_event'

@description('Resource id of the storage account holding the dead-letter container (AZURE_DEADLETTER_STORAGE_ACCOUNT_ID).')
param deadLetterStorageAccountId string

@description('Dead-letter container name (AZURE_DEADLETTER_CONTAINER_NAME).')
param deadLetterContainerName string = 'deadletter'

@description('Resource id of the user-assigned identity on the system topic that may write dead letters (AZURE_EVENTGRID_IDENTITY_ID).')
param eventGridIdentityId string

@minValue(1)
@maxValue(30)
@description('Delivery attempts before an event is dead-lettered.')
param maxDeliveryAttempts int = 30

@minValue(1)
@maxValue(1440)
@description('Minutes an undelivered event is retried before it is dead-lettered.')
param eventTimeToLiveInMinutes int = 1440

@description('Name of the event subscription.')
param subscriptionName string = 'platform-guard'

resource systemTopic 'Microsoft.EventGrid/systemTopics@2025-02-15' existing = {
  name: systemTopicName
}

resource subscription 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2025-02-15' = {
  parent: systemTopic
  name: subscriptionName
  properties: {
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: '${functionAppId}/functions/${functionName}'
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    eventDeliverySchema: 'EventGridSchema'
    filter: {
      includedEventTypes: [
        'Microsoft.ContainerRegistry.ImagePushed'
        'Microsoft.ContainerRegistry.ChartPushed'
      ]
    }
    retryPolicy: {
      maxDeliveryAttempts: maxDeliveryAttempts
      eventTimeToLiveInMinutes: eventTimeToLiveInMinutes
    }
    deadLetterWithResourceIdentity: {
      identity: {
        type: 'UserAssigned'
        userAssignedIdentity: eventGridIdentityId
      }
      deadLetterDestination: {
        endpointType: 'StorageBlob'
        properties: {
          resourceId: deadLetterStorageAccountId
          blobContainerName: deadLetterContainerName
        }
      }
    }
  }
}

output id string = subscription.id
