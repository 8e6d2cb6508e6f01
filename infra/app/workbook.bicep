// The outcomes workbook: an Azure Monitor workbook on the Application Insights component that receives the outcome
// traces (one `traces` record per outcome, custom dimensions platform_guard_<outcome field>: docs/queries.md). It
// shows outcomes over time and by repository, quarantines, failures, retries, latency and re-imports that lost their
// signatures, for a time range picked at the top. Portal: the component > Monitoring > Workbooks.
//
// The content is the `workbookContent` object below, sent as JSON (serializedData); each query is a file in
// workbook/ (KQL, `{TimeRange}` is the workbook's time range parameter). tests/infra/test_workbook.py rebuilds the
// JSON from this file and checks every query's dimension names, conversions and result values against the code.

@description('Azure region of the workbook resource.')
param location string

@description('Tags for every resource (azd-env-name).')
param tags object

@description('Resource id of the Application Insights component the workbook belongs to and queries.')
param applicationInsightsId string

@description('Name the workbook is listed under in the portal (unique per resource group and component).')
param displayName string = 'Platform Guard outcomes'

// The time range every query takes (item type 9, parameter type 4: time range picker), 24 hours at first.
var timeRangeParameter = {
  id: '8162fba4-f2ac-45ae-9b03-238ac244fa13'
  version: 'KqlParameterItem/1.0'
  name: 'TimeRange'
  label: 'Time range'
  type: 4
  isRequired: true
  value: {
    durationMs: 86400000
  }
  typeSettings: {
    selectableValues: [
      {
        durationMs: 3600000
      }
      {
        durationMs: 14400000
      }
      {
        durationMs: 43200000
      }
      {
        durationMs: 86400000
      }
      {
        durationMs: 259200000
      }
      {
        durationMs: 604800000
      }
      {
        durationMs: 1209600000
      }
      {
        durationMs: 2592000000
      }
    ]
    allowCustom: true
  }
}

// Item types: 1 text (Markdown), 3 query (queryType 0: logs of the component), 9 parameters.
var workbookContent = {
  version: 'Notebook/1.0'
  items: [
    {
      type: 1
      name: 'introduction'
      content: {
        json: '# Platform Guard outcomes\nOne record per outcome in `traces`, with the outcome fields as custom dimensions `platform_guard_<field>` (docs/queries.md). `retrying` records are tries that failed and will be tried again; every other result ends an event. New outcomes appear within about two minutes.'
      }
    }
    {
      type: 9
      name: 'parameters'
      content: {
        version: 'KqlParameterItem/1.0'
        parameters: [
          timeRangeParameter
        ]
        style: 'pills'
        queryType: 0
        resourceType: 'microsoft.insights/components'
      }
    }
    {
      type: 1
      name: 'outcomes-heading'
      content: {
        json: '## Outcomes\nWhat happened to the pushes, by result and by repository.'
      }
    }
    {
      type: 3
      name: 'outcomes-over-time'
      customWidth: '65'
      content: {
        version: 'KqlItem/1.0'
        title: 'Outcomes over time, by result'
        query: loadTextContent('workbook/outcomes-over-time.kql')
        size: 0
        queryType: 0
        resourceType: 'microsoft.insights/components'
        visualization: 'timechart'
        timeContextFromParameter: 'TimeRange'
        timeContext: {
          durationMs: 86400000
        }
        noDataMessage: 'No outcomes in this time range.'
      }
    }
    {
      type: 3
      name: 'outcomes-by-result'
      customWidth: '35'
      content: {
        version: 'KqlItem/1.0'
        title: 'Outcomes by result'
        query: loadTextContent('workbook/outcomes-by-result.kql')
        size: 0
        queryType: 0
        resourceType: 'microsoft.insights/components'
        visualization: 'piechart'
        timeContextFromParameter: 'TimeRange'
        timeContext: {
          durationMs: 86400000
        }
        noDataMessage: 'No outcomes in this time range.'
      }
    }
    {
      type: 3
      name: 'outcomes-by-repository'
      content: {
        version: 'KqlItem/1.0'
        title: 'Outcomes by repository and result'
        query: loadTextContent('workbook/outcomes-by-repository.kql')
        size: 0
        queryType: 0
        resourceType: 'microsoft.insights/components'
        visualization: 'table'
        timeContextFromParameter: 'TimeRange'
        timeContext: {
          durationMs: 86400000
        }
        gridSettings: {
          filter: true
        }
        noDataMessage: 'No outcomes in this time range.'
      }
    }
    {
      type: 1
      name: 'quarantines-heading'
      content: {
        json: '## Quarantines\nImages moved out of the way: `kept_at` is where each one is kept, `removed_tags` the tags the quarantine removed.'
      }
    }
    {
      type: 3
      name: 'quarantines'
      content: {
        version: 'KqlItem/1.0'
        title: 'Quarantined images'
        query: loadTextContent('workbook/quarantines.kql')
        size: 0
        queryType: 0
        resourceType: 'microsoft.insights/components'
        visualization: 'table'
        timeContextFromParameter: 'TimeRange'
        timeContext: {
          durationMs: 86400000
        }
        gridSettings: {
          filter: true
        }
        noDataMessage: 'No quarantines in this time range.'
      }
    }
    {
      type: 1
      name: 'failures-heading'
      content: {
        json: '## Failures\nEvents that ended `failed`: each one alerted once. `attempts` is set when the event was given up after several tries.'
      }
    }
    {
      type: 3
      name: 'failures'
      content: {
        version: 'KqlItem/1.0'
        title: 'Failed outcomes'
        query: loadTextContent('workbook/failures.kql')
        size: 0
        queryType: 0
        resourceType: 'microsoft.insights/components'
        visualization: 'table'
        timeContextFromParameter: 'TimeRange'
        timeContext: {
          durationMs: 86400000
        }
        gridSettings: {
          filter: true
        }
        noDataMessage: 'No failures in this time range.'
      }
    }
    {
      type: 1
      name: 'attempts-heading'
      content: {
        json: '## Retries\nA try that fails for a reason that may pass is recorded as `retrying` (it never alerts) and the event is tried again.'
      }
    }
    {
      type: 3
      name: 'attempts-summary'
      content: {
        version: 'KqlItem/1.0'
        title: 'Retrying records and events that needed more than one try'
        query: loadTextContent('workbook/attempts-summary.kql')
        size: 4
        queryType: 0
        resourceType: 'microsoft.insights/components'
        visualization: 'table'
        timeContextFromParameter: 'TimeRange'
        timeContext: {
          durationMs: 86400000
        }
        noDataMessage: 'No retries in this time range.'
      }
    }
    {
      type: 3
      name: 'attempts-by-event'
      content: {
        version: 'KqlItem/1.0'
        title: 'Events that needed more than one try'
        query: loadTextContent('workbook/attempts-by-event.kql')
        size: 0
        queryType: 0
        resourceType: 'microsoft.insights/components'
        visualization: 'table'
        timeContextFromParameter: 'TimeRange'
        timeContext: {
          durationMs: 86400000
        }
        gridSettings: {
          filter: true
        }
        noDataMessage: 'No retries in this time range.'
      }
    }
    {
      type: 1
      name: 'latency-heading'
      content: {
        json: '## Latency\nMilliseconds from receiving an event to its recorded outcome (`duration_ms`), final outcomes only.'
      }
    }
    {
      type: 3
      name: 'latency-over-time'
      customWidth: '50'
      content: {
        version: 'KqlItem/1.0'
        title: 'Latency percentiles (ms) over time'
        query: loadTextContent('workbook/latency-over-time.kql')
        size: 0
        queryType: 0
        resourceType: 'microsoft.insights/components'
        visualization: 'timechart'
        timeContextFromParameter: 'TimeRange'
        timeContext: {
          durationMs: 86400000
        }
        noDataMessage: 'No outcomes in this time range.'
      }
    }
    {
      type: 3
      name: 'latency-by-result'
      customWidth: '50'
      content: {
        version: 'KqlItem/1.0'
        title: 'Latency percentiles (ms) by result'
        query: loadTextContent('workbook/latency-by-result.kql')
        size: 0
        queryType: 0
        resourceType: 'microsoft.insights/components'
        visualization: 'table'
        timeContextFromParameter: 'TimeRange'
        timeContext: {
          durationMs: 86400000
        }
        noDataMessage: 'No outcomes in this time range.'
      }
    }
    {
      type: 1
      name: 'signatures-heading'
      content: {
        json: '## Signatures lost\nRe-imports after which the tag points at a digest no upstream signature covers: verifying the tag against the upstream\'s signatures fails until it is signed again.'
      }
    }
    {
      type: 3
      name: 'signatures-lost'
      content: {
        version: 'KqlItem/1.0'
        title: 'Re-imports that lost their signatures'
        query: loadTextContent('workbook/signatures-lost.kql')
        size: 0
        queryType: 0
        resourceType: 'microsoft.insights/components'
        visualization: 'table'
        timeContextFromParameter: 'TimeRange'
        timeContext: {
          durationMs: 86400000
        }
        gridSettings: {
          filter: true
        }
        noDataMessage: 'No re-import lost its signatures in this time range.'
      }
    }
  ]
  // Where the queries run when the workbook is opened without a resource of its own (e.g. from Monitor > Workbooks).
  fallbackResourceIds: [
    applicationInsightsId
  ]
  '$schema': 'https://github.com/Microsoft/Application-Insights-Workbooks/blob/master/schema/workbook.json'
}

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  // A workbook's name must be a GUID: derived from the component, so a redeploy updates the same workbook.
  name: guid(applicationInsightsId, 'platform-guard-outcomes-workbook')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: displayName
    description: 'Platform Guard outcomes: results by repository, quarantines, failures, retries, latency, lost signatures.'
    category: 'workbook'
    // The component's id: the workbook is listed in its gallery. Lower-cased, as other deployment tools require of a
    // workbook's sourceId (the azurerm provider rejects upper case).
    sourceId: toLower(applicationInsightsId)
    version: 'Notebook/1.0'
    serializedData: string(workbookContent)
  }
}

output id string = workbook.id
output name string = workbook.name
