# azd predown hook (Windows): refuse `azd down`, which would delete the registry's resource group too (see predown.sh).
throw "predown: 'azd down' would delete the registry's resource group ($($env:AZURE_REGISTRY_RESOURCE_GROUP)) too; see docs/deploy.md"
