"""Structural checks of the deployment (infra/*.bicep, azure.yaml, the azd hooks, the alert query) against the code.

The Bicep compiler cannot run here, so the templates are parsed with pycep-parser and their parse trees checked: who
gets which role on what, the Event Grid subscription and its dead letters, the app settings (only settings
importer.app.settings reads, secrets only as Key Vault references, no keys), HTTPS / TLS 1.2 / local auth off, Flex
Consumption, azd conventions, and the alert query's dimension names and values against importer.adapters.sinks.telemetry and
importer.core.outcome. `bash scripts/check-infra` adds checkov's generic checks.

    .venv/bin/python -m pytest tests/infra -q
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pathspec
import pytest
import yaml
from pycep import BicepParser

from importer.adapters.sinks.telemetry import DIMENSION_PREFIX, DIMENSIONS
from importer.app.settings import (
    CREDENTIAL_SETTING,
    DEFAULT_QUEUE_NAME,
    KNOWN_SETTINGS,
    SECRET_SETTINGS,
    credentials_key,
)
from importer.core.outcome import RESULTS, Outcome
from importer.core.policy import DEFAULT_POLICY, parse_policy
from importer.entry.queue_trigger import QUEUE_CONNECTION

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
TEMPLATES = sorted(path.relative_to(INFRA).as_posix() for path in INFRA.rglob("*.bicep"))

# Built-in role definition ids, checked against Microsoft's built-in role reference.
BUILT_IN_ROLES: dict[str, str] = {
    "AcrPush": "8311e382-0749-4cb8-b61a-304f252e45ec",
    "AcrDelete": "c2f4ef07-c644-48eb-af81-4b1b4947fb11",
    "Container Registry Repository Contributor": "2efddaa5-3f1f-4df3-97df-af3f13818f4c",
    "Container Registry Data Importer and Data Reader": "577a9874-89fd-4f24-9dbd-b5034d0ad23a",
    "Container Registry Repository Catalog Lister": "bfdb9389-c9a5-478a-bb2f-ba9ca092c3c7",
    "Storage Blob Data Owner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
    "Storage Blob Data Contributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
    "Storage Blob Data Reader": "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
    "Storage Table Data Contributor": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
    "Storage Queue Data Contributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
    "Storage Queue Data Message Sender": "c6a89b2d-59bc-44d0-9896-0f6e12d7b80a",
    "Storage Queue Data Reader": "19e7f393-937e-4f77-808e-94535e297925",
    "EventGrid Data Sender": "d5a91429-5739-47e2-a06b-3470a27159e7",
    "Key Vault Secrets User": "4633458b-17de-408a-b874-0445c86b69e6",
    "Key Vault Secrets Officer": "b86a8fe4-44ce-4948-aee5-eccb2c155cd7",
    "Monitoring Metrics Publisher": "3913510d-42f4-4e42-8a64-420c390055eb",
}
ROLE_NAMES = {guid: name for name, guid in BUILT_IN_ROLES.items()}
KEY_VAULT_REFERENCE = re.compile(r"^@Microsoft\.KeyVault\(SecretUri=\$\{keyVaultUri\}secrets/[^)]+/\)$")


# --- reading the parse trees ---------------------------------------------------------------------------------------


@functools.cache
def template(relative: str) -> dict[str, Any]:
    """The pycep parse tree of infra/<relative>, parsed once per test session."""
    return BicepParser().parse(file_path=INFRA / relative)


def render(node: Any) -> str:
    """A compact Bicep-like text of an expression node, for readable assertions (identifiers and strings alike)."""
    if node is None:
        return "null"
    if isinstance(node, bool):
        return "true" if node else "false"
    if isinstance(node, (int, float, str)):
        return str(node)
    if isinstance(node, list):
        return "[" + ", ".join(render(item) for item in node) + "]"
    if "function" in node:
        function = node["function"]
        arguments = (function.get("parameters") or {}).values()
        return f"{function['type']}(" + ", ".join(render(value) for value in arguments if value is not None) + ")"
    if "operator" in node:
        operator, operands = node["operator"]["type"], node["operator"]["operands"]
        if operator == "property_accessor":
            return f"{render(operands['operand_1'])}.{render(operands['operand_2'])}"
        if operator == "conditional":
            condition, true_value = render(operands["condition"]), render(operands["true_value"])
            return f"{condition} ? {true_value} : {render(operands['false_value'])}"
        if operator == "not":
            return f"!{render(operands['bool_value'])}"
        return f"{operator}(" + ", ".join(render(value) for value in operands.values()) + ")"
    if "loop_type" in node:
        return f"[for {render(node['loop_type']['detail'])}: {render(node['config'])}]"
    return "{" + ", ".join(f"{key.strip(chr(39))}: {render(value)}" for key, value in node.items()) + "}"


@dataclass(frozen=True, slots=True)
class Resource:
    """One resource declaration: where it is, its symbolic name, type and body (condition and loop unwrapped)."""

    file: str
    symbol: str
    type: str
    api_version: str
    existing: bool
    condition: str | None
    config: Mapping[str, Any]


@functools.cache
def resources(relative: str) -> dict[str, Resource]:
    """The resources of one template by symbolic name."""
    found: dict[str, Resource] = {}
    for symbol, declaration in template(relative).get("resources", {}).items():
        config, condition = declaration["config"], None
        if "loop_type" in config or ("condition" in config and "config" in config):
            condition = render(config["condition"]) if config.get("condition") is not None else None
            config = config["config"]
        found[symbol] = Resource(relative, symbol, declaration["type"], declaration["api_version"],
                                 declaration["existing"], condition, config)
    return found


def all_resources() -> Iterator[Resource]:
    for relative in TEMPLATES:
        yield from resources(relative).values()


def resources_of_type(resource_type: str) -> list[Resource]:
    return [resource for resource in all_resources() if resource.type == resource_type and not resource.existing]


def variable(relative: str, name: str) -> Any:
    return template(relative)["variables"][name]["value"]


def parameter(relative: str, name: str) -> dict[str, Any]:
    return template(relative)["parameters"][name]


def module(name: str) -> dict[str, Any]:
    """A module declaration of main.bicep (its config unwrapped from a condition)."""
    config = template("main.bicep")["modules"][name]["config"]
    return config["config"] if "condition" in config and "config" in config else config


def path_of(resource: Resource) -> str:
    """The resource's name with its parents', e.g. `dataStorageAccountName/default/deadLetterContainerName`."""
    name = render(resource.config["name"])
    parent = resource.config.get("parent")
    return f"{path_of(resources(resource.file)[parent])}/{name}" if parent else name


def app_settings() -> dict[str, Any]:
    """The Function App's siteConfig.appSettings by name (a loop's name keeps its `${…}` template)."""
    (site,) = resources_of_type("Microsoft.Web/sites")
    combined = site.config["properties"]["siteConfig"]["appSettings"]["function"]
    assert combined["type"] == "concat", "appSettings should concatenate the settings variables"
    settings: dict[str, Any] = {}
    for name in combined["parameters"].values():
        value = variable(site.file, name)
        if "operator" in value and value["operator"]["type"] == "conditional":
            entries = value["operator"]["operands"]["true_value"] + value["operator"]["operands"]["false_value"]
        elif "loop_type" in value:
            entries = [value["config"]]
        else:
            entries = value
        for entry in entries:
            assert entry["name"] not in settings, f"app setting {entry['name']} is set twice"
            settings[entry["name"]] = entry["value"]
    return settings


def trigger_bindings(trigger_type: str) -> dict[str, dict[str, Any]]:
    """The trigger bindings of one type, by function name, of a fresh import of function_app.py (get_functions runs
    once per app), as function.json would hold them."""
    spec = importlib.util.spec_from_file_location("function_app_for_infra_tests", ROOT / "function_app.py")
    assert spec is not None and spec.loader is not None
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    found: dict[str, dict[str, Any]] = {}
    for function in loaded.app.get_functions():
        for binding in (json.loads(raw) for raw in function.get_raw_bindings()):
            if binding["type"] == trigger_type:
                found[function.get_function_name()] = binding
    return found


# --- the templates parse -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("relative", TEMPLATES, ids=TEMPLATES)
def test_template_parses(relative: str) -> None:
    """Every Bicep file under infra/ parses and declares something."""
    tree = template(relative)
    assert tree.get("resources") or tree.get("modules"), f"{relative} declares no resources or modules"


def test_expected_templates_exist() -> None:
    """The main template, its modules and the second-stage subscription template are all there."""
    referenced = {module_config["detail"]["path"] for module_config in template("main.bicep")["modules"].values()}
    assert referenced <= set(TEMPLATES), f"main.bicep references missing modules: {referenced - set(TEMPLATES)}"
    assert {"main.bicep", "event-subscription.bicep"} <= set(TEMPLATES)


# --- role assignments ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExpectedRole:
    """One role assignment as it must be: role, the type and name of its scope, the principal, when it applies."""

    file: str
    symbol: str
    role: str
    scope_type: str
    scope_path: str
    principal: str
    principal_type: str = "ServicePrincipal"
    condition: str | None = None


REGISTRY = "Microsoft.ContainerRegistry/registries"
QUEUE = "Microsoft.Storage/storageAccounts/queueServices/queues"
# The registry's roles carry no condition: both the RBAC-mode family (AcrPush, AcrDelete) and the ABAC-mode family
# (Repository Contributor, Catalog Lister) are assigned, so the registry's mode needs no parameter (issue 14, items 4
# and 13), and the import role is the built-in one (items 2 and 3).
ROLE_ASSIGNMENTS = [
    ExpectedRole("app/registry.bicep", "importer", "Container Registry Data Importer and Data Reader", REGISTRY,
                 "registryName", "functionPrincipalId"),
    ExpectedRole("app/registry.bicep", "pusher", "AcrPush", REGISTRY, "registryName", "functionPrincipalId"),
    ExpectedRole("app/registry.bicep", "deleter", "AcrDelete", REGISTRY, "registryName", "functionPrincipalId"),
    ExpectedRole("app/registry.bicep", "repositoryContributor", "Container Registry Repository Contributor", REGISTRY,
                 "registryName", "functionPrincipalId"),
    ExpectedRole("app/registry.bicep", "catalogLister", "Container Registry Repository Catalog Lister", REGISTRY,
                 "registryName", "functionPrincipalId"),
    ExpectedRole("app/storage-roles.bicep", "hostBlobOwner", "Storage Blob Data Owner",
                 "Microsoft.Storage/storageAccounts", "hostStorageAccountName", "functionPrincipalId"),
    ExpectedRole("app/storage-roles.bicep", "ledgerTableContributor", "Storage Table Data Contributor",
                 "Microsoft.Storage/storageAccounts", "dataStorageAccountName", "functionPrincipalId"),
    ExpectedRole("app/storage-roles.bicep", "deadLetterWriter", "Storage Blob Data Contributor",
                 "Microsoft.Storage/storageAccounts/blobServices/containers",
                 "dataStorageAccountName/default/deadLetterContainerName", "eventGridPrincipalId"),
    ExpectedRole("app/storage-roles.bicep", "eventQueueWorker", "Storage Queue Data Contributor", QUEUE,
                 "dataStorageAccountName/default/eventQueueName", "functionPrincipalId"),
    ExpectedRole("app/storage-roles.bicep", "poisonQueueWorker", "Storage Queue Data Contributor", QUEUE,
                 "dataStorageAccountName/default/${eventQueueName}-poison", "functionPrincipalId"),
    ExpectedRole("app/storage-roles.bicep", "eventQueueSender", "Storage Queue Data Message Sender", QUEUE,
                 "dataStorageAccountName/default/eventQueueName", "eventGridPrincipalId"),
    ExpectedRole("app/storage-roles.bicep", "deadLetterReader", "Storage Blob Data Reader",
                 "Microsoft.Storage/storageAccounts/blobServices/containers",
                 "dataStorageAccountName/default/deadLetterContainerName", "deployerPrincipalId",
                 principal_type="deployerPrincipalType", condition="!empty(deployerPrincipalId)"),
    ExpectedRole("app/storage-roles.bicep", "eventQueueReader", "Storage Queue Data Reader", QUEUE,
                 "dataStorageAccountName/default/eventQueueName", "deployerPrincipalId",
                 principal_type="deployerPrincipalType", condition="!empty(deployerPrincipalId)"),
    ExpectedRole("app/storage-roles.bicep", "poisonQueueReader", "Storage Queue Data Reader", QUEUE,
                 "dataStorageAccountName/default/${eventQueueName}-poison", "deployerPrincipalId",
                 principal_type="deployerPrincipalType", condition="!empty(deployerPrincipalId)"),
    ExpectedRole("app/outcomes-topic.bicep", "sender", "EventGrid Data Sender", "Microsoft.EventGrid/topics", "name",
                 "senderPrincipalId"),
    ExpectedRole("core/monitoring.bicep", "publisherRole", "Monitoring Metrics Publisher",
                 "Microsoft.Insights/components", "applicationInsightsName", "publisherPrincipalId"),
    ExpectedRole("core/key-vault.bicep", "secretsUser", "Key Vault Secrets User", "Microsoft.KeyVault/vaults", "name",
                 "readerPrincipalId"),
    ExpectedRole("core/key-vault.bicep", "secretsOfficer", "Key Vault Secrets Officer", "Microsoft.KeyVault/vaults",
                 "name", "writerPrincipalId", principal_type="writerPrincipalType",
                 condition="!empty(writerPrincipalId)"),
]


def role_of(assignment: Resource) -> str:
    """The role an assignment grants: a built-in role's name, or `custom:<symbol>` for a role defined in the file."""
    definition = assignment.config["properties"]["roleDefinitionId"]
    if "function" in definition:
        function = definition["function"]
        assert function["type"] == "subscription_resource_id", render(definition)
        assert function["parameters"]["resource_type"] == "Microsoft.Authorization/roleDefinitions"
        guid = variable(assignment.file, function["parameters"]["resource_name_1"])
        assert guid in ROLE_NAMES, f"{assignment.symbol}: role id {guid} is not a known built-in role"
        return ROLE_NAMES[guid]
    symbol, _, attribute = render(definition).partition(".")
    assert attribute == "id" and resources(assignment.file)[symbol].type == "Microsoft.Authorization/roleDefinitions"
    return f"custom:{symbol}"


@pytest.mark.parametrize("expected", ROLE_ASSIGNMENTS, ids=[f"{row.symbol}-{row.role}" for row in ROLE_ASSIGNMENTS])
def test_role_assignment(expected: ExpectedRole) -> None:
    """Each role assignment grants the expected role to the expected principal on one resource, never a whole group."""
    assignment = resources(expected.file)[expected.symbol]
    assert assignment.type == "Microsoft.Authorization/roleAssignments"
    assert role_of(assignment) == expected.role
    assert "scope" in assignment.config, f"{expected.symbol} has no scope: it would apply to the whole resource group"
    scope = resources(expected.file)[assignment.config["scope"]]
    assert (scope.type, path_of(scope)) == (expected.scope_type, expected.scope_path)
    properties = assignment.config["properties"]
    assert render(properties["principalId"]) == expected.principal
    assert render(properties["principalType"]) == expected.principal_type
    assert assignment.condition == expected.condition
    assert render(assignment.config["name"]).startswith(f"guid({assignment.config['scope']}.id, {expected.principal}")


def test_every_role_assignment_is_expected() -> None:
    """No template assigns a role that the table above does not list (a new grant needs a reviewed row)."""
    assignments = resources_of_type("Microsoft.Authorization/roleAssignments")
    declared = {(resource.file, resource.symbol) for resource in assignments}
    assert declared == {(row.file, row.symbol) for row in ROLE_ASSIGNMENTS}


def test_no_role_is_defined() -> None:
    """No template defines a role: the import role is the built-in Container Registry Data Importer and Data Reader,
    so the deployer needs no Microsoft.Authorization/roleDefinitions/write (issue 14, items 2 and 3). Replaces the
    check of the former custom importImage role."""
    assert resources_of_type("Microsoft.Authorization/roleDefinitions") == []
    assert not any(resource.type == "Microsoft.Authorization/roleDefinitions" for resource in all_resources())


def test_registry_roles_cover_both_permission_modes_without_a_parameter() -> None:
    """Whatever the registry's role assignment permissions mode, the app can read, push, delete or lock, import and
    list the catalog: the RBAC-mode roles and the ABAC-mode roles are both assigned, none behind a condition, and no
    parameter says which mode the registry is in (a wrong one assigned only the other family)."""
    registry_roles = {role_of(resource): resource.condition for resource in resources("app/registry.bicep").values()
                      if resource.type == "Microsoft.Authorization/roleAssignments"}
    assert registry_roles == dict.fromkeys([
        "Container Registry Data Importer and Data Reader", "AcrPush", "AcrDelete",
        "Container Registry Repository Contributor", "Container Registry Repository Catalog Lister"])
    for relative in TEMPLATES:
        assert not {name for name in template(relative).get("parameters", {}) if "abac" in name.lower()}, relative
    assert "ABAC" not in (INFRA / "main.parameters.json").read_text().upper()


def test_every_assignment_to_the_deployer_carries_azds_principal_type() -> None:
    """Each role assignment to the deployer (main.bicep's principalId, handed to a module) takes its principalType from
    main.bicep's principalType, which azd fills from AZURE_PRINCIPAL_TYPE: a pipeline's service principal must not be
    assigned roles typed User, which ARM refuses (issue 14, item 14)."""
    found = []
    for name, declaration in template("main.bicep")["modules"].items():
        params = module(name)["params"]
        holders = {param for param, value in params.items() if re.search(r"\bprincipalId\b", render(value))}
        if not holders:
            continue
        type_params = {param for param, value in params.items() if render(value) == "principalType"}
        relative = declaration["detail"]["path"]
        for resource in resources(relative).values():
            if resource.type != "Microsoft.Authorization/roleAssignments":
                continue
            properties = resource.config["properties"]
            if render(properties["principalId"]) in holders:
                assert render(properties["principalType"]) in type_params, f"{relative}:{resource.symbol}"
                found.append(resource.symbol)
    assert set(found) == {"secretsOfficer", "deadLetterReader", "eventQueueReader", "poisonQueueReader"}


PRINCIPAL_WIRING = [
    ("registry", "functionPrincipalId", "identities.outputs.functionPrincipalId"),
    ("storageRoles", "functionPrincipalId", "identities.outputs.functionPrincipalId"),
    ("storageRoles", "eventGridPrincipalId", "identities.outputs.eventGridPrincipalId"),
    ("storageRoles", "hostStorageAccountName", "hostStorage.outputs.name"),
    ("storageRoles", "dataStorageAccountName", "dataStorage.outputs.name"),
    ("storageRoles", "deadLetterContainerName", "deadLetterContainerName"),
    ("storageRoles", "eventQueueName", "eventQueueName"),
    ("monitoring", "publisherPrincipalId", "identities.outputs.functionPrincipalId"),
    ("outcomesTopic", "senderPrincipalId", "identities.outputs.functionPrincipalId"),
    ("keyVault", "readerPrincipalId", "identities.outputs.functionPrincipalId"),
    ("keyVault", "writerPrincipalId", "principalId"),
    ("keyVault", "writerPrincipalType", "principalType"),
    ("keyVault", "recover", "keyVaultRecover"),
    ("storageRoles", "deployerPrincipalId", "deployerDataReader ? principalId : "),
    ("storageRoles", "deployerPrincipalType", "principalType"),
    ("registry", "eventGridIdentityId", "identities.outputs.eventGridIdentityId"),
    ("functionApp", "identityId", "identities.outputs.functionIdentityId"),
    ("functionApp", "identityClientId", "identities.outputs.functionClientId"),
]


@pytest.mark.parametrize(("module_name", "param", "expected"), PRINCIPAL_WIRING,
                         ids=[f"{row[0]}.{row[1]}" for row in PRINCIPAL_WIRING])
def test_main_wires_module_parameter(module_name: str, param: str, expected: str) -> None:
    """main.bicep hands each module the right identity (the app's or Event Grid's) and the right storage account."""
    assert render(module(module_name)["params"][param]) == expected


def test_registry_module_runs_on_the_registry_resource_group() -> None:
    """The registry's role assignments and system topic are deployed to the registry's own (existing) resource group."""
    scope = resources("main.bicep")[module("registry")["scope"]]
    assert (scope.type, scope.existing, render(scope.config["name"])) == (
        "Microsoft.Resources/resourceGroups", True, "registryResourceGroupName")
    registry = resources("app/registry.bicep")["registry"]
    assert (registry.type, registry.existing, render(registry.config["name"])) == (REGISTRY, True, "registryName")
    others = {name for name in template("main.bicep")["modules"] if name != "registry"}
    assert {render(module(name)["scope"]) for name in others} == {"appResourceGroup"}


# --- Event Grid ----------------------------------------------------------------------------------------------------


def event_subscription() -> Resource:
    (subscription,) = resources_of_type("Microsoft.EventGrid/systemTopics/eventSubscriptions")
    return subscription


def test_event_subscription_is_deployed_only_after_the_code() -> None:
    """The subscription lives in its own template (deployed by the postdeploy hook), never in main.bicep's modules."""
    assert event_subscription().file == "event-subscription.bicep"
    assert "event-subscription.bicep" not in {
        config["detail"]["path"] for config in template("main.bicep")["modules"].values()}


def test_subscription_delivers_to_the_queue_the_queue_trigger_works() -> None:
    """Event Grid delivers straight to a Storage queue (no function in the intake path) with the topic's identity: the
    queue function_app.py's queue trigger listens on, in the data account, and no other destination."""
    ((trigger, binding),) = trigger_bindings("queueTrigger").items()
    assert not trigger_bindings("eventGridTrigger")
    properties = event_subscription().config["properties"]
    assert "destination" not in properties, "the queue destination is delivered with the topic's identity"
    destination = properties["deliveryWithResourceIdentity"]["destination"]
    assert destination["endpointType"] == "StorageQueue"
    assert render(destination["properties"]["resourceId"]) == "queueStorageAccountId"
    assert render(destination["properties"]["queueName"]) == "queueName"
    assert binding["queueName"] == DEFAULT_QUEUE_NAME == parameter("event-subscription.bicep", "queueName")["default"]
    assert variable("main.bicep", "eventQueueName") == DEFAULT_QUEUE_NAME
    assert binding["connection"] == QUEUE_CONNECTION
    assert variable("main.bicep", "eventFunctionName") == trigger
    outputs = template("main.bicep")["outputs"]
    assert render(outputs["AZURE_FUNCTION_NAME"]["value"]) == "eventFunctionName"
    assert render(outputs["AZURE_EVENT_QUEUE_NAME"]["value"]) == "eventQueueName"
    assert render(outputs["AZURE_EVENT_QUEUE_STORAGE_ACCOUNT_ID"]["value"]) == "dataStorage.outputs.id"
    assert render(outputs["AZURE_EVENT_QUEUE_ENDPOINT"]["value"]) == "dataStorage.outputs.queueEndpoint"


def test_event_queue_and_its_poison_queue_are_created_in_the_data_account() -> None:
    """The data account creates the event queue and `<queue>-poison` (the host's dead letters), so that the roles can
    be scoped to exactly those two queues."""
    assert [render(queue) for queue in module("dataStorage")["params"]["queues"]] == [
        "eventQueueName", "${eventQueueName}-poison"]
    (queues,) = resources_of_type(QUEUE)
    assert (queues.file, render(queues.config["parent"])) == ("core/storage-account.bicep", "queueService")
    assert "queues" not in module("hostStorage")["params"]


SUBSCRIPTION_PROPERTIES = [
    ("eventDeliverySchema", "EventGridSchema"),
    ("filter.includedEventTypes",
     ["Microsoft.ContainerRegistry.ImagePushed", "Microsoft.ContainerRegistry.ChartPushed"]),
    ("deliveryWithResourceIdentity.identity.type", "UserAssigned"),
    ("deliveryWithResourceIdentity.identity.userAssignedIdentity", "eventGridIdentityId"),
    ("deliveryWithResourceIdentity.destination.endpointType", "StorageQueue"),
    ("deliveryWithResourceIdentity.destination.properties.queueMessageTimeToLiveInSeconds", -1),
    ("retryPolicy.maxDeliveryAttempts", "maxDeliveryAttempts"),
    ("retryPolicy.eventTimeToLiveInMinutes", "eventTimeToLiveInMinutes"),
    ("deadLetterWithResourceIdentity.identity.type", "UserAssigned"),
    ("deadLetterWithResourceIdentity.identity.userAssignedIdentity", "eventGridIdentityId"),
    ("deadLetterWithResourceIdentity.deadLetterDestination.endpointType", "StorageBlob"),
    ("deadLetterWithResourceIdentity.deadLetterDestination.properties.resourceId", "deadLetterStorageAccountId"),
    ("deadLetterWithResourceIdentity.deadLetterDestination.properties.blobContainerName", "deadLetterContainerName"),
]


def dig(config: Mapping[str, Any], dotted: str) -> Any:
    value: Any = config
    for key in dotted.split("."):
        assert isinstance(value, Mapping) and key in value, f"{dotted}: no {key!r}"
        value = value[key]
    return value


@pytest.mark.parametrize(("path", "expected"), SUBSCRIPTION_PROPERTIES, ids=[row[0] for row in SUBSCRIPTION_PROPERTIES])
def test_event_subscription_property(path: str, expected: Any) -> None:
    """Event Grid schema, only image and chart pushes, to the queue by identity, messages that never expire, bounded
    retries, keyless dead letters."""
    value = dig(event_subscription().config["properties"], path)
    if isinstance(value, dict) and value.get("operator", {}).get("type") == "minus":  # pycep reads -1 as minus(1)
        value = -value["operator"]["operands"]["integer_value"]
    assert value == expected


@pytest.mark.parametrize(("name", "low", "high", "default"), [
    ("maxDeliveryAttempts", 1, 30, 30),
    ("eventTimeToLiveInMinutes", 1, 1440, 1440),
], ids=["max-delivery-attempts", "event-ttl-minutes"])
def test_retry_policy_bounds(name: str, low: int, high: int, default: int) -> None:
    """Retry parameters are bounded to what Event Grid accepts, and default to its maximum before dead-lettering."""
    declared = parameter("event-subscription.bicep", name)
    bounds = {decorator["type"]: decorator["argument"] for decorator in declared["decorators"]}
    assert (bounds.get("min_value"), bounds.get("max_value"), declared["default"]) == (low, high, default)


def test_system_topic_is_on_the_registry_with_the_dead_letter_identity() -> None:
    """The system topic's source is the guarded registry, and it carries the identity that writes dead letters."""
    (topic,) = resources_of_type("Microsoft.EventGrid/systemTopics")
    assert topic.file == "app/registry.bicep"
    assert render(topic.config["properties"]["source"]) == "registry.id"
    assert topic.config["properties"]["topicType"] == "Microsoft.ContainerRegistry.Registries"
    assert topic.config["identity"]["type"] == "UserAssigned"
    assert list(topic.config["identity"]["userAssignedIdentities"]) == ["'${eventGridIdentityId}'"]


def test_dead_letter_container_is_the_one_event_grid_may_write() -> None:
    """The dead-letter container the hook passes is the one created in the data account (the role's scope)."""
    main = template("main.bicep")
    assert variable("main.bicep", "deadLetterContainerName") == "deadletter"
    assert module("dataStorage")["params"]["containers"] == ["deadLetterContainerName"]
    assert render(main["outputs"]["AZURE_DEADLETTER_CONTAINER_NAME"]["value"]) == "deadLetterContainerName"
    assert render(main["outputs"]["AZURE_DEADLETTER_STORAGE_ACCOUNT_ID"]["value"]) == "dataStorage.outputs.id"
    assert render(main["outputs"]["AZURE_EVENTGRID_IDENTITY_ID"]["value"]) == "identities.outputs.eventGridIdentityId"


# --- app settings --------------------------------------------------------------------------------------------------


def guard_setting_names() -> set[str]:
    """Every PLATFORM_GUARD_* name anywhere in the templates and the parameters file (`${…}` read as KEY)."""
    texts = [re.sub(r"\$\{[^}]*\}", "KEY", text) for relative in TEMPLATES for text in walk(template(relative))]
    texts.append((INFRA / "main.parameters.json").read_text())
    return {name for text in texts for name in re.findall(r"PLATFORM_GUARD_[A-Z0-9_]*[A-Z0-9]", text)}


def test_every_guard_setting_is_one_the_code_reads() -> None:
    """Each PLATFORM_GUARD_* name in the templates is in KNOWN_SETTINGS or is a credential pair setting."""
    names = guard_setting_names()
    assert {name for name in app_settings() if name.startswith("PLATFORM_GUARD_") and "${" not in name} <= names
    unknown = {name for name in names if name not in KNOWN_SETTINGS and not CREDENTIAL_SETTING.match(name)}
    assert not unknown, f"not read by the code: {unknown}"


EXPECTED_SETTINGS = [
    ("PLATFORM_GUARD_ACR_RESOURCE_ID", "registryResourceId"),
    ("PLATFORM_GUARD_ACR_LOGIN_SERVER", "registryLoginServer"),
    ("PLATFORM_GUARD_POLICY", "policyText"),
    ("PLATFORM_GUARD_TABLES_ENDPOINT", "tablesEndpoint"),
    ("PLATFORM_GUARD_EVENTGRID_TOPIC_ENDPOINT", "outcomesTopicEndpoint"),
    ("PLATFORM_GUARD_LOOP_GUARD", "loopGuard"),
    ("PLATFORM_GUARD_PAUSED_REPOSITORIES", "pausedRepositories"),
    ("PLATFORM_GUARD_SWEEP_SCHEDULE", "sweepSchedule"),
    ("PLATFORM_GUARD_SWEEP_REMEDIATE", "sweepRemediate ? true : false"),
    ("APPLICATIONINSIGHTS_CONNECTION_STRING", "applicationInsightsConnectionString"),
    ("APPLICATIONINSIGHTS_AUTHENTICATION_STRING", "Authorization=AAD;ClientId=${identityClientId}"),
    ("AZURE_CLIENT_ID", "identityClientId"),
    ("AzureWebJobsStorage__credential", "managedidentity"),
    ("AzureWebJobsStorage__clientId", "identityClientId"),
    ("AzureWebJobsStorage__blobServiceUri", "https://${hostStorageAccountName}.blob.${environment().suffixes.storage}"),
    (f"{QUEUE_CONNECTION}__queueServiceUri", "queueEndpoint"),
    (f"{QUEUE_CONNECTION}__credential", "managedidentity"),
    (f"{QUEUE_CONNECTION}__clientId", "identityClientId"),
    ("PLATFORM_GUARD_QUEUE_ENDPOINT", "queueEndpoint"),
    ("PLATFORM_GUARD_QUEUE_NAME", "queueName"),
]


@pytest.mark.parametrize(("name", "expected"), EXPECTED_SETTINGS, ids=[row[0] for row in EXPECTED_SETTINGS])
def test_app_setting_value(name: str, expected: str) -> None:
    """The Function App gets the settings it needs, each from the right parameter, storage and telemetry by identity."""
    assert render(app_settings()[name]) == expected


MODULE_INPUTS = [
    ("registryResourceId", "registry.outputs.registryId"),
    ("registryLoginServer", "registry.outputs.loginServer"),
    ("policyText", "policyText"),
    ("tablesEndpoint", "dataStorage.outputs.tableEndpoint"),
    ("queueEndpoint", "dataStorage.outputs.queueEndpoint"),
    ("queueName", "eventQueueName"),
    ("outcomesTopicEndpoint", "outcomesTopic.outputs.endpoint"),
    ("applicationInsightsConnectionString", "monitoring.outputs.applicationInsightsConnectionString"),
    ("hostStorageAccountName", "hostStorage.outputs.name"),
    ("keyVaultUri", "useKeyVault ? keyVault.outputs.uri : "),
    ("sweepSchedule", "sweepSchedule"),
    ("sweepRemediate", "sweepRemediate"),
    ("upstreamCredentials", "upstreamCredentials"),
]


@pytest.mark.parametrize(("param", "expected"), MODULE_INPUTS, ids=[row[0] for row in MODULE_INPUTS])
def test_function_app_inputs(param: str, expected: str) -> None:
    """main.bicep feeds the settings from the right resources: the registry's id, the data account's tables, …"""
    assert render(module("functionApp")["params"][param]) == expected


HOST_SETTING_PREFIXES = ("AzureWebJobsStorage__", f"{QUEUE_CONNECTION}__")
HOST_SETTINGS = {"APPLICATIONINSIGHTS_AUTHENTICATION_STRING"}


def test_every_app_setting_is_known_or_the_hosts() -> None:
    """Every app setting is one the code reads (KNOWN_SETTINGS, the credential pairs) or the Functions host's own:
    its storage and queue trigger connections (identity-based) and the telemetry authentication."""
    unknown = {name for name in app_settings() if name not in KNOWN_SETTINGS and name not in HOST_SETTINGS
               and not CREDENTIAL_SETTING.match(name.replace("${credentialKeys[i]}", "KEY"))
               and not name.startswith(HOST_SETTING_PREFIXES)}
    assert not unknown, f"neither read by the code nor the host's: {unknown}"
    assert {name for name in app_settings() if name.startswith(f"{QUEUE_CONNECTION}__")} == {
        f"{QUEUE_CONNECTION}__{part}" for part in ("queueServiceUri", "credential", "clientId")}


def test_registry_output_is_the_existing_registry_id() -> None:
    """PLATFORM_GUARD_ACR_RESOURCE_ID ends up as the id of the existing registry named by the registryName parameter."""
    assert render(template("app/registry.bicep")["outputs"]["registryId"]["value"]) == "registry.id"
    assert render(module("registry")["params"]["registryName"]) == "registryName"


def test_login_server_is_the_registrys_own() -> None:
    """PLATFORM_GUARD_ACR_LOGIN_SERVER is the existing registry's properties.loginServer, as ARM reports it (a registry
    with a domain name label scope is <name>-<hash>.azurecr.io, which no name-based guess finds), passed from
    registry.bicep through main.bicep to the app setting, and an azd output for the docs (issue 14, item 6)."""
    outputs = template("app/registry.bicep")["outputs"]
    assert render(outputs["loginServer"]["value"]) == "registry.properties.loginServer"
    registry = resources("app/registry.bicep")["registry"]
    assert (registry.type, registry.existing) == (REGISTRY, True)
    assert render(module("functionApp")["params"]["registryLoginServer"]) == "registry.outputs.loginServer"
    assert render(app_settings()["PLATFORM_GUARD_ACR_LOGIN_SERVER"]) == "registryLoginServer"
    main_outputs = template("main.bicep")["outputs"]
    assert render(main_outputs["AZURE_REGISTRY_LOGIN_SERVER"]["value"]) == "registry.outputs.loginServer"


def test_secrets_are_only_key_vault_references() -> None:
    """Secret settings and registry credentials are set, if at all, only as Key Vault references."""
    settings = app_settings()
    secret_names = [name for name in settings
                    if name in SECRET_SETTINGS or name.endswith(("_PASSWORD", "_USERNAME"))]
    assert len(secret_names) == 2, f"expected the credential pair, got {secret_names}"
    for name in secret_names:
        assert KEY_VAULT_REFERENCE.match(render(settings[name])), f"{name} is not a Key Vault reference"
    assert not SECRET_SETTINGS & set(settings), "webhook/topic keys and connection strings must not be set in Azure"


def test_key_vault_references_resolve_with_the_app_identity() -> None:
    """The platform resolves Key Vault references with the user-assigned identity (it holds Secrets User)."""
    (site,) = resources_of_type("Microsoft.Web/sites")
    assert render(site.config["properties"]["keyVaultReferenceIdentity"]) == "identityId"


FORBIDDEN_FRAGMENTS = ["listKeys", "list_keys", "listAccountSas", "list_account_sas", "AccountKey=",
                       "SharedAccessKey", "DefaultEndpointsProtocol", "InstrumentationKey=", "primaryKey"]


def walk(node: Any) -> Iterator[str]:
    """Every string and dict key in a parse tree."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, list):
        for item in node:
            yield from walk(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            yield key
            yield from walk(value)


@pytest.mark.parametrize("relative", TEMPLATES, ids=TEMPLATES)
def test_no_keys_or_connection_strings(relative: str) -> None:
    """No template reads keys, builds a key-based connection string or sets plain AzureWebJobsStorage."""
    for text in walk(template(relative)):
        for fragment in FORBIDDEN_FRAGMENTS:
            assert fragment not in text, f"{relative}: {fragment!r} in {text[:80]!r}"
    if relative == "app/function-app.bicep":
        names = set(app_settings())
        assert "AzureWebJobsStorage" not in names
        connection_strings = {name for name in names if name.endswith("CONNECTION_STRING")}
        assert connection_strings == {"APPLICATIONINSIGHTS_CONNECTION_STRING"}


def evaluate(node: Any, bindings: Mapping[str, Any]) -> Any:
    """Evaluate the few Bicep expressions the credential key uses: property access, replace, toUpper."""
    if isinstance(node, str):
        return bindings.get(node, node)
    if "operator" in node and node["operator"]["type"] == "property_accessor":
        operands = node["operator"]["operands"]
        return evaluate(operands["operand_1"], bindings)[operands["operand_2"]]
    function = node["function"]
    arguments = function["parameters"]
    if function["type"] == "replace":
        original = evaluate(arguments["original_string"], bindings)
        return original.replace(arguments["old_string"], arguments["new_string"])
    if function["type"] == "to_upper":
        return evaluate(arguments["string_to_change"], bindings).upper()
    raise AssertionError(f"the credential key uses {function['type']}, which this test cannot evaluate")


UPSTREAM_HOSTS = ["docker.io", "registry-1.docker.io", "ghcr.io", "localhost:5000", "my-registry.example.com:8443"]


@pytest.mark.parametrize("host", UPSTREAM_HOSTS)
def test_credential_setting_key_matches_the_code(host: str) -> None:
    """The template names credential settings with the same KEY as importer.app.settings.credentials_key."""
    keys = variable("app/function-app.bicep", "credentialKeys")
    item = keys["loop_type"]["detail"]["item_name"]
    assert evaluate(keys["config"], {item: {"registry": host}}) == credentials_key(host)
    names = {name for name in app_settings() if "credentialKeys[i]" in name}
    assert names == {"PLATFORM_GUARD_REGISTRY_${credentialKeys[i]}_USERNAME",
                     "PLATFORM_GUARD_REGISTRY_${credentialKeys[i]}_PASSWORD"}


def test_default_policy_is_the_embedded_default() -> None:
    """infra/policy.yaml, the PLATFORM_GUARD_POLICY default, is the policy the code embeds."""
    deployed = parse_policy((INFRA / "policy.yaml").read_text(), source="infra/policy.yaml")
    assert (deployed.defaults, deployed.rules, deployed.quarantine) == (
        DEFAULT_POLICY.defaults, DEFAULT_POLICY.rules, DEFAULT_POLICY.quarantine)
    assert render(variable("main.bicep", "policyText")) == (
        "empty(policyBase64) ? load_text_content(policy.yaml) : base64_to_string(policyBase64)")


# --- security properties -------------------------------------------------------------------------------------------


SECURITY_PROPERTIES = [
    ("Microsoft.Web/sites", "properties.httpsOnly", True),
    ("Microsoft.Web/sites", "properties.siteConfig.minTlsVersion", "1.2"),
    ("Microsoft.Web/sites", "properties.siteConfig.scmMinTlsVersion", "1.2"),
    ("Microsoft.Web/sites", "properties.siteConfig.ftpsState", "Disabled"),
    ("Microsoft.Web/sites", "identity.type", "UserAssigned"),
    ("Microsoft.Web/sites/basicPublishingCredentialsPolicies", "properties.allow", False),
    ("Microsoft.Storage/storageAccounts", "properties.supportsHttpsTrafficOnly", True),
    ("Microsoft.Storage/storageAccounts", "properties.minimumTlsVersion", "TLS1_2"),
    ("Microsoft.Storage/storageAccounts", "properties.allowSharedKeyAccess", False),
    ("Microsoft.Storage/storageAccounts", "properties.allowBlobPublicAccess", False),
    ("Microsoft.Storage/storageAccounts", "properties.defaultToOAuthAuthentication", True),
    ("Microsoft.Storage/storageAccounts/blobServices/containers", "properties.publicAccess", "None"),
    ("Microsoft.EventGrid/topics", "properties.disableLocalAuth", True),
    ("Microsoft.EventGrid/topics", "properties.minimumTlsVersionAllowed", "1.2"),
    ("Microsoft.Insights/components", "properties.DisableLocalAuth", True),
    ("Microsoft.OperationalInsights/workspaces", "properties.features.disableLocalAuth", True),
    ("Microsoft.KeyVault/vaults", "properties.enableRbacAuthorization", True),
    ("Microsoft.KeyVault/vaults", "properties.enablePurgeProtection", True),
]


@pytest.mark.parametrize(("resource_type", "path", "expected"), SECURITY_PROPERTIES,
                         ids=[f"{row[0].rsplit('/', 1)[-1]}-{row[1].rsplit('.', 1)[-1]}"
                              for row in SECURITY_PROPERTIES])
def test_security_property(resource_type: str, path: str, expected: Any) -> None:
    """HTTPS only, TLS 1.2, keys and local auth off wherever the resource supports it, RBAC-mode Key Vault."""
    declared = resources_of_type(resource_type)
    assert declared, f"no {resource_type} is declared"
    for resource in declared:
        assert dig(resource.config, path) == expected, f"{resource.file}:{resource.symbol}"


def test_key_vault_can_be_recovered_for_one_provision() -> None:
    """Re-provisioning within 90 days of deleting kv-<token> (purge protection: it cannot be purged) recovers it:
    createMode is 'recover' exactly when keyVaultRecover is true, 'default' otherwise (recover fails without a deleted
    vault, so the default stays false and the postprovision hook turns it off again) (issue 14, item 11)."""
    (vault,) = resources_of_type("Microsoft.KeyVault/vaults")
    mode = vault.config["properties"]["createMode"]
    operands = mode["operator"]["operands"]
    assert mode["operator"]["type"] == "conditional"
    assert (render(operands["condition"]), operands["true_value"], operands["false_value"]) == (
        "recover", "recover", "default")
    assert parameter("core/key-vault.bicep", "recover")["default"] is False
    assert parameter("main.bicep", "keyVaultRecover")["default"] is False
    assert render(module("keyVault")["params"]["recover"]) == "keyVaultRecover"
    mapped = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert mapped["keyVaultRecover"]["value"] == "${AZURE_KEY_VAULT_RECOVER=false}"
    assert vault.config["properties"]["enablePurgeProtection"] is True


def test_deployer_reads_what_the_guide_inspects() -> None:
    """`az storage blob list` / `az storage message peek --auth-mode login` in docs/deploy.md need data roles that
    Owner or Contributor do not give: the deployer gets read-only ones on the dead letters and both queues, unless
    deployerDataReader is false (issue 14, item 12)."""
    assert parameter("main.bicep", "deployerDataReader")["default"] is True
    mapped = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert mapped["deployerDataReader"]["value"] == "${AZURE_DEPLOYER_DATA_READER=true}"
    guide = (ROOT / "docs" / "deploy.md").read_text()
    assert "az storage blob list --auth-mode login" in guide and "az storage message peek --auth-mode login" in guide
    readers = {row.role for row in ROLE_ASSIGNMENTS if row.principal == "deployerPrincipalId"}
    assert readers == {"Storage Blob Data Reader", "Storage Queue Data Reader"}


def test_outcome_topic_takes_the_cloud_events_the_sink_sends() -> None:
    """The outcome topic's input schema is CloudEvents 1.0, which importer.adapters.sinks.eventgrid publishes."""
    from importer.adapters.sinks.eventgrid import EventGridSink

    assert "CloudEvent" in (EventGridSink.__doc__ or "")
    (topic,) = resources_of_type("Microsoft.EventGrid/topics")
    assert topic.config["properties"]["inputSchema"] == "CloudEventSchemaV1_0"


# --- Flex Consumption ----------------------------------------------------------------------------------------------


FLEX_PROPERTIES = [
    ("Microsoft.Web/serverfarms", "sku", {"tier": "FlexConsumption", "name": "FC1"}),
    ("Microsoft.Web/serverfarms", "properties.reserved", True),
    ("Microsoft.Web/sites", "kind", "functionapp,linux"),
    ("Microsoft.Web/sites", "properties.functionAppConfig.runtime", {"name": "python", "version": "3.11"}),
    ("Microsoft.Web/sites", "properties.functionAppConfig.deployment.storage.type", "blobContainer"),
    ("Microsoft.Web/sites", "properties.functionAppConfig.deployment.storage.value",
     "https://${hostStorageAccountName}.blob.${environment().suffixes.storage}/${deploymentContainerName}"),
    ("Microsoft.Web/sites", "properties.functionAppConfig.deployment.storage.authentication",
     {"type": "UserAssignedIdentity", "userAssignedIdentityResourceId": "identityId"}),
    ("Microsoft.Web/sites", "properties.functionAppConfig.scaleAndConcurrency.alwaysReady",
     "greater_than(alwaysReadyInstanceCount, 0) ? [{name: function:${alwaysReadyFunctionName}, "
     "instanceCount: alwaysReadyInstanceCount}] : []"),
]


@pytest.mark.parametrize(("resource_type", "path", "expected"), FLEX_PROPERTIES,
                         ids=[row[1] for row in FLEX_PROPERTIES])
def test_flex_consumption(resource_type: str, path: str, expected: Any) -> None:
    """Flex Consumption, Python 3.11, deployment from blob storage by identity, always-ready count as a parameter."""
    (resource,) = resources_of_type(resource_type)
    value = dig(resource.config, path)
    if isinstance(expected, str) and not isinstance(value, str):  # an expression: compare its text
        value = render(value)
    assert value == expected


def test_always_ready_reaches_the_queue_trigger() -> None:
    """main.bicep passes the always-ready count parameter and the queue trigger function's name to the app module."""
    params = module("functionApp")["params"]
    assert render(params["alwaysReadyInstanceCount"]) == "alwaysReadyInstanceCount"
    assert render(params["alwaysReadyFunctionName"]) == "eventFunctionName"
    assert parameter("main.bicep", "alwaysReadyInstanceCount")["type"] == "int"


# --- the alert -----------------------------------------------------------------------------------------------------


# The query without its comment lines (which name fields and values too).
ALERT_QUERY = "\n".join(line for line in (INFRA / "app" / "outcome-alert.kql").read_text().splitlines()
                        if not line.lstrip().startswith("//"))


def test_alert_query_uses_only_logged_dimensions() -> None:
    """Every customDimensions name in the alert query is one importer.adapters.sinks.telemetry logs (platform_guard_<field>)."""
    used = set(re.findall(r"customDimensions\.(\w+)", ALERT_QUERY))
    used |= set(re.findall(r"customDimensions\[\s*['\"](\w+)['\"]\s*\]", ALERT_QUERY))
    assert used and used <= set(DIMENSIONS), f"not logged by the code: {used - set(DIMENSIONS)}"


def test_alert_query_columns_are_named_after_their_dimension() -> None:
    """Each `name = tostring(customDimensions.X)` column reads the dimension of the outcome field it is named after."""
    columns = re.findall(r"(\w+)\s*=\s*tostring\(customDimensions\.(\w+)\)", ALERT_QUERY)
    assert len(columns) >= 3
    for column, dimension in columns:
        assert dimension == DIMENSION_PREFIX + column


def test_alert_query_fires_exactly_for_alerting_outcomes() -> None:
    """The query matches the results for which Outcome.alerts is true, plus the loop-guard stop, and nothing else."""
    (listed,) = re.findall(r"result in \(([^)]*)\)", ALERT_QUERY)
    query_results = set(re.findall(r'"(\w+)"', listed))
    alerting = {result for result in RESULTS if Outcome(event_id="e", received_at="t", result=result).alerts}
    assert query_results == alerting
    (alert_kind,) = re.findall(r'alert == "(\w+)"', ALERT_QUERY.split("| project")[0])
    assert Outcome(event_id="e", received_at="t", result="alerted", alert=alert_kind).alerts


def alert_rule() -> Resource:
    (rule,) = resources_of_type("Microsoft.Insights/scheduledQueryRules")
    return rule


def test_alert_rule_runs_the_query_on_application_insights() -> None:
    """The scheduled query rule loads outcome-alert.kql, runs on the App Insights component and notifies the group."""
    rule = alert_rule()
    assert rule.api_version >= "2021-08-01" and rule.config["kind"] == "LogAlert"
    properties = rule.config["properties"]
    (criterion,) = properties["criteria"]["allOf"]
    assert render(criterion["query"]) == "load_text_content(outcome-alert.kql)"
    assert (criterion["timeAggregation"], criterion["operator"], criterion["threshold"]) == ("Count", "GreaterThan", 0)
    assert [render(scope) for scope in properties["scopes"]] == ["applicationInsightsId"]
    assert [render(group) for group in properties["actions"]["actionGroups"]] == ["actionGroup.id"]
    assert render(module("alerts")["params"]["applicationInsightsId"]) == "monitoring.outputs.applicationInsightsId"


def test_alert_dimensions_are_query_columns() -> None:
    """The rule splits by columns the query projects (an unknown column would make the rule fail to save)."""
    projected = set(re.findall(r"^\s+(\w+)\s*=", ALERT_QUERY.split("| project", 1)[1], flags=re.MULTILINE))
    (criterion,) = alert_rule().config["properties"]["criteria"]["allOf"]
    assert {dimension["name"] for dimension in criterion["dimensions"]} <= projected


def iso_minutes(duration: str) -> int:
    """Minutes of an ISO 8601 duration of the form PT<n>M or PT<n>H."""
    match = re.fullmatch(r"PT(\d+)([MH])", duration)
    assert match, duration
    return int(match[1]) * (60 if match[2] == "H" else 1)


def alert_timing() -> tuple[int, int, int]:
    """The rule's evaluation frequency and window (minutes, from alerts.bicep) and the query's ingestion look-back."""
    properties = alert_rule().config["properties"]
    frequency = iso_minutes(variable("app/alerts.bicep", render(properties["evaluationFrequency"])))
    window = iso_minutes(variable("app/alerts.bicep", render(properties["windowSize"])))
    (ingested,) = re.findall(r"ingestion_time\(\)\s*>\s*ago\((\d+)m\)", ALERT_QUERY)
    return frequency, window, int(ingested)


def test_alert_window_outlasts_ingestion_delay_and_counts_each_trace_once() -> None:
    """The window is the frequency plus 10 minutes of tolerated ingestion delay, and the query keeps only traces
    ingested since the previous run (`ingestion_time() > ago(frequency)`): the Sentinel ingestion-delay pattern. The
    rows are deduplicated by event id after the projection, keeping the columns the rule splits by (issue 14, item 16).
    """
    frequency, window, ingested = alert_timing()
    assert frequency == 5 and ingested == frequency
    assert window >= frequency + 10
    assert re.search(r"\|\s*summarize\s+arg_max\(timestamp,\s*\*\)\s+by\s+event_id\s*$", ALERT_QUERY.strip())


def alerts_per_trace(frequency: int, window: int, ingested: int | None, delay_seconds: int, offset: int) -> int:
    """How many evaluations of a rule (every `frequency` minutes, over `window` minutes of timestamps, optionally
    keeping only traces ingested in the last `ingested` minutes) count a trace stamped `offset` seconds after a run and
    queryable `delay_seconds` later. A model of the scheduled query rule's time filter, not of Azure."""
    stamped = 3600 + offset
    arrived = stamped + delay_seconds
    count = 0
    for run in range(0, 3 * 3600, frequency * 60):
        in_window = run - window * 60 < stamped <= run
        visible = arrived <= run
        fresh = ingested is None or arrived > run - ingested * 60
        count += in_window and visible and fresh
    return count


@pytest.mark.parametrize("delay_seconds", [0, 30, 150, 299, 300, 420, 599])
@pytest.mark.parametrize("offset", [1, 60, 299])
def test_alert_timing_alerts_each_late_trace_exactly_once(delay_seconds: int, offset: int) -> None:
    """Traces arriving up to 10 minutes late are alerted once; the former shape (window = frequency, no ingestion
    filter) loses a trace that arrives after the run whose window holds its timestamp."""
    frequency, window, ingested = alert_timing()
    assert alerts_per_trace(frequency, window, ingested, delay_seconds, offset) == 1
    lost_before = alerts_per_trace(frequency, frequency, None, delay_seconds, offset) == 0
    assert lost_before == (delay_seconds + offset > frequency * 60)


def test_alert_email_reaches_the_action_group() -> None:
    """The alert e-mail parameter of main.bicep is the action group's e-mail receiver."""
    (group,) = resources_of_type("Microsoft.Insights/actionGroups")
    (receiver,) = group.config["properties"]["emailReceivers"]
    assert render(receiver["emailAddress"]) == "alertEmail"
    assert render(module("alerts")["params"]["alertEmail"]) == "alertEmail"
    assert parameter("main.bicep", "alertEmail")["default"] is None


# --- azd conventions -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("relative", TEMPLATES, ids=TEMPLATES)
def test_every_parameter_has_a_description(relative: str) -> None:
    """Every parameter of every template carries @description."""
    for name, declared in template(relative).get("parameters", {}).items():
        assert any(decorator["type"] == "description" for decorator in declared["decorators"]), f"{relative}: {name}"


def test_main_outputs_are_azure_prefixed() -> None:
    """main.bicep's outputs (azd environment values) are all AZURE_*."""
    outputs = template("main.bicep")["outputs"]
    assert outputs and all(name.startswith("AZURE_") for name in outputs)


UNTAGGED_TYPES = {"Microsoft.Authorization/roleAssignments", "Microsoft.Authorization/roleDefinitions"}


@pytest.mark.parametrize("relative", TEMPLATES, ids=TEMPLATES)
def test_every_resource_is_tagged(relative: str) -> None:
    """Every top-level resource a template creates takes the tags (azd-env-name); child and RBAC resources cannot."""
    for resource in resources(relative).values():
        if resource.existing or resource.type in UNTAGGED_TYPES or "parent" in resource.config:
            continue
        assert "tags" in resource.config, f"{relative}: {resource.symbol} has no tags"
        assert render(resource.config["tags"]).startswith(("tags", "union(tags")), f"{relative}: {resource.symbol}"


def test_tags_carry_the_azd_environment_and_reach_every_module() -> None:
    """The tags are {azd-env-name: environmentName} and every module that takes tags gets them."""
    assert render(variable("main.bicep", "tags")) == "{azd-env-name: environmentName}"
    for name in template("main.bicep")["modules"]:
        params = module(name)["params"]
        assert render(params.get("tags", "tags")) == "tags", name


TOKEN_NAMED = [
    ("identities", "functionIdentityName"), ("identities", "eventGridIdentityName"),
    ("monitoring", "logAnalyticsName"), ("monitoring", "applicationInsightsName"),
    ("hostStorage", "name"), ("dataStorage", "name"), ("outcomesTopic", "name"), ("keyVault", "name"),
    ("functionApp", "planName"), ("functionApp", "name"), ("alerts", "actionGroupName"), ("alerts", "alertRuleName"),
    ("registry", "systemTopicName"),
]


def test_resource_token_is_unique_per_subscription_environment_and_region() -> None:
    """The names' token is uniqueString(subscription, environment, location), lower-cased for storage and vaults."""
    assert render(variable("main.bicep", "resourceToken")) == (
        "to_lower(unique_string(subscription().id, environmentName, location))")


@pytest.mark.parametrize(("module_name", "param"), TOKEN_NAMED, ids=[f"{row[0]}.{row[1]}" for row in TOKEN_NAMED])
def test_names_derive_from_the_unique_token(module_name: str, param: str) -> None:
    """Every new resource's name carries the unique token, so environments and subscriptions never collide."""
    assert "${resourceToken}" in render(module(module_name)["params"][param])


def test_parameters_file_covers_main() -> None:
    """main.parameters.json sets only parameters main.bicep has, and every one that has no default."""
    given = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    declared = template("main.bicep")["parameters"]
    assert set(given) <= set(declared)
    required = {name for name, value in declared.items() if value["default"] is None}
    assert required <= set(given)


def test_azure_yaml_deploys_the_function_and_runs_the_hooks() -> None:
    """azure.yaml deploys this folder as a Python function to the app tagged with its service name, with its three
    hooks (postprovision joined postdeploy and predown for issue 14, item 15), each for POSIX and Windows."""
    project = yaml.safe_load((ROOT / "azure.yaml").read_text())
    ((service_name, service),) = project["services"].items()
    assert (service["host"], service["language"], service["project"]) == ("function", "python", ".")
    (site,) = resources_of_type("Microsoft.Web/sites")
    assert render(site.config["tags"]) == f"union(tags, {{azd-service-name: {service_name}}})"
    assert set(project["hooks"]) == {"postprovision", "postdeploy", "predown"}
    for hook in project["hooks"].values():
        for platform in ("posix", "windows"):
            assert (ROOT / hook[platform]["run"]).is_file(), hook[platform]["run"]


AZD_BUILT_INS = {"AZURE_ENV_NAME", "AZURE_SUBSCRIPTION_ID"}
HOOKS = [
    ("infra/hooks/postdeploy.sh", r'(\w+)="\$(\w+)"'),
    ("infra/hooks/postdeploy.ps1", r"(\w+)=\$env:(\w+)"),
]


@pytest.mark.parametrize(("hook", "pattern"), HOOKS, ids=["posix", "windows"])
def test_postdeploy_hook_matches_the_subscription_template(hook: str, pattern: str) -> None:
    """The hook deploys event-subscription.bicep with all its required parameters, each from an azd output."""
    text = (ROOT / hook).read_text()
    assert "event-subscription.bicep" in text
    passed = dict(re.findall(pattern, text))
    declared = template("event-subscription.bicep")["parameters"]
    assert set(passed) <= set(declared)
    assert {name for name, value in declared.items() if value["default"] is None} <= set(passed)
    outputs = set(template("main.bicep")["outputs"]) | AZD_BUILT_INS
    used = set(re.findall(r"\$(?:env:|\{)?(AZURE_\w+)", text))
    assert used <= outputs, f"not azd outputs: {used - outputs}"
    assert (passed["queueStorageAccountId"], passed["queueName"]) == (
        "AZURE_EVENT_QUEUE_STORAGE_ACCOUNT_ID", "AZURE_EVENT_QUEUE_NAME")


POSTPROVISION_HOOKS = ["infra/hooks/postprovision.sh", "infra/hooks/postprovision.ps1"]
# Inputs of main.parameters.json a hook may read besides main.bicep's outputs.
HOOK_INPUTS = {"AZURE_KEY_VAULT_RECOVER"}


@pytest.mark.parametrize("hook", POSTPROVISION_HOOKS, ids=["posix", "windows"])
def test_postprovision_hook_syncs_triggers_and_resets_the_vault_recovery(hook: str) -> None:
    """After every provision the hook syncs the app's triggers with the ARM syncfunctiontriggers call (a sweep enabled
    by `azd provision` alone reaches a scaled-to-zero app), and turns the one-shot Key Vault recovery off again; it
    reads only azd outputs and built-ins (issue 14, items 11 and 15)."""
    project = yaml.safe_load((ROOT / "azure.yaml").read_text())
    platform = "posix" if hook.endswith(".sh") else "windows"
    assert project["hooks"]["postprovision"][platform]["run"] == hook
    text = (ROOT / hook).read_text()
    assert re.search(r"az rest --method post --url \S*AZURE_FUNCTION_APP_ID\S*/syncfunctiontriggers\?api-version=",
                     text.replace('"', "").replace("$(", "").replace(")", "")) or (
        "syncfunctiontriggers?api-version=" in text and "az rest --method post --url" in text)
    assert "AZURE_FUNCTION_APP_ID" in text
    assert "azd env set AZURE_KEY_VAULT_RECOVER false" in text
    used = set(re.findall(r"\$(?:env:|\{|\(\$env:)?(AZURE_\w+)", text))
    known = set(template("main.bicep")["outputs"]) | AZD_BUILT_INS | HOOK_INPUTS
    assert used and used <= known, f"not azd outputs: {used - known}"
    assert "AZURE_KEY_VAULT_RECOVER" in (INFRA / "main.parameters.json").read_text()


def fake_tool(directory: Path, name: str, exit_code: int) -> Path:
    """A stand-in for az or azd that records its arguments, one call per line, and exits with exit_code."""
    log = directory / f"{name}.log"
    script = directory / name
    script.write_text(f'#!/bin/sh\necho "$*" >> "{log}"\nexit {exit_code}\n')
    script.chmod(0o755)
    return log


@pytest.mark.parametrize(("az_exit", "recover"), [(0, "false"), (0, "true"), (1, "false")],
                         ids=["synced", "after-recovery", "sync-refused"])
def test_postprovision_hook_runs(tmp_path: Path, az_exit: int, recover: str) -> None:
    """Run with stand-ins for az and azd: the sync is posted to the app's resource id, a refused sync (no code yet)
    is retried and then only warned about, and a recovery turns AZURE_KEY_VAULT_RECOVER off."""
    az_log, azd_log = fake_tool(tmp_path, "az", az_exit), fake_tool(tmp_path, "azd", 0)
    app_id = "/subscriptions/s/resourceGroups/rg-guard/providers/Microsoft.Web/sites/func-abc"
    result = subprocess.run(
        ["sh", str(INFRA / "hooks" / "postprovision.sh")], capture_output=True, text=True, timeout=30,
        env={"PATH": f"{tmp_path}:/usr/bin:/bin", "AZURE_FUNCTION_APP_ID": app_id,
             "AZURE_FUNCTION_APP_NAME": "func-abc", "AZURE_KEY_VAULT_RECOVER": recover, "HOOK_RETRY_SECONDS": "0"})
    assert result.returncode == 0, result.stderr
    calls = az_log.read_text().splitlines()
    assert calls[0] == f"rest --method post --url {app_id}/syncfunctiontriggers?api-version=2024-04-01 --output none"
    assert len(calls) == (3 if az_exit else 1)
    assert ("warning" in result.stderr) == bool(az_exit)
    assert (azd_log.read_text() if azd_log.exists() else "") == (
        "env set AZURE_KEY_VAULT_RECOVER false\n" if recover == "true" else "")


def test_postprovision_hook_needs_the_provision_outputs() -> None:
    """Run before any provision (no outputs in the environment), the hook fails and says so."""
    result = subprocess.run(["sh", str(INFRA / "hooks" / "postprovision.sh")], capture_output=True, text=True,
                            timeout=10, env={"PATH": "/usr/bin:/bin"})
    assert result.returncode != 0 and "azd provision" in result.stderr


def test_azd_environment_folder_is_git_ignored() -> None:
    """`.azure/` (azd's environments: subscription, ids, a base64 policy) is never committed (issue 14, item 17)."""
    patterns = pathspec.PathSpec.from_lines("gitignore", (ROOT / ".gitignore").read_text().splitlines())
    for path in (".azure/guard-prod/.env", ".azure/config.json", ".azure/guard-prod/config.json"):
        assert patterns.match_file(path), path
    listed = subprocess.run(["git", "check-ignore", "-q", "--no-index", ".azure/guard-prod/.env"], cwd=ROOT,
                            timeout=10, check=False)
    assert listed.returncode == 0


@pytest.mark.parametrize("hook", ["postdeploy.sh", "postprovision.sh", "predown.sh"])
def test_posix_hook_is_valid_shell(hook: str) -> None:
    """The POSIX hooks parse as shell scripts."""
    subprocess.run(["sh", "-n", str(INFRA / "hooks" / hook)], check=True, timeout=10)


def test_predown_hook_refuses() -> None:
    """The predown hook fails, so `azd down` cannot delete the registry's resource group."""
    result = subprocess.run(["sh", str(INFRA / "hooks" / "predown.sh")], capture_output=True, text=True, timeout=10,
                            env={"AZURE_REGISTRY_RESOURCE_GROUP": "rg-registry", "PATH": "/usr/bin:/bin"})
    assert result.returncode != 0 and "rg-registry" in result.stderr


def test_deploy_guide_names_only_real_environment_values() -> None:
    """Every AZURE_* value docs/deploy.md uses is a main.bicep output, a parameters-file input or set by azd itself."""
    parameters_text = (INFRA / "main.parameters.json").read_text()
    known = set(template("main.bicep")["outputs"]) | AZD_BUILT_INS | {"AZURE_LOCATION", "AZURE_PRINCIPAL_ID"}
    known |= set(re.findall(r"\$\{(AZURE_\w+?)(?:=[^}]*)?\}", parameters_text))
    used = set(re.findall(r"\b(AZURE_[A-Z_]+)\b", (ROOT / "docs" / "deploy.md").read_text()))
    assert used and used <= known, f"unknown: {used - known}"
