"""Which registries are guarded, and one shared client per registry host.

    directory = RegistryDirectory(settings, factory=make_client)   # the composition root supplies the factory
    host = directory.guarded_host(event.origin)   # None: not ours, the event is rejected
    registry = directory.client(host)             # reused across events (connection pools, token cache)

An event's origin is only ever matched against configured hosts: the host Platform Guard connects to
comes from settings, never from an event body.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from importer.app.settings import Settings
from importer.ports.registry import Credentials, Registry

ACR_SUFFIX = ".azurecr.io"
_ACR_PROVIDER = "/providers/microsoft.containerregistry/registries/"


class RegistryDirectory:
    """Maps event origins onto configured registries and keeps one client per host."""

    def __init__(self, settings: Settings, *, factory: Callable[[str], Registry]) -> None:
        self._settings = settings
        self._factory = factory
        self._clients: dict[str, Registry] = {}
        self._lock = threading.Lock()

    def credentials_for(self, host: str) -> Credentials | None:
        """The username/password settings for `host` (upstreams that ACR import must log in to)."""
        return self._settings.credentials_for(host)

    def guarded_host(self, origin: str) -> str | None:
        """The configured registry an event origin (host, or ACR resource id) stands for, or None.

        The guarded ACR's resource id (an Event Grid topic) stands for its login server (PLATFORM_GUARD_ACR_LOGIN_SERVER
        or `<name>.azurecr.io`); another ACR's for `<name>.azurecr.io` when that host is configured."""
        origin = origin.strip().lower()
        if origin in self._settings.registries:
            return origin
        acr_id, acr_host = (self._settings.acr_resource_id or "").strip().lower(), self._settings.acr_login_server
        if acr_id and acr_host in self._settings.registries and origin.rstrip("/") == acr_id.rstrip("/"):
            return acr_host
        position = origin.find(_ACR_PROVIDER)
        if origin.startswith("/subscriptions/") and position != -1:
            name = origin[position + len(_ACR_PROVIDER) :].strip("/")
            for host in self._settings.registries:
                if host == f"{name}{ACR_SUFFIX}":
                    return host
        return None

    def client(self, host: str) -> Registry:
        """The shared client for `host` (created on first use)."""
        host = host.lower()
        with self._lock:
            client = self._clients.get(host)
            if client is None:
                client = self._clients[host] = self._factory(host)
            return client
