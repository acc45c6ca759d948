"""Interoperability: third-party Python OAuth/JWT libraries against a live Handoff.

Nothing here uses Handoff's own code. authlib performs the RFC 8693 token
exchanges, the RFC 7662 introspections and the RFC 7009 revocations as any
OAuth client would; PyJWT verifies the issued tokens against the published
JWKS; authlib's RFC 8414 model validates the metadata document.

The server is given by HANDOFF_URL (its base URL, which is also its issuer)
and HANDOFF_ADMIN_TOKEN (the bootstrap admin token); it must run with --dev
so that the admin API can mint a human's token. .ci/interop.sh starts one.
Each run makes its own identities (a random suffix), so several runs, and
the Node suite, can share one server.
"""

import base64
import json
import os
import secrets
import time

import jwt
import pytest
import requests
from authlib.integrations.base_client import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
TT_JWT = "urn:ietf:params:oauth:token-type:jwt"
TT_ACCESS = "urn:ietf:params:oauth:token-type:access_token"
AUDIENCE = "https://api.example"
TIMEOUT = 10

SCHEMA = (
    "entity Doc; "
    "action delegate appliesTo { principal: [Human, Agent, Service], "
    "resource: [Human, Agent, Service] }; "
    "action read, write appliesTo { principal: [Human, Agent, Service], resource: [Doc] };"
)
POLICIES = (
    'permit(principal, action == Action::"delegate", resource); '
    'permit(principal, action == Action::"read", resource);'
)


def _env(name):
    value = os.environ.get(name, "").strip()
    if not value:
        # Not a skip: a run without a server proves nothing and must fail.
        raise RuntimeError(f"{name} is not set; run .ci/interop.sh, or start "
                           "`handoff serve --dev` and set HANDOFF_URL and HANDOFF_ADMIN_TOKEN")
    return value


def _check(response, *expected):
    assert response.status_code in expected, (
        f"{response.request.method} {response.url} -> {response.status_code}: {response.text}"
    )
    return response


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def base_url():
    return _env("HANDOFF_URL").rstrip("/")


@pytest.fixture(scope="module")
def admin(base_url):
    """A requests session carrying the admin token (setup only)."""
    session = requests.Session()
    session.headers["Authorization"] = "Bearer " + _env("HANDOFF_ADMIN_TOKEN")
    return session


@pytest.fixture(scope="module")
def metadata(base_url):
    response = _check(
        requests.get(f"{base_url}/.well-known/oauth-authorization-server", timeout=TIMEOUT), 200
    )
    assert response.headers["content-type"].startswith("application/json")
    return response.json()


@pytest.fixture(scope="module")
def world(base_url, admin):
    """The policy pack, a human, an agent and two services with credentials."""
    _check(
        admin.put(
            f"{base_url}/v1/policies",
            json={"files": {"schema.cedarschema": SCHEMA, "policies.cedar": POLICIES}},
            timeout=TIMEOUT,
        ),
        200,
        201,
    )
    suffix = secrets.token_hex(4)
    alice = f"human:alice-py-{suffix}@example.com"
    _check(admin.post(f"{base_url}/v1/identities", json={"id": alice}, timeout=TIMEOUT), 201)
    secrets_by_id = {}
    for name in (f"agent:bot-py-{suffix}", f"service:search-py-{suffix}", f"service:db-py-{suffix}"):
        _check(
            admin.post(f"{base_url}/v1/identities", json={"id": name, "owner": alice}, timeout=TIMEOUT),
            201,
        )
        issued = _check(
            admin.post(f"{base_url}/v1/identities/{name}/credentials", json={}, timeout=TIMEOUT), 201
        ).json()
        assert issued["secret"].startswith("hfc_")
        secrets_by_id[name] = issued["secret"]
    bot, search, db = secrets_by_id
    return {"alice": alice, "bot": bot, "search": search, "db": db, "secrets": secrets_by_id}


def human_token(base_url, admin, world):
    body = _check(
        admin.post(
            f"{base_url}/v1/dev/human-tokens",
            json={"human": world["alice"], "scope": "read write"},
            timeout=TIMEOUT,
        ),
        201,
    ).json()
    return body["access_token"]


def client(world, who, method):
    """A standard authlib OAuth 2.0 client for the identity `world[who]`.

    Its last HTTP response is kept in `session.last_response` so that the
    tests can look at headers authlib does not return."""
    identity = world[who]
    session = OAuth2Session(
        client_id=identity,
        client_secret=world["secrets"][identity],
        token_endpoint_auth_method=method,
        revocation_endpoint_auth_method=method,
    )
    session.last_response = None

    def keep(response, *args, **kwargs):
        session.last_response = response

    session.hooks["response"].append(keep)
    return session


def exchange(session, metadata, subject_token, subject_token_type, **params):
    token = session.fetch_token(
        metadata["token_endpoint"],
        grant_type=TOKEN_EXCHANGE,
        subject_token=subject_token,
        subject_token_type=subject_token_type,
        timeout=TIMEOUT,
        **params,
    )
    # RFC 6749 §5.1: a token response is never cached.
    assert "no-store" in session.last_response.headers.get("cache-control", "")
    return token


def three_hops(base_url, admin, world, metadata):
    """alice -> agent:bot -> service:search -> service:db, each hop an RFC 8693
    exchange by a different standard client, with both secret methods."""
    alice_token = human_token(base_url, admin, world)
    bot = exchange(
        client(world, "bot", "client_secret_basic"),
        metadata,
        alice_token,
        TT_JWT,
        scope="read",
        audience=AUDIENCE,
    )
    search = exchange(
        client(world, "search", "client_secret_post"),
        metadata,
        bot["access_token"],
        TT_ACCESS,
        scope="read",
        audience=AUDIENCE,
    )
    db = exchange(
        client(world, "db", "client_secret_basic"),
        metadata,
        search["access_token"],
        TT_ACCESS,
        scope="read",
        audience=AUDIENCE,
    )
    return {"human": alice_token, "bot": bot, "search": search, "db": db}


@pytest.fixture(scope="module")
def chain(base_url, admin, world, metadata):
    return three_hops(base_url, admin, world, metadata)


@pytest.fixture(scope="module")
def jwks_client(metadata):
    return jwt.PyJWKClient(metadata["jwks_uri"], cache_keys=True, timeout=TIMEOUT)


def verify(jwks_client, metadata, token, audience=AUDIENCE):
    key = jwks_client.get_signing_key_from_jwt(token)
    return jwt.decode(
        token,
        key,
        algorithms=["EdDSA"],
        issuer=metadata["issuer"],
        audience=audience,
        options={"require": ["iss", "sub", "aud", "exp", "iat", "jti"], "strict_aud": False},
    )


def unverified(token):
    return jwt.decode(token, options={"verify_signature": False})


# ---------------------------------------------------------------- metadata


def test_metadata_and_jwks(base_url, metadata):
    assert metadata["issuer"] == base_url
    for endpoint, path in [
        ("token_endpoint", "/oauth2/token"),
        ("introspection_endpoint", "/oauth2/introspect"),
        ("revocation_endpoint", "/oauth2/revoke"),
        ("jwks_uri", "/.well-known/jwks.json"),
    ]:
        assert metadata[endpoint] == base_url + path, endpoint
    assert TOKEN_EXCHANGE in metadata["grant_types_supported"]
    methods = metadata["token_endpoint_auth_methods_supported"]
    assert "client_secret_basic" in methods and "client_secret_post" in methods

    response = _check(requests.get(metadata["jwks_uri"], timeout=TIMEOUT), 200)
    keys = response.json()["keys"]
    assert keys, "the JWKS is empty"
    for key in keys:
        assert key["kid"] and key["alg"] in ("EdDSA", "ES256"), key
        assert "d" not in key, "a private key is published"
    assert any(k["alg"] == "EdDSA" and k["kty"] == "OKP" and k["crv"] == "Ed25519" for k in keys)
    # Every published key loads in PyJWT.
    jwk_set = jwt.PyJWKSet.from_dict(response.json())
    assert {k.key_id for k in jwk_set.keys} == {k["kid"] for k in keys}


def test_metadata_each_present_field_passes_authlib(metadata, monkeypatch):
    """authlib's RFC 8414 validators accept every field the server sends.

    The server runs on loopback http in CI; authlib would demand https, so
    the transport check alone is relaxed. Two validators are left out here:
    response_types_supported, which authlib rejects when it is an empty
    array (RFC 8414 §2 only says REQUIRED; a server with no authorization
    endpoint has no response type to list, so only its presence as an array
    is checked), and the *_auth_signing_alg_values_supported fields that the
    next test covers."""
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")
    model = AuthorizationServerMetadata(metadata)
    for name in [
        "issuer",
        "authorization_endpoint",
        "token_endpoint",
        "jwks_uri",
        "scopes_supported",
        "response_modes_supported",
        "grant_types_supported",
        "token_endpoint_auth_methods_supported",
        "token_endpoint_auth_signing_alg_values_supported",
        "service_documentation",
        "revocation_endpoint",
        "revocation_endpoint_auth_methods_supported",
        "introspection_endpoint",
        "introspection_endpoint_auth_methods_supported",
        "code_challenge_methods_supported",
    ]:
        getattr(model, f"validate_{name}")()
    assert isinstance(metadata.get("response_types_supported"), list)


def test_metadata_signing_algs_for_private_key_jwt(metadata, monkeypatch):
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")
    model = AuthorizationServerMetadata(metadata)
    model.validate_introspection_endpoint_auth_signing_alg_values_supported()
    model.validate_revocation_endpoint_auth_signing_alg_values_supported()


# ---------------------------------------------------------------- exchange


def test_token_exchange_responses(chain):
    for hop in ("bot", "search", "db"):
        token = chain[hop]
        assert token["token_type"].lower() == "bearer", hop
        assert token["issued_token_type"] == TT_ACCESS, hop
        assert token["scope"] == "read", hop
        assert isinstance(token["expires_in"], int) and token["expires_in"] > 0, hop


def test_human_token_verifies_as_dev_issuer(jwks_client, metadata, chain):
    claims = jwt.decode(
        chain["human"],
        jwks_client.get_signing_key_from_jwt(chain["human"]),
        algorithms=["EdDSA"],
        issuer=metadata["issuer"] + "/dev",
        audience=metadata["issuer"],
    )
    assert claims["sub"].startswith("human:alice-py-")


def test_three_hop_token_verifies_with_pyjwt(jwks_client, metadata, world, chain):
    token = chain["db"]["access_token"]
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "EdDSA"
    assert header["typ"].lower() == "at+jwt"  # RFC 9068 §2.1
    assert header["kid"]

    claims = verify(jwks_client, metadata, token)
    first = verify(jwks_client, metadata, chain["bot"]["access_token"])
    second = verify(jwks_client, metadata, chain["search"]["access_token"])

    assert claims["iss"] == metadata["issuer"]
    assert claims["aud"] == AUDIENCE or claims["aud"] == [AUDIENCE]
    assert claims["exp"] > time.time()
    assert claims["sub"] == world["alice"]
    assert claims["client_id"] == world["db"]
    assert claims["scope"] == "read"
    assert claims["depth"] == 3
    # RFC 8693 §4.1: the current actor outermost, prior actors nested.
    assert claims["act"] == {
        "sub": world["db"],
        "act": {"sub": world["search"], "act": {"sub": world["bot"]}},
    }
    # One lineage: the same txn on every hop, distinct jti, the same subject.
    assert first["txn"] and claims["txn"] == second["txn"] == first["txn"]
    assert len({claims["jti"], second["jti"], first["jti"]}) == 3
    assert first["sub"] == second["sub"] == world["alice"]
    assert first["act"] == {"sub": world["bot"]}
    assert second["act"] == {"sub": world["search"], "act": {"sub": world["bot"]}}
    # A child never outlives its parent.
    assert claims["exp"] <= second["exp"] <= first["exp"]


def test_tampered_or_forged_token_fails_pyjwt(jwks_client, metadata, world, chain):
    token = chain["db"]["access_token"]
    head, payload, signature = token.split(".")

    claims = unverified(token)
    claims["sub"] = "human:mallory@example.com"
    forged_payload = (
        base64.urlsafe_b64encode(json.dumps(claims, separators=(",", ":")).encode())
        .rstrip(b"=")
        .decode()
    )
    with pytest.raises(jwt.InvalidSignatureError):
        verify(jwks_client, metadata, f"{head}.{forged_payload}.{signature}")

    raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    raw[0] ^= 0x01
    flipped = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    with pytest.raises(jwt.InvalidSignatureError):
        verify(jwks_client, metadata, f"{head}.{payload}.{flipped}")

    # An unsigned token ("alg": "none") with the same claims is refused.
    unsigned = jwt.encode(unverified(token), None, algorithm="none")
    with pytest.raises(jwt.PyJWTError):
        jwt.decode(unsigned, jwks_client.get_signing_key_from_jwt(token), algorithms=["EdDSA"])

    # The genuine token is not good for another audience.
    with pytest.raises(jwt.InvalidAudienceError):
        verify(jwks_client, metadata, token, audience="https://elsewhere.example")


def test_refusals_are_standard_oauth_errors(metadata, world, chain):
    wrong = client(world, "search", "client_secret_basic")
    wrong.client_secret += "x"
    with pytest.raises(OAuthError) as refused:
        exchange(wrong, metadata, chain["bot"]["access_token"], TT_ACCESS)
    assert refused.value.error == "invalid_client"

    # A child may not widen its parent's scope (RFC 6749 §5.2 invalid_scope).
    with pytest.raises(OAuthError) as refused:
        exchange(
            client(world, "search", "client_secret_basic"),
            metadata,
            chain["bot"]["access_token"],
            TT_ACCESS,
            scope="write",
        )
    assert refused.value.error == "invalid_scope"

    # ... nor its audience (RFC 8693 §2.2.2 invalid_target).
    with pytest.raises(OAuthError) as refused:
        exchange(
            client(world, "search", "client_secret_basic"),
            metadata,
            chain["bot"]["access_token"],
            TT_ACCESS,
            audience="https://elsewhere.example",
        )
    assert refused.value.error == "invalid_target"


# ------------------------------------------------- introspection, revocation


def test_introspection_of_three_hop_token(metadata, world, chain):
    token = chain["db"]["access_token"]
    claims = unverified(token)
    for session in (
        client(world, "search", "client_secret_basic"),
        client(world, "db", "client_secret_post"),
    ):
        response = _check(session.introspect_token(metadata["introspection_endpoint"], token=token), 200)
        body = response.json()
        assert body["active"] is True
        for name in ("iss", "sub", "aud", "exp", "iat", "jti", "client_id", "scope", "act", "txn"):
            assert body[name] == claims[name], name
    assert body["act"]["act"]["act"]["sub"] == world["bot"]


def test_introspection_by_admin_bearer(base_url, metadata, chain):
    response = _check(
        requests.post(
            metadata["introspection_endpoint"],
            data={"token": chain["db"]["access_token"]},
            headers={"Authorization": "Bearer " + _env("HANDOFF_ADMIN_TOKEN")},
            timeout=TIMEOUT,
        ),
        200,
    )
    assert response.json()["active"] is True


def test_revocation_cascades_to_every_descendant(base_url, admin, world, metadata):
    # A chain of its own, so that no other test depends on the order.
    fresh = three_hops(base_url, admin, world, metadata)
    observer = client(world, "search", "client_secret_basic")

    def active(hop):
        response = observer.introspect_token(
            metadata["introspection_endpoint"], token=fresh[hop]["access_token"]
        )
        return _check(response, 200).json()["active"]

    assert [active(h) for h in ("bot", "search", "db")] == [True, True, True]

    bot = client(world, "bot", "client_secret_basic")
    revoked = bot.revoke_token(
        metadata["revocation_endpoint"],
        token=fresh["bot"]["access_token"],
        token_type_hint="access_token",
    )
    _check(revoked, 200)

    assert [active(h) for h in ("bot", "search", "db")] == [False, False, False]
    # RFC 7662 §2.2: an inactive token discloses nothing else.
    inactive = observer.introspect_token(
        metadata["introspection_endpoint"], token=fresh["db"]["access_token"]
    ).json()
    assert inactive == {"active": False}

    # RFC 7009 §2.2: revoking an already invalid token is still 200.
    _check(bot.revoke_token(metadata["revocation_endpoint"], token=fresh["bot"]["access_token"]), 200)

    # A revoked token can no longer be exchanged (RFC 8693 §2.2.2 invalid_request).
    with pytest.raises(OAuthError) as refused:
        exchange(
            client(world, "db", "client_secret_basic"),
            metadata,
            fresh["search"]["access_token"],
            TT_ACCESS,
        )
    assert refused.value.error == "invalid_request"
