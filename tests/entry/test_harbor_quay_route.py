"""Harbor and Quay deliveries through the real routes, decided against a real distribution registry.

A Harbor-shaped PUSH_ARTIFACT (and its CloudEvent) for an image really pushed to a local registry, posted to
/api/registry-events (/api/cloudevents) of GuardApi without an intake, so the pipeline decides it in the request;
the webhook token as Harbor's "auth header" sends it (the whole `Authorization` value) and, for Quay, whose webhook
has no header to set, as the `code` query parameter. A body naming a registry nobody configured is rejected with no
connection made: that host is a closed port here.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from importer.adapters.ledger.sqlite import SqliteLedger
from importer.app.settings import Settings
from importer.entry.composition import pipeline_for
from importer.entry.http_api import GuardApi
from testbed.images import Descriptor, ImageBuilder
from testbed.push import push
from testbed.registry import LocalRegistry

pytestmark = pytest.mark.timeout(120)

TOKEN = "harbor-quay-token-0123456789abcdef"
REPOSITORY = "library/app"
DECIDED = {"compliant", "reimported", "quarantined", "alerted"}


@dataclass
class Bed:
    api: GuardApi
    registry: LocalRegistry
    ledger: SqliteLedger
    image: Descriptor


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bed]:
    root = tmp_path_factory.mktemp("harbor-quay")
    builder = ImageBuilder(root / "layout")
    with LocalRegistry(root / "registry") as registry:
        settings = Settings(registries=(registry.host,), ledger_path=root / "ledger.db", webhook_token=TOKEN)
        ledger = SqliteLedger(settings.ledger_path)
        image = builder.image("linux/amd64", seed="harbor")
        push(builder, image, registry.host, REPOSITORY, "1.0")
        yield Bed(GuardApi(pipeline_for(settings, ledger=ledger), webhook_token=TOKEN), registry, ledger, image)
        ledger.close()


def harbor_body(host: str, digest: str, tag: str, occur_at: int = 1700000000) -> dict[str, object]:
    return {"type": "PUSH_ARTIFACT", "occur_at": occur_at, "operator": "admin",
            "event_data": {"resources": [{"digest": digest, "tag": tag, "resource_url": f"{host}/{REPOSITORY}:{tag}"}],
                           "repository": {"date_created": occur_at, "name": "app", "namespace": "library",
                                          "repo_full_name": REPOSITORY, "repo_type": "private"}}}


def post(api: GuardApi, path: str, body: object, headers: dict[str, str], query: dict[str, str] | None = None
         ) -> tuple[int, dict[str, object]]:
    response = api.dispatch("POST", path, query or {}, headers, json.dumps(body).encode())
    return response.status, json.loads(response.body)


BEARER = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


def results(answer: dict[str, object]) -> list[str]:
    return [outcome["result"] for outcome in answer["outcomes"]]  # type: ignore[index, union-attr]


def test_a_harbor_push_of_a_real_image_is_decided_and_a_redelivery_is_a_duplicate(bed: Bed) -> None:
    body = harbor_body(bed.registry.host, bed.image.digest, "1.0")
    status, answer = post(bed.api, "/api/registry-events", body, BEARER)
    assert status == 200, answer
    [result] = results(answer)
    assert result in DECIDED, answer
    status, again = post(bed.api, "/api/registry-events", body, BEARER)
    assert (status, results(again)) == (200, ["duplicate"])
    [row] = [o for o in bed.ledger.outcomes(limit=100) if o.event_id == answer["outcomes"][0]["event_id"]
             and o.result != "duplicate"]
    assert (row.schema, row.registry, row.repository, row.tag, row.digest) == (
        "harbor", bed.registry.host, REPOSITORY, "1.0", bed.image.digest)


def test_a_harbor_cloudevent_of_a_real_image_is_decided(bed: Bed) -> None:
    data = harbor_body(bed.registry.host, bed.image.digest, "1.0", occur_at=1700000001)["event_data"]
    event = {"specversion": "1.0", "requestid": "r-1", "id": "4b2f89a6-548d-4c12-9993-a1f5790b97d2",
             "source": "/projects/1/webhook/policies/3", "type": "harbor.artifact.pushed",
             "datacontenttype": "application/json", "time": "2023-11-14T22:13:21Z", "data": data, "operator": "admin"}
    status, answer = post(bed.api, "/api/cloudevents", event,
                          {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/cloudevents+json"})
    assert status == 200, answer
    assert results(answer)[0] in DECIDED, answer


def test_harbor_and_quay_bodies_need_the_webhook_token(bed: Bed) -> None:
    body = harbor_body(bed.registry.host, bed.image.digest, "1.0", occur_at=1700000002)
    before = len(bed.ledger.outcomes(limit=1000))
    for headers in ({"Content-Type": "application/json"}, {"Authorization": TOKEN},
                    {"Authorization": "Bearer wrong-token-0123456789abcdef"}):
        status, _ = post(bed.api, "/api/registry-events", body, headers)
        assert status == 401
    quay = {"repository": REPOSITORY, "namespace": "library", "name": "app", "updated_tags": ["1.0"],
            "docker_url": f"{bed.registry.host}/{REPOSITORY}"}
    assert post(bed.api, "/api/registry-events", quay, {}, {"code": "wrong-token-0123456789abcdef"})[0] == 401
    assert len(bed.ledger.outcomes(limit=1000)) == before


def _closed_port() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{probe.getsockname()[1]}"


def test_a_harbor_push_from_an_unconfigured_host_is_rejected_without_a_connection(bed: Bed) -> None:
    elsewhere = _closed_port()  # nothing listens: a connection would fail, not reject
    status, answer = post(bed.api, "/api/registry-events", harbor_body(elsewhere, bed.image.digest, "1.0"), BEARER)
    assert (status, results(answer)) == (200, ["rejected"]), answer
    assert "not a configured registry" in answer["outcomes"][0]["reason"]  # type: ignore[index]


def test_a_quay_push_with_the_token_in_the_url_is_decided_by_tag(bed: Bed) -> None:
    """Quay sends tags only: the pipeline has to read the tag on the registry to judge what it points at."""
    quay = {"repository": REPOSITORY, "namespace": "library", "name": "app", "updated_tags": ["1.0"],
            "docker_url": f"{bed.registry.host}/{REPOSITORY}", "homepage": "https://quay.example/repository/x"}
    status, answer = post(bed.api, "/api/registry-events", quay, {"Content-Type": "application/json"},
                          {"code": TOKEN})
    assert status == 200, answer
    assert results(answer) and results(answer)[0] in DECIDED, answer
    [row] = [o for o in bed.ledger.outcomes(limit=100) if o.event_id == answer["outcomes"][0]["event_id"]]  # type: ignore[index]
    assert (row.tag, row.digest) == ("1.0", bed.image.digest)  # the tag was resolved on the registry


def test_a_quay_push_of_a_tag_that_is_gone_is_ignored_and_ends(bed: Bed) -> None:
    """A tag deleted before its event is decided leaves nothing to judge: `ignored`, once, not an error."""
    quay = {"repository": REPOSITORY, "namespace": "library", "name": "app", "updated_tags": ["no-such-tag"],
            "docker_url": f"{bed.registry.host}/{REPOSITORY}"}
    status, answer = post(bed.api, "/api/registry-events", quay, {"Content-Type": "application/json"},
                          {"code": TOKEN})
    assert (status, results(answer)) == (200, ["ignored"]), answer
    assert "no longer exists" in answer["outcomes"][0]["reason"]  # type: ignore[index]


def test_every_quay_push_of_one_tag_is_decided_and_only_a_redelivery_is_a_duplicate(
    bed: Bed, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Quay's body is the same for every push of a tag (no time, no digest): the event is named by what the tag
    holds when it is decided, so a second push of the tag is judged and not taken for a redelivery."""
    builder = ImageBuilder(tmp_path_factory.mktemp("quay-pushes") / "layout")
    quay = {"repository": REPOSITORY, "namespace": "library", "name": "app", "updated_tags": ["moving"],
            "docker_url": f"{bed.registry.host}/{REPOSITORY}"}
    seen: list[tuple[str, str | None]] = []
    for seed, expected in (("first", "compliant"), ("first", "duplicate"), ("second", "compliant")):
        image = builder.image("linux/amd64", seed=f"quay-{seed}")
        push(builder, image, bed.registry.host, REPOSITORY, "moving")
        status, answer = post(bed.api, "/api/registry-events", quay, {"Content-Type": "application/json"},
                              {"code": TOKEN})
        assert (status, results(answer)) == (200, [expected]), answer
        seen.append((answer["outcomes"][0]["event_id"], image.digest))  # type: ignore[index]
    (first_id, first_digest), (again_id, _), (second_id, second_digest) = seen
    assert again_id == first_id and first_id.endswith(f"@{first_digest}")
    assert second_id != first_id and second_id.endswith(f"@{second_digest}")
