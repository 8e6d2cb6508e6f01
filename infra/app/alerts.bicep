// The on-call alert: a scheduled log query over Application Insights traces that fires for every quarantined,
// failed or loop-guard outcome (the query is outcome-alert.kql), and the action group that e-mails it.
//
// Late traces: the rule runs every 5 minutes over the last 15 (windowSize filters on the trace's timestamp), and the
// query keeps only traces *ingested* in the last 5 minutes. Each trace is thus counted by exactly one evaluation, the
// first after it became queryable, as long as it arrives within 10 minutes of its timestamp; a window equal to the
// frequency (the earlier shape) lost every trace ingested after the evaluation whose window held its timestamp. This is
// the pattern of learn.microsoft.com/azure/sentinel/ingestion-delay ("look-back = frequency + delay, and
// ingestion_time() > ago(frequency)"); typical Application Insights ingestion latency is well under that
// (learn.microsoft.com/azure/azure-monitor/logs/data-ingestion-time).

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

// How often the query runs, and the window of timestamps it looks at: the frequency plus the ingestion delay tolerated.
// outcome-alert.kql's `ingestion_time() > ago(5m)` must equal the frequency (tests/infra checks both).
var evaluationFrequency = 'PT5M'
var windowSize = 'PT15M'

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
    windowSize: windowSize
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
