"""Azure Functions entry points (Python v2 programming model): bindings only, each calls the pipeline.

- `registry_event`: Event Grid trigger for ACR `ImagePushed`/`ChartPushed`/deletes (subscribe with EventGridSchema).
  A registry problem that may pass raises, so the host fails the invocation and Event Grid delivers again.
- `registry_events`: HTTP trigger for registry webhooks (distribution notifications, ACR classic webhooks),
  authorised by the bearer token in PLATFORM_GUARD_WEBHOOK_TOKEN on top of the function key.
- `health`: a cheap liveness probe.
- `sweep`: timer trigger that reconciles every guarded registry against the policy (importer/entry/sweep_timer.py).
  Declared only when PLATFORM_GUARD_SWEEP_SCHEDULE holds a schedule: the host resolves
  `%PLATFORM_GUARD_SWEEP_SCHEDULE%` when it indexes the function, and an unset setting would fail indexing ("does not
  resolve to a value"). Unset or `off`, there is no function to fire. To stop a declared sweep without a redeploy:
  `AzureWebJobs.sweep.Disabled=true`.
"""

from __future__ import annotations

import os

import azure.functions as func

from importer.entry import runtime
from importer.entry.http_api import ApiResponse
from importer.entry.sweep_timer import run_scheduled_sweep, sweep_timer_configured  # the sweep loads on a first run

app = func.FunctionApp()


def _http(response: ApiResponse) -> func.HttpResponse:
    return func.HttpResponse(body=response.body, status_code=response.status, headers=dict(response.headers))


@app.event_grid_trigger(arg_name="event")
def registry_event(event: func.EventGridEvent) -> None:
    runtime.current().handle_eventgrid_event(
        {
            "id": event.id,
            "topic": event.topic,
            "subject": event.subject,
            "eventType": event.event_type,
            "eventTime": event.event_time.isoformat() if event.event_time else None,
            "dataVersion": event.data_version,
            "data": event.get_json(),
        }
    )


@app.route(route="registry-events", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
def registry_events(req: func.HttpRequest) -> func.HttpResponse:
    return _http(runtime.current().api.registry_events(req.get_body(), dict(req.headers)))


@app.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:
    return _http(runtime.current().api.health())


if sweep_timer_configured(os.environ):

    @app.timer_trigger(arg_name="timer", schedule="%PLATFORM_GUARD_SWEEP_SCHEDULE%", run_on_startup=False)
    def sweep(timer: func.TimerRequest) -> None:
        run_scheduled_sweep(runtime.current(), past_due=timer.past_due)
