#!/bin/sh
# azd postprovision hook: after every `azd provision` (and the provision step of `azd up`).
# 1. Sync the Function App's triggers. A Flex Consumption app scaled to zero runs no host, so a trigger that appears
#    with a changed app setting (the sweep timer, declared only when PLATFORM_GUARD_SWEEP_SCHEDULE is set) is not known
#    to the platform until a deploy or a sync; `azd provision` alone does neither. Microsoft's Functions docs ("Trigger
#    syncing") give this call. Right after the first provision, before any code is deployed, the sync may be refused;
#    that is harmless (azd deploy syncs) and only warned about.
# 2. Reset AZURE_KEY_VAULT_RECOVER: recovering the soft-deleted Key Vault is for one provision only (createMode recover
#    fails when there is no deleted vault, i.e. on the next provision).
# Safe to re-run by hand: `azd env get-values` into the shell, then `sh infra/hooks/postprovision.sh`.
set -eu

for name in AZURE_FUNCTION_APP_ID AZURE_FUNCTION_APP_NAME; do
  eval "value=\${$name:-}"
  if [ -z "$value" ]; then
    echo "postprovision: $name is not set; run 'azd provision' first (or export 'azd env get-values')" >&2
    exit 1
  fi
done

if [ "${AZURE_KEY_VAULT_RECOVER:-false}" = "true" ]; then
  if azd env set AZURE_KEY_VAULT_RECOVER false; then
    echo "postprovision: the Key Vault was recovered; AZURE_KEY_VAULT_RECOVER is false again"
  else
    echo "postprovision: could not reset AZURE_KEY_VAULT_RECOVER: run 'azd env set AZURE_KEY_VAULT_RECOVER false'" >&2
  fi
fi

# az rest prefixes a URL that starts with a resource id with the current cloud's ARM endpoint.
sync_url="$AZURE_FUNCTION_APP_ID/syncfunctiontriggers?api-version=2024-04-01"
retry_seconds="${HOOK_RETRY_SECONDS:-20}"
attempt=1
until az rest --method post --url "$sync_url" --output none; do
  if [ "$attempt" -ge 3 ]; then
    echo "postprovision: warning: could not sync the triggers of $AZURE_FUNCTION_APP_NAME (no code deployed yet?)." >&2
    echo "postprovision: after 'azd deploy', or to pick up a changed sweep schedule: az rest --method post --url '$sync_url'" >&2
    exit 0
  fi
  echo "postprovision: trigger sync attempt $attempt failed; retrying in $retry_seconds s" >&2
  attempt=$((attempt + 1))
  sleep "$retry_seconds"
done
echo "postprovision: triggers of $AZURE_FUNCTION_APP_NAME synced"
