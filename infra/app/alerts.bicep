// The on-call alert: a scheduled log query over Application Insights traces that fires for every quarantined,
// failed or loop-guard outcome (the query is outcome-alert.kql), and the action group that e-mails it.

@description('Azure region of the alert rule (the action group is global).')
param location string

@description('Tags for every resource (azd-env-name).')
param tags object

@description('Name of the action group.')
param actionGroupName string

@description('Name of the scheduled query rule.')
param alertRuleName string

@description('E-mail address that receives the alert.')
param alertEmail string

@description('Resource id of the Application Insights component the query runs against.')
param applicationInsightsId string

@allowed([
  0
  1
  2
  3
  4
])
@description('Alert severity: 0 critical … 4 verbose.')
param severity int = 1

@description('How often the query runs and the window it looks at (ISO 8601 duration).')
param evaluationFrequency string = 'PT5M'

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: actionGroupName
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'platguard'
    enabled: true
    emailReceivers: [
      {
        name: 'on-call'
        emailAddress: alertEmail
        useCommonAlertSchema: true
      }
    ]
  }
}

resource outcomeAlert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: alertRuleName
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Platform Guard: image quarantined, remediation failed or loop guard hit'
    description: 'One row per alerting outcome; split by kind and repository. docs/runbook.md says what to do.'
    severity: severity
    enabled: true
    scopes: [
      applicationInsightsId
    ]
    evaluationFrequency: evaluationFrequency
    windowSize: evaluationFrequency
    criteria: {
      allOf: [
        {
          query: loadTextContent('outcome-alert.kql')
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          dimensions: [
            {
              name: 'kind'
              operator: 'Include'
              values: [
                '*'
              ]
            }
            {
              name: 'repository'
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: false
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}

output actionGroupId string = actionGroup.id
output alertRuleId string = outcomeAlert.id
