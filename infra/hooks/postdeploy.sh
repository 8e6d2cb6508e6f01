#!/bin/sh
# azd postdeploy hook: the second deployment, the registry's Event Grid subscription to the event queue
# (infra/event-subscription.bicep). It runs after `azd deploy`, not in `azd provision`, so that the subscription
# switches to the queue only once the queue trigger that works it is deployed. azd passes its environment (main.bicep's
# AZURE_* outputs) as variables.
# Safe to re-run by hand: `azd env get-values` into the shell, then `sh infra/hooks/postdeploy.sh`.
set -eu

here="$(cd "$(dirname "$0")" && pwd)"
template="$here/../event-subscription.bicep"

for name in AZURE_SUBSCRIPTION_ID AZURE_ENV_NAME AZURE_REGISTRY_RESOURCE_GROUP AZURE_EVENTGRID_SYSTEM_TOPIC_NAME \
            AZURE_EVENT_QUEUE_STORAGE_ACCOUNT_ID AZURE_EVENT_QUEUE_NAME AZURE_DEADLETTER_STORAGE_ACCOUNT_ID \
            AZURE_DEADLETTER_CONTAINER_NAME AZURE_EVENTGRID_IDENTITY_ID; do
  eval "value=\${$name:-}"
  if [ -z "$value" ]; then
    echo "postdeploy: $name is not set; run 'azd provision' first (or export 'azd env get-values')" >&2
    exit 1
  fi
done

# Right after provisioning, the topic's identity may not hold its queue role everywhere yet: retry a few times.
attempt=1
until az deployment group create \
    --subscription "$AZURE_SUBSCRIPTION_ID" \
    --resource-group "$AZURE_REGISTRY_RESOURCE_GROUP" \
    --name "platform-guard-events-$AZURE_ENV_NAME" \
    --template-file "$template" \
    --parameters \
      systemTopicName="$AZURE_EVENTGRID_SYSTEM_TOPIC_NAME" \
      queueStorageAccountId="$AZURE_EVENT_QUEUE_STORAGE_ACCOUNT_ID" \
      queueName="$AZURE_EVENT_QUEUE_NAME" \
      deadLetterStorageAccountId="$AZURE_DEADLETTER_STORAGE_ACCOUNT_ID" \
      deadLetterContainerName="$AZURE_DEADLETTER_CONTAINER_NAME" \
      eventGridIdentityId="$AZURE_EVENTGRID_IDENTITY_ID" \
    --output none
do
  if [ "$attempt" -ge 5 ]; then
    echo "postdeploy: the Event Grid subscription failed 5 times; see docs/deploy.md (Troubleshooting)" >&2
    exit 1
  fi
  echo "postdeploy: attempt $attempt failed (role assignment not propagated yet?); retrying in 30 s" >&2
  attempt=$((attempt + 1))
  sleep 30
done
echo "postdeploy: the registry's ImagePushed and ChartPushed events go to queue $AZURE_EVENT_QUEUE_NAME"
