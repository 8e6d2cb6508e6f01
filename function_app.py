"""Azure Functions entry points (Python v2 programming model): bindings only, each calls the pipeline.

- `registry_queue`: queue trigger, the worker. The registry's Event Grid subscription delivers its pushes — ACR
  `ImagePushed` and `ChartPushed` events, nothing else (infra/event-subscription.bicep filters them) — straight to the
  Storage queue PLATFORM_GUARD_QUEUE_NAME, and the HTTP routes put theirs there; each message is decided as the local
  workers decide theirs (importer/entry/queue_trigger.py). A try that fails for a reason that may pass raises: the
  host delivers the message again after host.json's `visibilityTimeout`, and after `maxDequeueCount` tries (the last
  one records the final `failed` outcome) moves it to `<queue>-poison`.
  The connection is the host's `PlatformGuardQueue` (`PlatformGuardQueue__queueServiceUri` with the managed identity).
- `registry_events`: HTTP trigger for registry webhooks (distribution notifications, ACR classic webhooks), and
  `cloudevents` (CloudEvents 1.0, with the OPTIONS handshake): intake only — authorised by the bearer token in
  PLATFORM_GUARD_WEBHOOK_TOKEN on top of the function key, parsed, validated, queued, answered 202. Both go through
  importer/entry/http_api.py, the local host's routes (`python -m importer serve`), so they answer alike.
- `health`: a cheap liveness probe.
- `sweep`: timer trigger that reconciles every guarded registry against the policy (importer/entry/sweep_timer.py).
  Declared only when PLATFORM_GUARD_SWEEP_SCHEDULE holds a schedule: the host resolves
  `%PLATFORM_GUARD_SWEEP_SCHEDULE%` when it indexes the function, and an unset setting would fail indexing ("does not
  resolve to a value"). Unset or `off`, there is no function to fire. To stop a declared sweep without a redeploy:
  `AzureWebJobs.sweep.Disabled=true`.

Every setting is read and checked here, when the host indexes the functions (importer/entry/runtime.start): a bad
one — a policy that does not parse, a value out of range — raises StartupError naming the setting (a policy error its
key and line), so no function is declared and none takes an event; the events wait in the queue until the setting is
fixed. The queue name and the sweep schedule come from those settings, never an unresolved `%…%`.
"""

from __future__ import annotations

import azure.functions as func

from importer.entry import runtime
from importer.entry.http_api import CLOUDEVENTS_PATH, REGISTRY_EVENTS_PATH, ApiResponse
from importer.entry.queue_trigger import QUEUE_CONNECTION, QueueDelivery
from importer.entry.sweep_timer import run_scheduled_sweep  # the sweep loads on a first run

settings = runtime.start()  # StartupError, naming the setting, stops the app before any function is declared

app = func.FunctionApp()


def _http(response: ApiResponse) -> func.HttpResponse:
    return func.HttpResponse(body=response.body, status_code=response.status, headers=dict(response.headers))


def _route(req: func.HttpRequest, path: str) -> func.HttpResponse:
    return _http(runtime.current().api.dispatch(req.method, path, dict(req.params), dict(req.headers), req.get_body()))


@app.queue_trigger(arg_name="message", queue_name=settings.queue_name, connection=QUEUE_CONNECTION)
def registry_queue(message: func.QueueMessage) -> None:
    runtime.current().work_queue_message(
        QueueDelivery(
            body=message.get_body(),
            message_id=message.id or "",
            dequeue_count=message.dequeue_count or 1,
            inserted_at=message.insertion_time,
        )
    )


@app.route(route="registry-events", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
def registry_events(req: func.HttpRequest) -> func.HttpResponse:
    return _route(req, REGISTRY_EVENTS_PATH)


@app.route(route="cloudevents", methods=["POST", "OPTIONS"], auth_level=func.AuthLevel.FUNCTION)
def cloudevents(req: func.HttpRequest) -> func.HttpResponse:
    return _route(req, CLOUDEVENTS_PATH)


@app.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:
    return _http(runtime.current().api.health())


if settings.sweep_schedule is not None:

    @app.timer_trigger(arg_name="timer", schedule="%PLATFORM_GUARD_SWEEP_SCHEDULE%", run_on_startup=False)
    def sweep(timer: func.TimerRequest) -> None:
        run_scheduled_sweep(runtime.current(), past_due=timer.past_due)
