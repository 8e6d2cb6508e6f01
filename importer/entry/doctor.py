"""`platform-guard doctor`: the post-deploy smoke check (importer/app/doctor.py) wired from the app's own
settings and identity, and its report: a table for people, `--json` for machines.

    platform-guard doctor                     # exit 0 all ok, 1 something missing, 2 settings, 3 unreachable
    platform-guard doctor --json              # {"exit_code", "counts", "checks": [{check, target, result, …}]}

Settings come from the environment, as the Functions app reads them (`local.settings.sample.json` names them); the
clients are the ones the composition root makes for the app (importer/entry/composition.py), so the checks use the
same adapters, credentials and identity. A policy that does not parse is reported in the table (exit 2) and the rest
is checked with the default policy; any other settings error stops at once (exit 2). Text from outside (registries,
storage, ARM) is sanitised for the terminal; connection strings, keys, tokens, passwords and webhook URL paths are
never printed.
"""

from __future__ import annotations

import errno
import json
import sqlite3
import sys
from collections.abc import Mapping
from typing import Any

from importer.app.doctor import (
    EXIT_SETTINGS,
    MISSING,
    NOT_CHECKED,
    Diagnosis,
    Doctor,
    DoctorServices,
)
from importer.app.registries import ACR_SUFFIX
from importer.app.settings import Settings, SettingsError, load_settings
from importer.core.policy import DEFAULT_POLICY
from importer.core.words import counted
from importer.entry.composition import (
    azure_credential,
    ledger_for,
    queue_for,
    registry_directory_for,
    server_importer_for,
)
from importer.entry.formats.errors import describe_error, error_document
from importer.entry.terminal import Column, sanitise, table

_REFUSED_CODES = frozenset({"AuthorizationPermissionMismatch", "AuthorizationFailure", "AuthorizationFailed",
                            "AuthenticationFailed", "InsufficientAccountPermissions"})


def load_doctor_settings(environ: Mapping[str, str] | None = None) -> tuple[Settings, str | None]:
    """The settings, and the policy's problem when only the policy is wrong (the rest then uses the default policy);
    SettingsError for anything else."""
    try:
        return load_settings(environ), None
    except SettingsError as error:
        problem = str(error)
    return load_settings(environ, policy=DEFAULT_POLICY), problem


def needs_identity(settings: Settings) -> bool:
    """Whether anything configured is reached with the Azure identity (not a key, connection string or password)."""
    acr_by_identity = any(host.endswith(ACR_SUFFIX) and settings.credentials_for(host) is None
                          for host in settings.registries)
    return bool(
        acr_by_identity
        or settings.acr_resource_id
        or (settings.tables_endpoint and not settings.tables_connection_string)
        or (settings.queue_endpoint and not settings.queue_connection_string)
        or (settings.eventgrid_topic_endpoint and not settings.eventgrid_topic_key)
    )


def services_for(settings: Settings, *, timeout: float) -> DoctorServices:
    """The doctor's clients and probes, made as the app makes its own (importer/entry/composition.py)."""
    from importer.adapters.probes import DEFAULT_ARM_ENDPOINT, ArmPermissions, AzureIdentity, HttpProbe

    directory = registry_directory_for(settings)
    importer = server_importer_for(settings)
    arm_endpoint = importer.arm_endpoint if importer is not None else DEFAULT_ARM_ENDPOINT
    identity = permissions = None
    if needs_identity(settings):
        credential = azure_credential(settings)
        identity = AzureIdentity(credential, arm_endpoint=arm_endpoint)
        if importer is not None:
            permissions = ArmPermissions(credential, arm_endpoint=arm_endpoint, timeout=timeout)
    return DoctorServices(
        client=directory.client,
        open_ledger=lambda: ledger_for(settings),
        open_queue=lambda: queue_for(settings),
        http=HttpProbe(timeout=min(timeout, 10.0)),
        identity=identity,
        permissions=permissions,
        registry_ids={importer.login_server: importer.registry_id} if importer is not None else {},
        refused=refused,
        unreachable=unreachable,
    )


def _causes(error: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and len(chain) < 8:
        chain.append(current)
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    return chain


def refused(error: BaseException) -> bool:
    """Backend errors that mean the service (or the file system) refused the identity: HTTP 401/403 from Azure
    Storage, a storage authorisation error code, a SQLite file or folder that cannot be made or written."""
    for cause in _causes(error):
        if getattr(cause, "status_code", None) in (401, 403) or getattr(cause, "error_code", None) in _REFUSED_CODES:
            return True
        if isinstance(cause, (PermissionError, NotADirectoryError, IsADirectoryError, FileExistsError)):
            return True  # the SQLite ledger's or queue's folder cannot be made or written
        if isinstance(cause, OSError) and cause.errno == errno.EROFS:
            return True
        if isinstance(cause, sqlite3.OperationalError) and any(
            text in str(cause).lower() for text in ("readonly", "read-only", "unable to open", "permission")
        ):
            return True
    return False


def unreachable(error: BaseException) -> bool:
    """Backend errors that mean no answer: azure-core's request and response errors, refused connections."""
    for cause in _causes(error):
        if type(cause).__name__ in ("ServiceRequestError", "ServiceResponseError", "ServiceRequestTimeoutError",
                                    "ServiceResponseTimeoutError"):
            return True
        if isinstance(cause, (ConnectionError, TimeoutError)):
            return True
    return False


_COLUMNS = (Column("CHECK"), Column("TARGET"), Column("RESULT"), Column("DETAIL"))


def format_diagnosis(diagnosis: Diagnosis) -> str:
    """The table, then how to grant each missing right (and what to run for what could not be probed), then the
    summary line. Every cell and line is sanitised: details quote registries, ARM and storage."""
    lines = table(_COLUMNS, [(f.check, f.target, f.result, f.detail) for f in diagnosis.findings])
    missing = [f for f in diagnosis.findings if f.fix and f.result == MISSING]
    other = [f for f in diagnosis.findings if f.fix and f.result != MISSING]
    if missing:
        lines += ["", "To grant what is missing (role assignments take a few minutes to apply; then run doctor again):"]
        lines += _fixes(missing)
    if other:
        lines += ["", "Not decided here; if it fails in use:" if all(f.result == NOT_CHECKED for f in other)
                  else "Not decided here, and how to fix it:"]
        lines += _fixes(other)
    counts = ", ".join(f"{count} {result}" for result, count in diagnosis.counts().items())
    lines += ["", f"{counted(len(diagnosis.findings), 'check')}: {counts}; exit {diagnosis.exit_code}"]
    return "\n".join(lines)


def _fixes(findings: list[Any]) -> list[str]:
    lines = []
    for finding in findings:
        lines.append(sanitise(f"  {finding.check}  {finding.target}"))
        lines += [sanitise(f"    {command}") for command in finding.fix]
    return lines


def run_doctor(*, as_json: bool = False, timeout: float = 30.0, environ: Mapping[str, str] | None = None) -> int:
    """Check, print the report, return the exit code."""
    try:
        settings, policy_problem = load_doctor_settings(environ)
    except SettingsError as error:
        if as_json:
            failure = error_document(describe_error(error))  # {"error": {"kind": "usage", …}}, as every --json says it
            print(json.dumps({"exit_code": EXIT_SETTINGS, **failure, "checks": []}, indent=2))
        print(sanitise(f"error: settings: {error}"), file=sys.stderr)
        return EXIT_SETTINGS
    diagnosis = Doctor(settings, services_for(settings, timeout=timeout), policy_problem=policy_problem,
                       timeout=timeout).run()
    print(json.dumps(diagnosis.as_dict(), indent=2) if as_json else format_diagnosis(diagnosis))
    return diagnosis.exit_code
