// Log Analytics + workspace-based Application Insights with local (instrumentation key) auth disabled: telemetry is
// accepted only from identities holding Monitoring Metrics Publisher on the component — here the Function App's.

@description('Azure region of the workspace and the component.')
param location string

@description('Tags for every resource (azd-env-name).')
param tags object

@description('Name of the Log Analytics workspace.')
param logAnalyticsName string

@description('Name of the Application Insights component.')
param applicationInsightsName string

@description('Principal id of the identity that sends telemetry (Entra ID ingestion).')
param publisherPrincipalId string

@minValue(30)
@maxValue(730)
@description('Days the workspace keeps logs (outcome traces included).')
param retentionInDays int = 30

var monitoringMetricsPublisherRoleId = '3913510d-42f4-4e42-8a64-420c390055eb'

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: logAnalyticsName
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: retentionInDays
    features: {
      disableLocalAuth: true
    }
  }
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: applicationInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    DisableLocalAuth: true
  }
}

resource publisherRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(applicationInsights.id, publisherPrincipalId, monitoringMetricsPublisherRoleId)
  scope: applicationInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisherRoleId)
    principalId: publisherPrincipalId
    principalType: 'ServicePrincipal'
  }
}

output applicationInsightsId string = applicationInsights.id
output applicationInsightsName string = applicationInsights.name
// Not a secret: with local auth disabled it only says where to send; ingestion still needs an Entra token.
output applicationInsightsConnectionString string = applicationInsights.properties.ConnectionString
output workspaceId string = workspace.id
