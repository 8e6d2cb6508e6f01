#!/bin/sh
# azd predown hook: refuse `azd down`. azd deletes every resource group the deployment touched, and this deployment
# touches the registry's resource group (role assignments, the Event Grid system topic): `azd down` would delete the
# registry itself. docs/deploy.md ("Roll back and remove") lists the commands that remove only what was added.
echo "predown: 'azd down' would delete the registry's resource group ($AZURE_REGISTRY_RESOURCE_GROUP) too; see docs/deploy.md" >&2
exit 1
