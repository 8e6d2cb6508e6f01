"""Registry credentials from the docker config (importer.adapters.registry.docker_config), through the CLI as users
run it, against real distribution registries: htpasswd basic auth, and token auth whose token service takes
identity (refresh) tokens (testbed.token_service). Credential helpers are real executables written by
testbed.credential_helper; DOCKER_CONFIG always points into the test's own directory, never at ~/.docker.
"""

from __future__ import annotations

import base64
import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from importer.adapters.registry.auth import IdentityToken
from importer.adapters.registry.docker_config import (
    CredentialHelperError,
    DockerConfigError,
    DockerCredentialStore,
    docker_config_path,
)
from importer.app.settings import credentials_key
from importer.entry.cli import main
from importer.ports.registry import Credentials
from testbed.credential_helper import TOKEN_USERNAME, Behaviour, write_credential_helper
from testbed.images import ImageBuilder, single
from testbed.push import push
from testbed.registry import LocalRegistry
from testbed.token_service import TokenService

USER, PASSWORD = "ci-user", "Pa55word-never-shown"
WRONG = "wrong-Pa55word-never-shown"
REFRESH_TOKEN, WRONG_REFRESH_TOKEN = "refresh-token-never-shown", "unknown-refresh-token-never-shown"
SECRETS = (PASSWORD, WRONG, REFRESH_TOKEN, WRONG_REFRESH_TOKEN)
SOURCE = "team/app:1"


@pytest.fixture(scope="module")
def basic_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    """A registry with htpasswd basic auth (bcrypt, as distribution requires) for USER / PASSWORD."""
    bcrypt = pytest.importorskip("bcrypt", reason="htpasswd needs bcrypt hashes: pip install bcrypt")
    root = tmp_path_factory.mktemp("basic")
    htpasswd = root / "htpasswd"
    htpasswd.write_text(f"{USER}:{bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()}\n")
    with LocalRegistry(root / "registry", htpasswd=htpasswd) as running:
        yield running


@pytest.fixture(scope="module")
def token_setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalRegistry, TokenService]]:
    """A registry with token auth, trusting a token service that knows USER / PASSWORD and REFRESH_TOKEN."""
    root = tmp_path_factory.mktemp("token")
    tokens = TokenService(root / "tokens", users={USER: PASSWORD}, refresh_tokens={REFRESH_TOKEN: USER})
    with tokens, LocalRegistry(root / "registry", token_auth=tokens.registry_settings()) as running:
        yield running, tokens


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    """An open registry holding a linux/amd64 image at team/app:1 (the source of every copy)."""
    root = tmp_path_factory.mktemp("source")
    builder = ImageBuilder(root / "layout")
    with LocalRegistry(root / "registry") as running:
        push(builder, single(builder, "linux/amd64"), running.host, "team/app", "1")
        yield running


@pytest.fixture
def docker_dir(tmp_path: Path, clean_settings: pytest.MonkeyPatch) -> Path:
    """DOCKER_CONFIG in the test's directory, its bin/ first on PATH, and no PLATFORM_GUARD_* settings but the ledger
    in the test's directory (`clean_settings`)."""
    directory = tmp_path / "docker"
    directory.mkdir()
    clean_settings.setenv("DOCKER_CONFIG", str(directory))
    clean_settings.setenv("PATH", f"{directory / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")
    return directory


def basic_auth(username: str, password: str) -> dict[str, str]:
    return {"auth": base64.b64encode(f"{username}:{password}".encode()).decode()}


def write_config(directory: Path, document: dict[str, Any] | str) -> Path:
    path = directory / "config.json"
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    return path


def tags(host: str, repository: str) -> list[str]:
    """The tags of `repository` on the basic-auth registry, read with plain HTTP and the right password."""
    request = urllib.request.Request(f"http://{host}/v2/{repository}/tags/list",
                                     headers={"Authorization": "Basic " + basic_auth(USER, PASSWORD)["auth"]})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return list(json.loads(response.read()).get("tags") or [])
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return []
        raise


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    captured = capsys.readouterr()
    for secret in SECRETS:
        assert secret not in captured.out and secret not in captured.err, "a secret reached the terminal"
    return code, captured.out, captured.err


# --- the docker config gives the CLI its credentials ------------------------------------------------------


def _config_for(case: str, host: str, directory: Path) -> dict[str, Any]:
    """The docker config of each case (helpers are written into `directory/bin`)."""
    if case == "auths-auth":
        return {"auths": {host: basic_auth(USER, PASSWORD)}}
    if case == "auths-username-password":
        return {"auths": {host: {"username": USER, "password": PASSWORD}}}
    if case == "auths-key-with-scheme-and-path":
        return {"auths": {f"http://{host}/v1/": basic_auth(USER, PASSWORD), "other.example:5000": {}}}
    if case == "credHelpers":
        write_credential_helper(directory / "bin", "per-host", {host: (USER, PASSWORD)})
        return {"credHelpers": {host: "per-host"}, "auths": {host: basic_auth(USER, WRONG)}}
    if case == "credsStore":
        write_credential_helper(directory / "bin", "store", {host: (USER, PASSWORD)})
        return {"credsStore": "store", "auths": {host: {}}}
    raise AssertionError(case)


@pytest.mark.parametrize("verb", ["copy", "check"])
@pytest.mark.parametrize(
    "case",
    ["auths-auth", "auths-username-password", "auths-key-with-scheme-and-path", "credHelpers", "credsStore"],
)
def test_the_cli_logs_in_with_the_docker_config(
    capsys: pytest.CaptureFixture[str], basic_registry: LocalRegistry, source: LocalRegistry, docker_dir: Path,
    case: str, verb: str,
) -> None:
    """Each place docker keeps credentials lets `copy` push into, and `check` read from, a registry with basic auth."""
    host = basic_registry.host
    write_config(docker_dir, _config_for(case, host, docker_dir))
    target = f"mirror/{case.lower()}"
    code, _, err = run(capsys, "copy", f"{source.host}/{SOURCE}", f"{host}/{target}:1")
    assert code == 0, err
    assert tags(host, target) == ["1"]
    if verb == "check":
        code, out, err = run(capsys, "check", f"{host}/{target}:1", "--json")
        assert code == 0, err
        assert json.loads(out)["verdict"] == "compliant"


@pytest.mark.parametrize(
    ("settings_password", "docker_password", "code"),
    [
        pytest.param(PASSWORD, WRONG, 0, id="right-settings-win-over-a-wrong-docker-config"),
        pytest.param(WRONG, PASSWORD, 3, id="wrong-settings-win-over-a-right-docker-config"),
    ],
)
def test_settings_win_over_the_docker_config(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, basic_registry: LocalRegistry,
    source: LocalRegistry, docker_dir: Path, settings_password: str, docker_password: str, code: int,
) -> None:
    """PLATFORM_GUARD_REGISTRY_<KEY>_USERNAME/_PASSWORD are used when set, whatever the docker config says."""
    host = basic_registry.host
    write_config(docker_dir, {"auths": {host: basic_auth(USER, docker_password)}})
    monkeypatch.setenv("PLATFORM_GUARD_REGISTRIES", host)
    monkeypatch.setenv(f"PLATFORM_GUARD_REGISTRY_{credentials_key(host)}_USERNAME", USER)
    monkeypatch.setenv(f"PLATFORM_GUARD_REGISTRY_{credentials_key(host)}_PASSWORD", settings_password)
    got, _, err = run(capsys, "copy", f"{source.host}/{SOURCE}", f"{host}/mirror/settings:{code}")
    assert got == code, err
    if code:
        assert f"authentication failed as user '{USER}'" in err


# --- refusals: exit 3 with a message that says why, and nothing written ---------------------------------------


@pytest.mark.parametrize(
    ("config", "helper", "message"),
    [
        pytest.param(None, None, "authentication failed (no credentials configured)", id="no-docker-config"),
        pytest.param({"auths": {}}, None, "authentication failed (no credentials configured)", id="no-entry"),
        pytest.param({"auths": {"HOST": basic_auth(USER, WRONG)}}, None, f"authentication failed as user '{USER}'",
                     id="wrong-password"),
        pytest.param({"credsStore": "empty"}, "answer", "authentication failed (no credentials configured)",
                     id="helper-has-no-credentials-for-the-host"),
        pytest.param({"credHelpers": {"HOST": "missing"}}, None,
                     "credential helper docker-credential-missing (credHelpers['HOST'] in CONFIG) for HOST: "
                     "docker-credential-missing is not installed", id="helper-not-installed"),
        pytest.param({"credsStore": "broken"}, "fail",
                     "credential helper docker-credential-broken (credsStore in CONFIG) for HOST: failed with exit "
                     "status 1: error getting credentials: the keychain is locked", id="helper-fails"),
        pytest.param({"credsStore": "garbage"}, "garbage", "for HOST: its answer is not JSON", id="helper-garbage"),
        pytest.param("{not json", None, "CONFIG is not JSON", id="config-not-json"),
        pytest.param('["a list"]', None, "CONFIG is not a JSON object", id="config-not-an-object"),
        pytest.param({"auths": {"HOST": "dXNlcjpwdw=="}}, None, "CONFIG: 'auths' must be an object of objects",
                     id="auths-entry-not-an-object"),
        pytest.param({"auths": {"HOST": {"auth": "%%%"}}}, None,
                     "CONFIG: auths['HOST'].auth is not base64 of 'user:password'", id="auth-not-base64"),
        pytest.param({"auths": {"HOST": {"auth": base64.b64encode(b"no-colon").decode()}}}, None,
                     "auth does not decode to 'user:password'", id="auth-without-colon"),
        pytest.param({"credsStore": 7}, None, "CONFIG: 'credsStore' must be a helper name", id="credsStore-not-text"),
        pytest.param({"credHelpers": {"HOST": "../../bin/sh"}}, None, "is not a credential helper name",
                     id="helper-name-with-a-path"),
    ],
)
def test_missing_wrong_or_unusable_credentials_exit_3_and_write_nothing(
    capsys: pytest.CaptureFixture[str], basic_registry: LocalRegistry, source: LocalRegistry, docker_dir: Path,
    config: dict[str, Any] | str | None, helper: Behaviour | None, message: str,
) -> None:
    """Each way of not having usable credentials ends the copy with exit 3 and a message that names the registry, the
    file or the helper and what is wrong (never a secret); the target tag is not written."""
    host = basic_registry.host
    path = docker_dir / "config.json"
    if config is not None:
        text = config if isinstance(config, str) else json.dumps(config).replace("HOST", host)
        write_config(docker_dir, text)
        if helper is not None:
            name = (json.loads(text).get("credsStore") or "")
            write_credential_helper(docker_dir / "bin", name, {"other.example": (USER, PASSWORD)}, behaviour=helper)
    target = "mirror/refused"
    code, _, err = run(capsys, "copy", f"{source.host}/{SOURCE}", f"{host}/{target}:1")
    assert code == 3, err
    assert message.replace("HOST", host).replace("CONFIG", str(path)) in err
    assert tags(host, target) == []


# --- the helper process: once per host, bounded in time and output ------------------------------------------


def test_a_helper_runs_once_per_host_for_a_whole_copy(
    capsys: pytest.CaptureFixture[str], basic_registry: LocalRegistry, source: LocalRegistry, docker_dir: Path,
) -> None:
    """A copy makes many authenticated requests; the helper runs once, for the registry that asked (the open source
    registry never challenges, so its host is never looked up)."""
    host = basic_registry.host
    helper = write_credential_helper(docker_dir / "bin", "counted", {host: (USER, PASSWORD)})
    write_config(docker_dir, {"credsStore": "counted"})
    code, _, err = run(capsys, "copy", f"{source.host}/{SOURCE}", f"{host}/mirror/counted:1")
    assert code == 0, err
    assert helper.calls() == [host]


@pytest.mark.parametrize(
    ("behaviour", "message"),
    [
        pytest.param("hang", "gave no answer within 0.5 s (stopped)", id="past-the-deadline"),
        pytest.param("flood", "wrote more than 65536 bytes (stopped)", id="too-much-output"),
    ],
)
def test_a_helper_is_stopped_at_its_deadline_or_output_limit(
    tmp_path: Path, behaviour: Behaviour, message: str
) -> None:
    """A helper that hangs or floods is killed; the error names it and the host, and is kept (not run again)."""
    helper = write_credential_helper(tmp_path / "bin", "bad", {}, behaviour=behaviour)
    config = write_config(tmp_path, {"credsStore": "bad"})
    store = DockerCredentialStore(config, environ={**os.environ, "PATH": str(tmp_path / "bin")}, helper_timeout=0.5)
    for _ in range(2):
        with pytest.raises(CredentialHelperError) as raised:
            store.lookup("registry.example:5000")
        assert str(raised.value) == (
            f"credential helper docker-credential-bad (credsStore in {config}) for registry.example:5000: {message}"
        )
    assert helper.calls() == ["registry.example:5000"]


@pytest.mark.parametrize(
    ("host", "key"),
    [
        pytest.param("docker.io", "https://index.docker.io/v1/", id="docker-hub-by-its-docker-key"),
        pytest.param("registry-1.docker.io", "index.docker.io", id="docker-hub-alias-by-host"),
        pytest.param("MyReg.Example:5000", "https://myreg.example:5000/v2/", id="scheme-path-and-case"),
        pytest.param("myreg.example:5000", "myreg.example:5000", id="exact"),
    ],
)
def test_config_keys_are_matched_as_docker_matches_them(tmp_path: Path, host: str, key: str) -> None:
    """Docker Hub's key is https://index.docker.io/v1/; any key matches by its host, case-insensitively."""
    config = write_config(tmp_path, {"auths": {key: basic_auth(USER, PASSWORD), "elsewhere.example": {}}})
    assert DockerCredentialStore(config).lookup(host) == Credentials(USER, PASSWORD)
    assert DockerCredentialStore(config).lookup("unrelated.example") is None


def test_helpers_get_docker_hub_as_its_server_url(tmp_path: Path) -> None:
    """The server URL a helper is asked for is docker's key: https://index.docker.io/v1/ for Docker Hub."""
    helper = write_credential_helper(tmp_path / "bin", "hub", {"https://index.docker.io/v1/": (USER, PASSWORD)})
    config = write_config(tmp_path, {"credHelpers": {"https://index.docker.io/v1/": "hub"}})
    store = DockerCredentialStore(config, environ={**os.environ, "PATH": str(tmp_path / "bin")})
    assert store.lookup("docker.io") == Credentials(USER, PASSWORD)
    assert helper.calls() == ["https://index.docker.io/v1/"]


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        pytest.param({"DOCKER_CONFIG": "/cfg", "HOME": "/home/u"}, "/cfg/config.json", id="DOCKER_CONFIG"),
        pytest.param({"HOME": "/home/u"}, "/home/u/.docker/config.json", id="home"),
    ],
)
def test_the_config_file_is_found_like_docker_finds_it(environ: dict[str, str], expected: str) -> None:
    assert docker_config_path(environ) == Path(expected)


def test_secrets_stay_out_of_reprs(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"auths": {"a.example": {"identitytoken": REFRESH_TOKEN}}})
    store = DockerCredentialStore(config)
    found = store.lookup("a.example")
    assert isinstance(found, IdentityToken)
    for text in (repr(found), repr(store)):
        assert REFRESH_TOKEN not in text


def test_a_malformed_config_error_is_an_unauthorized_naming_the_file(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"credHelpers": ["not", "an", "object"]})
    with pytest.raises(DockerConfigError, match=f"^{config}: 'credHelpers' must be an object of helper names"):
        DockerCredentialStore(config).lookup("a.example")


# --- identity tokens: the OAuth2 refresh-token flow of the token service ----------------------------------------


@pytest.mark.parametrize(
    ("how", "token", "code"),
    [
        pytest.param("auths-identitytoken", REFRESH_TOKEN, 0, id="auths-identitytoken"),
        pytest.param("helper-token-username", REFRESH_TOKEN, 0, id="helper-answers-token-username"),
        pytest.param("auths-identitytoken", WRONG_REFRESH_TOKEN, 3, id="unknown-identity-token-is-refused"),
    ],
)
def test_identity_tokens_are_exchanged_with_the_refresh_token_grant(
    capsys: pytest.CaptureFixture[str], token_setup: tuple[LocalRegistry, TokenService], source: LocalRegistry,
    docker_dir: Path, how: str, token: str, code: int,
) -> None:
    """An identity token gets access tokens by POST grant_type=refresh_token, never by a basic-auth GET."""
    registry, tokens = token_setup
    host = registry.host
    if how == "auths-identitytoken":
        write_config(docker_dir, {"auths": {host: {"identitytoken": token}}})
    else:
        write_credential_helper(docker_dir / "bin", "tokens", {host: (TOKEN_USERNAME, token)})
        write_config(docker_dir, {"credHelpers": {host: "tokens"}})
    tokens.requests.clear()
    target = f"mirror/{how}-{code}"
    got, _, err = run(capsys, "copy", f"{source.host}/{SOURCE}", f"{host}/{target}:1")
    assert got == code, err
    methods = {method for method, _, _ in tokens.requests}
    assert methods == {"POST"}, tokens.requests
    if code == 0:
        assert (("POST", USER, (f"repository:{target}:pull,push",)) in tokens.requests
                or ("POST", USER, (f"repository:{target}:push,pull",)) in tokens.requests), tokens.requests
    else:
        assert "refused the identity token" in err


@pytest.mark.parametrize(
    ("failure_retry", "expected_calls"),
    [
        pytest.param(3600.0, 1, id="failure-kept-within-its-time"),
        pytest.param(0.0, 2, id="failure-asked-again-after-its-time"),
    ],
)
def test_a_helper_failure_is_kept_for_a_while_then_asked_again(
    tmp_path: Path, failure_retry: float, expected_calls: int
) -> None:
    """A long-running host heals once the helper works again, without running it on every request meanwhile."""
    write_credential_helper(tmp_path / "bin", "flaky", {}, behaviour="garbage")
    config = write_config(tmp_path, {"credsStore": "flaky"})
    store = DockerCredentialStore(config, environ={**os.environ, "PATH": str(tmp_path / "bin")},
                                  failure_retry=failure_retry)
    with pytest.raises(CredentialHelperError):
        store.lookup("registry.example:5000")
    fixed = write_credential_helper(tmp_path / "bin", "flaky", {"registry.example:5000": (USER, PASSWORD)})
    if expected_calls == 1:
        with pytest.raises(CredentialHelperError):
            store.lookup("registry.example:5000")
    else:
        assert store.lookup("registry.example:5000") == Credentials(USER, PASSWORD)
    assert len(fixed.calls()) == expected_calls


def test_a_client_asks_again_after_a_helper_failure_and_recovers(
    basic_registry: LocalRegistry, docker_dir: Path
) -> None:
    """One long-lived client (as a running `serve` keeps one per registry): a request while the helper fails is
    refused; once the helper works and the failure's time is over, the next request of the same client gets in."""
    from importer.adapters.registry.oci import OciRegistry
    from importer.ports.registry import Unauthorized

    write_credential_helper(docker_dir / "bin", "flaky", {}, behaviour="garbage")
    config = write_config(docker_dir, {"credsStore": "flaky"})
    store = DockerCredentialStore(config, environ=dict(os.environ), failure_retry=0.0)
    client = OciRegistry(basic_registry.host, credential_source=lambda: store.lookup(basic_registry.host))
    try:
        with pytest.raises(Unauthorized, match="docker-credential-flaky"):
            list(client.catalog())
        write_credential_helper(docker_dir / "bin", "flaky", {basic_registry.host: (USER, PASSWORD)})
        assert isinstance(list(client.catalog()), list)
    finally:
        client.close()
