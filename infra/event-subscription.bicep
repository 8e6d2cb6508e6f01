// The second deployment: the Event Grid subscription from the registry's system topic to the event queue, which the
// queue trigger in function_app.py works. It runs after the code is deployed (infra/hooks/postdeploy.*), so that the
// subscription switches to the queue only once the worker that drains it exists (an earlier version delivered to an
// Event Grid trigger). Deployed to the registry's resource group:
//
//   az deployment group create -g <registry rg> -f infra/event-subscription.bicep -p systemTopicName=… queueStorageAccountId=… …
//
// Delivery: straight to the Storage queue, no function in the path; Event Grid schema, one event per message (base64,
// as the queue trigger decodes it), pushes of images and charts only, messages that never expire. Event Grid writes with
// the topic's user-assigned identity (Storage Queue Data Message Sender on that queue only; a user-assigned identity
// works because the account has no firewall rules), retries while the queue refuses, then dead-letters to a blob
// container with the same identity (no keys anywhere).
targetScope = 'resourceGroup'

@description('Name of the registry\'s Event Grid system topic (AZURE_EVENTGRID_SYSTEM_TOPIC_NAME).')
param systemTopicName string

@description('Resource id of the storage account holding the event queue (AZURE_EVENT_QUEUE_STORAGE_ACCOUNT_ID).')
param queueStorageAccountId string

@description('The event queue the queue trigger in function_app.py works (AZURE_EVENT_QUEUE_NAME).')
param queueName string = 'platform-guard-events'

@description('Resource id of the storage account holding the dead-letter container (AZURE_DEADLETTER_STORAGE_ACCOUNT_ID).')
param deadLetterStorageAccountId string

@description('Dead-letter container name (AZURE_DEADLETTER_CONTAINER_NAME).')
param deadLetterContainerName string = 'deadletter'

@description('Resource id of the user-assigned identity on the system topic that may send to the queue and write dead letters (AZURE_EVENTGRID_IDENTITY_ID).')
param eventGridIdentityId string

@minValue(1)
@maxValue(30)
@description('Delivery attempts (to the queue) before an event is dead-lettered.')
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
    deliveryWithResourceIdentity: {
      identity: {
        type: 'UserAssigned'
        userAssignedIdentity: eventGridIdentityId
      }
      destination: {
        endpointType: 'StorageQueue'
        properties: {
          resourceId: queueStorageAccountId
          queueName: queueName
          queueMessageTimeToLiveInSeconds: -1
        }
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
