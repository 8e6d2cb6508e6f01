// Key Vault in RBAC mode for upstream registry credentials (created only when some are configured). The Function App
// reads secrets through Key Vault references in its app settings (Key Vault Secrets User); the deploying principal,
// when given, may write them (Key Vault Secrets Officer). Both are scoped to this vault only.

@description('Azure region of the vault.')
param location string

@description('Tags for every resource (azd-env-name).')
param tags object

@minLength(3)
@maxLength(24)
@description('Globally unique vault name.')
param name string

@description('Principal id of the identity that reads the secrets (the Function App\'s).')
param readerPrincipalId string

@description('Principal id allowed to set the secrets (the deployer); empty: nobody is granted it here.')
param writerPrincipalId string = ''

@allowed([
  'User'
  'ServicePrincipal'
])
@description('Kind of principal writerPrincipalId is.')
param writerPrincipalType string = 'User'

@description('Recover the soft-deleted vault of this name (createMode recover) instead of creating one. Creating fails while a deleted vault holds the name (90 days, and purge protection forbids purging it); recovering fails when there is none, so this is for one provision after a deletion.')
param recover bool = false

var keyVaultSecretsUserRoleId = '4633458b-17de-408a-b874-0445c86b69e6'
var keyVaultSecretsOfficerRoleId = 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_109: App Service resolves Key Vault references over the public endpoint unless the app is VNet-integrated; access is RBAC-only
  // checkov:skip=CKV_AZURE_189: as above, the Function App (no VNet) must reach the vault's public endpoint
  name: name
  location: location
  tags: tags
  properties: {
    // learn.microsoft.com/azure/key-vault/general/soft-delete-overview and key-vault-recovery: a deleted vault keeps its
    // name until purged (purge protection: 90 days); createMode recover brings it back with its secrets (the upstream
    // credentials), default creates one. Its role assignments are not recovered: the ones below are made again.
    createMode: recover ? 'recover' : 'default'
    tenantId: tenant().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

resource secretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, readerPrincipalId, keyVaultSecretsUserRoleId)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUserRoleId)
    principalId: readerPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource secretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(writerPrincipalId)) {
  name: guid(vault.id, writerPrincipalId, keyVaultSecretsOfficerRoleId)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsOfficerRoleId)
    principalId: writerPrincipalId
    principalType: writerPrincipalType
  }
}

output name string = vault.name
output uri string = vault.properties.vaultUri
