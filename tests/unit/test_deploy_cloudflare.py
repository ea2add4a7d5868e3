"""The Cloudflare REST client: the envelope, pages, 404s, and errors that name the call, the
token's env var and the permission — against the fake account's documented answers."""

from __future__ import annotations

import httpx
import pytest

from edgerag_cli.deploy import provision, repo
from edgerag_cli.deploy.cloudflare import Cloudflare, CloudflareError, NotFound
from edgerag_cli.deploy.manifest import load_manifest
from tests.deploy.fake_cloudflare import FakeCloudflare

ACCOUNT = "9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b"
TOKEN = "tok-secret-value-789"


@pytest.fixture
def cf() -> FakeCloudflare:
    return FakeCloudflare({ACCOUNT: TOKEN})


def client(cf: FakeCloudflare, sleeps: list[float], token: str = TOKEN) -> Cloudflare:
    transport: httpx.BaseTransport = cf.transport
    return Cloudflare(token, token_label="$CF_TOKEN_X", transport=transport, sleep=sleeps.append)


def test_lists_follow_every_page(cf: FakeCloudflare) -> None:
    c = client(cf, [])
    for i in range(5):
        c.create_kv(ACCOUNT, f"ns-{i}")
    assert c.find_kv(ACCOUNT, "ns-4") is not None  # on the third page of two
    assert c.find_kv(ACCOUNT, "ns-9") is None
    assert (
        sum("/storage/kv/namespaces" in call and call.startswith("GET") for call in cf.calls) == 6
    )


def test_missing_buckets_and_indexes_are_none_not_errors(cf: FakeCloudflare) -> None:
    c = client(cf, [])
    assert c.get_bucket(ACCOUNT, "nope") is None
    assert c.get_index(ACCOUNT, "nope") is None
    with pytest.raises(NotFound):
        c.script_settings(ACCOUNT, "nope")


def test_a_refused_token_and_a_missing_permission_say_which_and_what(cf: FakeCloudflare) -> None:
    with pytest.raises(CloudflareError) as info:
        client(cf, [], token="wrong").scripts(ACCOUNT)
    assert str(info.value) == (
        "GET /accounts/{account_id}/workers/scripts (list Worker scripts): HTTP 401: [10000]"
        " Authentication error — $CF_TOKEN_X was refused: is it expired, revoked or mistyped?"
    )
    cf.fail("POST", r"/vectorize/v2/indexes$", 403)
    with pytest.raises(CloudflareError) as info:
        client(cf, []).create_index(ACCOUNT, "idx", 384, "cosine")
    message = str(info.value)
    assert message.startswith(
        "POST /accounts/{account_id}/vectorize/v2/indexes (create Vectorize index idx): HTTP 403"
    )
    assert "$CF_TOKEN_X lacks the permission this call needs: Vectorize Edit" in message
    assert TOKEN not in message


def test_429_waits_for_retry_after_and_5xx_backs_off(cf: FakeCloudflare) -> None:
    sleeps: list[float] = []
    cf.fail(
        "GET",
        r"/workers/scripts$",
        429,
        headers={"retry-after": "3"},
        code=971,
        message="Please wait",
    )
    cf.fail("GET", r"/workers/scripts$", 502, times=2, code=10013, message="bad gateway")
    assert client(cf, sleeps).scripts(ACCOUNT) == set()
    assert sleeps == [3.0, 2.0, 4.0]


def test_giving_up_names_the_call_and_the_attempts(cf: FakeCloudflare) -> None:
    cf.fail("GET", r"/d1/database$", 503, times=9, code=7500, message="D1 is unavailable")
    with pytest.raises(CloudflareError) as info:
        client(cf, []).find_d1(ACCOUNT, "db")
    assert str(info.value).endswith(
        "HTTP 503: [7500] D1 is unavailable — the Cloudflare API failed (after 4 attempts); try"
        " again later"
    )
    # a retry-after longer than the client waits (the 5-minute global block) fails at once
    sleeps: list[float] = []
    cf.fail(
        "GET",
        r"/r2/buckets/",
        429,
        headers={"retry-after": "300"},
        code=10429,
        message="Rate limited",
    )
    with pytest.raises(
        CloudflareError, match=r"rate limited by the Cloudflare API; retry after 300 s"
    ):
        client(cf, sleeps).get_bucket(ACCOUNT, "b")
    assert sleeps == []


def test_network_errors_are_retried_then_reported() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    sleeps: list[float] = []
    c = Cloudflare(TOKEN, transport=httpx.MockTransport(down), sleep=sleeps.append)
    with pytest.raises(
        CloudflareError, match="cannot reach the Cloudflare API: connection refused"
    ):
        c.scripts(ACCOUNT)
    assert sleeps == [1.0, 2.0, 4.0]


def test_an_answer_that_is_not_the_envelope_is_an_error() -> None:
    def odd(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            json={"success": False, "errors": [{"code": 7000, "message": "No route for that URI"}]},
        )

    c = Cloudflare(TOKEN, transport=httpx.MockTransport(odd))
    with pytest.raises(CloudflareError, match=r"HTTP 200: \[7000\] No route for that URI"):
        c.scripts(ACCOUNT)


def test_a_create_whose_answer_was_lost_is_found_instead_of_duplicated(cf: FakeCloudflare) -> None:
    """The create succeeded but its answer never arrived (502): the retry is refused as a
    duplicate, and the provisioner reads the database back."""
    lost: list[httpx.Response] = []

    def lossy(request: httpx.Request) -> httpx.Response:
        response = cf.handle(request)
        if request.method == "POST" and request.url.path.endswith("/d1/database") and not lost:
            lost.append(response)
            return httpx.Response(502, text="bad gateway")
        return response

    stack = load_manifest(repo.ROOT / "deploy" / "tenants.toml").stacks()["acme-textbooks"]
    c = Cloudflare(TOKEN, transport=httpx.MockTransport(lossy), sleep=lambda s: None)
    seen, created = provision.ensure(c, repo.load_repo(), stack, "stage")
    assert len(cf.account(ACCOUNT).d1) == 1
    assert seen.ids.d1 == next(iter(cf.account(ACCOUNT).d1))
    assert created[0] == "D1 database edgerag-acme-textbooks-stage"
