"""Registry credentials from the docker config, found the way docker, skopeo, crane and regctl find them.

    store = DockerCredentialStore.from_environment(os.environ)  # $DOCKER_CONFIG/config.json, else ~/.docker/config.json
    credentials = store.lookup("myreg.example.com")              # Credentials | IdentityToken | None

The composition root asks here only when the settings hold no `PLATFORM_GUARD_REGISTRY_<KEY>_USERNAME/_PASSWORD`
for the host, and only when the registry challenges (an anonymous registry never costs a helper process).

Where the answer comes from, as docker decides it:
1. A credential helper when one is configured for the host: `credHelpers[<key>]`, else `credsStore` (the default
   helper). `docker-credential-<name> get` runs with the server URL on stdin and answers
   `{"ServerURL": …, "Username": …, "Secret": …}` on stdout; an answer of "credentials not found" (exit status not
   0) means anonymous. A `Username` of `<token>` means `Secret` is an identity (refresh) token. The helper's
   answer is final, as in docker: `auths` is not consulted for a host that has a helper.
2. Otherwise `auths[<key>]`: `auth` (base64 of `user:password`), or `username` and `password`, and
   `identitytoken` (an identity token, which wins over the password, as in docker).

Keys: Docker Hub (`docker.io`, `index.docker.io`, `registry-1.docker.io`) is `https://index.docker.io/v1/`; any key
is also matched by its host, so `https://myreg:5000/v1/`, `http://myreg:5000` and `myreg:5000` all name
`myreg:5000` (an exact key wins). Hosts compare case-insensitively.

Failures are errors, never a silent fall back to anonymous (docker stops a pull the same way): a helper that is not
on PATH, exits with another error, runs past HELPER_TIMEOUT_SECONDS, writes more than HELPER_OUTPUT_LIMIT bytes or
answers something unreadable raises CredentialHelperError naming the helper and the host; a config.json that is
not readable JSON of the documented shape raises DockerConfigError naming the file and the key. Both are
Unauthorized (a RegistryError), so callers report them as they report a refused login. The helper runs without a
shell, in its own process group (killed whole at the deadline), with this process's environment.

Each host is looked up once per store (answers and failures are kept), so a helper runs at most once per host.
Secrets never appear in a message, a log line or a repr; a helper's failing output is quoted only in part, escaped.
"""

from __future__ import annotations

import base64
import binascii
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from importer.adapters.registry.auth import IdentityToken
from importer.core.bounded_json import loads_object
from importer.core.excerpts import excerpt, excerpt_text
from importer.core.reference import DOCKER_HUB_ALIASES
from importer.ports.registry import Credentials, Unauthorized

__all__ = [
    "CONFIG_FILE",
    "HELPER_OUTPUT_LIMIT",
    "HELPER_TIMEOUT_SECONDS",
    "CredentialHelperError",
    "DockerConfigError",
    "DockerCredentialStore",
    "docker_config_path",
]

CONFIG_FILE = "config.json"
DOCKER_HUB_KEY = "https://index.docker.io/v1/"
HELPER_PREFIX = "docker-credential-"
HELPER_TIMEOUT_SECONDS = 30.0  # a keychain may ask the user to unlock it; no registry request waits longer
HELPER_OUTPUT_LIMIT = 64 * 1024
FAILURE_RETRY_SECONDS = 30.0  # how long a failed lookup stands before the helper is asked again
MAX_CONFIG_BYTES = 4 * 1024 * 1024
_REAP_SECONDS = 2.0
_NOT_FOUND = "credentials not found"
_TOKEN_USERNAME = "<token>"


class DockerConfigError(Unauthorized):
    """The docker config file cannot be used: unreadable, not JSON, or a key of the wrong shape."""


class CredentialHelperError(Unauthorized):
    """A credential helper is missing, failed, ran out of time or answered something unreadable."""


def docker_config_path(environ: Mapping[str, str]) -> Path:
    """`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json` (HOME from `environ`, else the user's home)."""
    directory = environ.get("DOCKER_CONFIG")
    if directory:
        return Path(directory) / CONFIG_FILE
    home = environ.get("HOME")
    return (Path(home) if home else Path.home()) / ".docker" / CONFIG_FILE


def _hostname(key: str) -> str:
    """A config key as a host: scheme and path dropped, lower-cased (`https://MyReg:5000/v1/` → `myreg:5000`)."""
    for scheme in ("https://", "http://"):
        if key[: len(scheme)].lower() == scheme:
            key = key[len(scheme) :]
            break
    return key.split("/", 1)[0].lower()


def _server_key(host: str) -> str:
    """The key docker writes for a registry host, and the server URL it hands a helper."""
    return DOCKER_HUB_KEY if host.lower() in DOCKER_HUB_ALIASES else host.lower()


def _matches(key: str, host: str) -> bool:
    wanted = host.lower()
    found = _hostname(key)
    if wanted in DOCKER_HUB_ALIASES:
        return found in DOCKER_HUB_ALIASES
    return found == wanted


def _find(entries: Mapping[str, Any], host: str) -> tuple[str, Any] | None:
    """The entry for `host`: its exact key first, then the first key naming the same host."""
    exact = _server_key(host)
    if exact in entries:
        return exact, entries[exact]
    for key, value in entries.items():
        if _matches(key, host):
            return key, value
    return None


@dataclass(frozen=True, slots=True)
class _DockerConfig:
    path: Path
    auths: Mapping[str, Any]
    helpers: Mapping[str, str]
    store: str | None


@dataclass(frozen=True, slots=True)
class _Failure:
    """A failed lookup as kept: what to raise again (not the exception itself, whose traceback holds the frames that
    read the helper's answer) and until when (time.monotonic)."""

    kind: type[Unauthorized]
    message: str
    until: float


class DockerCredentialStore:
    """The docker config's credentials for any host; the file is read on first use, each host looked up once."""

    def __init__(self, path: Path, *, environ: Mapping[str, str] | None = None,
                 helper_timeout: float = HELPER_TIMEOUT_SECONDS, output_limit: int = HELPER_OUTPUT_LIMIT,
                 failure_retry: float = FAILURE_RETRY_SECONDS) -> None:
        self.path = path
        self._environ = dict(environ) if environ is not None else None
        self._helper_timeout = helper_timeout
        self._output_limit = output_limit
        self._lock = threading.Lock()
        self._config: _DockerConfig | None = None
        self._answers: dict[str, Credentials | None] = {}
        self._failures: dict[str, _Failure] = {}  # kept `failure_retry` seconds, so that a long-running host heals
        self._host_locks: dict[str, threading.Lock] = {}
        self._failure_retry = failure_retry

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> DockerCredentialStore:
        """The store of `$DOCKER_CONFIG` (else `~/.docker`), running helpers found on `environ`'s PATH."""
        return cls(docker_config_path(environ), environ=environ)

    def __repr__(self) -> str:
        return f"DockerCredentialStore({str(self.path)!r})"

    def lookup(self, host: str) -> Credentials | None:
        """The credentials for `host`, or None (anonymous); DockerConfigError or CredentialHelperError when they cannot
        be had. An answer is kept: a second lookup of the host runs nothing. A failure is kept for `failure_retry`
        seconds (a burst of requests runs no helper again), then asked again (a long-running `serve` heals)."""
        host = host.lower()
        with self._lock:
            host_lock = self._host_locks.setdefault(host, threading.Lock())
        with host_lock:
            if host in self._answers:
                return self._answers[host]
            failure = self._failures.get(host)
            if failure is None or time.monotonic() >= failure.until:
                try:
                    answer = self._resolve(host)
                except Unauthorized as error:
                    failure = self._failures[host] = _Failure(type(error), str(error),
                                                              time.monotonic() + self._failure_retry)
                else:
                    self._failures.pop(host, None)
                    self._answers[host] = answer
                    return answer
        raise failure.kind(failure.message)  # a fresh exception each time: one object raised in many threads tangles

    def _resolve(self, host: str) -> Credentials | None:
        config = self._load()
        if config is None:
            return None
        helper = _find(config.helpers, host)
        if helper is not None and helper[1]:
            return self._ask_helper(helper[1], host, f"credHelpers[{helper[0]!r}]")
        if config.store:
            return self._ask_helper(config.store, host, "credsStore")
        entry = _find(config.auths, host)
        if entry is None:
            return None
        return _auth_entry(entry[1], f"{config.path}: auths[{entry[0]!r}]")

    def _load(self) -> _DockerConfig | None:
        with self._lock:
            if self._config is None:
                self._config = _read_config(self.path)
            return self._config if self._config.auths or self._config.helpers or self._config.store else None

    def _ask_helper(self, name: str, host: str, where: str) -> Credentials | None:
        program = HELPER_PREFIX + name
        about = f"credential helper {program} ({where} in {self.path}) for {host}"
        if not name or "/" in name or "\\" in name or name in (".", ".."):
            raise DockerConfigError(f"{self.path}: {where}: {excerpt(name)} is not a credential helper name")
        path = (self._environ or os.environ).get("PATH")
        executable = shutil.which(program, path=path)
        if executable is None:
            raise CredentialHelperError(f"{about}: {program} is not installed (not found on PATH)")
        status, stdout, stderr, problem = _run(
            executable, _server_key(host), timeout=self._helper_timeout, limit=self._output_limit, environ=self._environ
        )
        if problem is not None:
            raise CredentialHelperError(f"{about}: {problem}")
        if status != 0:
            said = stdout.decode("utf-8", "replace").strip()
            if said.lower().startswith(_NOT_FOUND):
                return None
            detail = said or stderr.decode("utf-8", "replace").strip()
            first_line = detail.splitlines()[0] if detail else "no message"
            raise CredentialHelperError(f"{about}: failed with exit status {status}: {excerpt_text(first_line)}")
        return _helper_answer(stdout, about)


def _read_config(path: Path) -> _DockerConfig:
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        return _DockerConfig(path, {}, {}, None)
    except OSError as error:
        raise DockerConfigError(f"{path}: cannot be read: {error.strerror or error}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise DockerConfigError(f"{path}: larger than {MAX_CONFIG_BYTES} bytes")
    if not raw.strip():
        return _DockerConfig(path, {}, {}, None)  # docker treats an empty file as no configuration
    try:
        document = loads_object(raw, str(path))
    except ValueError as error:
        raise DockerConfigError(str(error)) from None
    auths = document.get("auths", {})
    if auths is None:
        auths = {}
    if not isinstance(auths, dict) or not all(isinstance(entry, dict) for entry in auths.values()):
        raise DockerConfigError(f"{path}: 'auths' must be an object of objects (one per registry)")
    helpers = document.get("credHelpers", {})
    if helpers is None:
        helpers = {}
    if not isinstance(helpers, dict) or not all(isinstance(name, str) for name in helpers.values()):
        raise DockerConfigError(f"{path}: 'credHelpers' must be an object of helper names (strings)")
    store = document.get("credsStore")
    if store is not None and not isinstance(store, str):
        raise DockerConfigError(f"{path}: 'credsStore' must be a helper name (a string)")
    return _DockerConfig(path, auths, helpers, store or None)


def _auth_entry(entry: Mapping[str, Any], where: str) -> Credentials | None:
    for key in ("auth", "username", "password", "identitytoken"):
        if entry.get(key) is not None and not isinstance(entry.get(key), str):
            raise DockerConfigError(f"{where}.{key} must be a string")
    username, password = entry.get("username") or "", entry.get("password") or ""
    encoded = entry.get("auth") or ""
    if encoded:
        try:
            pair = base64.b64decode(encoded, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise DockerConfigError(f"{where}.auth is not base64 of 'user:password'") from None
        username, colon, password = pair.partition(":")
        if not colon:
            raise DockerConfigError(f"{where}.auth does not decode to 'user:password' (no ':')")
    token = entry.get("identitytoken") or ""
    if token:
        return IdentityToken(username or _TOKEN_USERNAME, token)
    if username and password:
        return Credentials(username, password)
    if username or password:
        raise DockerConfigError(f"{where}: has a {'username' if username else 'password'} but no "
                                f"{'password' if username else 'username'}")
    return None


def _helper_answer(stdout: bytes, about: str) -> Credentials | None:
    try:
        document = loads_object(stdout, "its answer")
    except ValueError as error:
        raise CredentialHelperError(f"{about}: {error}") from None
    username, secret = document.get("Username", ""), document.get("Secret", "")
    if not isinstance(username, str) or not isinstance(secret, str):
        raise CredentialHelperError(f"{about}: its answer's 'Username' and 'Secret' must be strings")
    if not secret:
        return None
    if username == _TOKEN_USERNAME:
        return IdentityToken(_TOKEN_USERNAME, secret)
    if not username:
        raise CredentialHelperError(f"{about}: its answer has a 'Secret' but no 'Username'")
    return Credentials(username, secret)


def _run(
    executable: str, server_url: str, *, timeout: float, limit: int, environ: Mapping[str, str] | None
) -> tuple[int | None, bytes, bytes, str | None]:
    """Run `executable get` with `server_url` on stdin: (exit status, stdout, stderr, problem). `problem` says why the
    answer cannot be used: it did not start, ran past `timeout` seconds or wrote more than `limit` bytes (then its
    whole process group is killed)."""
    try:
        process = subprocess.Popen(
            [executable, "get"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=dict(environ) if environ is not None else None, start_new_session=True,
        )
    except OSError as error:
        return None, b"", b"", f"cannot be started: {error.strerror or error}"
    assert process.stdin is not None and process.stdout is not None and process.stderr is not None
    read: dict[str, bytes] = {}
    finished = threading.Semaphore(0)

    def drain(name: str, stream: IO[bytes]) -> None:
        try:
            read[name] = stream.read(limit + 1)
        finally:
            finished.release()

    readers = [threading.Thread(target=drain, args=(name, stream), daemon=True, name=f"helper-{name}")
               for name, stream in (("out", process.stdout), ("err", process.stderr))]
    for reader in readers:
        reader.start()
    try:
        process.stdin.write(server_url.encode())
        process.stdin.close()
    except OSError:
        pass  # it exited without reading: its status and output say why
    deadline = time.monotonic() + timeout
    problem = None
    for _ in readers:  # each stream ends (the helper exited or closed it) or overflows, or time runs out
        if not finished.acquire(timeout=max(0.0, deadline - time.monotonic())):
            problem = f"gave no answer within {timeout:g} s (stopped)"
            break
        if any(len(chunk) > limit for chunk in read.values()):
            problem = f"wrote more than {limit} bytes (stopped)"
            break
    try:
        status = process.wait(max(0.0, deadline - time.monotonic())) if problem is None else None
    except subprocess.TimeoutExpired:
        problem, status = f"did not exit within {timeout:g} s (stopped)", None
    if status is None:
        _kill_group(process)
    for reader in readers:
        reader.join(_REAP_SECONDS)
    for stream in (process.stdout, process.stderr):
        stream.close()
    return status, read.get("out", b""), read.get("err", b""), problem


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    try:
        if hasattr(os, "killpg"):
            os.killpg(process.pid, signal.SIGKILL)
        else:
            process.kill()
    except (ProcessLookupError, PermissionError):
        pass
    try:
        process.wait(_REAP_SECONDS)
    except subprocess.TimeoutExpired:
        pass
