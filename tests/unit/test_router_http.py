from __future__ import annotations

import pytest
from pydantic import BaseModel

from kernel.runtime.errors import (
    BadRequest,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
)
from kernel.runtime.http import Request, Response
from kernel.runtime.router import Router


async def _ok(request: Request) -> Response:
    return Response(200, request.params.get("id", "").encode())


def test_router_matches_params_and_reports_405_with_allow() -> None:
    router = Router()
    router.add("GET", "/v1/documents/{id}", _ok)
    router.add("DELETE", "/v1/documents/{id}", _ok)
    route, params = router.resolve("GET", "/v1/documents/d_1")
    assert route.pattern == "/v1/documents/{id}" and params == {"id": "d_1"}
    with pytest.raises(MethodNotAllowed) as info:
        router.resolve("POST", "/v1/documents/d_1")
    assert info.value.headers["allow"] == "DELETE, GET, HEAD"  # GET answers HEAD
    with pytest.raises(NotFound):
        router.resolve("GET", "/v1/documents/d_1/extra")


def _request(body: bytes, content_type: str = "application/json") -> Request:
    return Request("POST", "http://x/v1/search?a=1", {"content-type": content_type}, body)


def test_request_parses_path_and_query() -> None:
    request = _request(b"{}")
    assert request.path == "/v1/search" and request.query == {"a": "1"}


class Model(BaseModel):
    query: str
    top_k: int = 1


@pytest.mark.parametrize(
    ("body", "content_type", "error"),
    [
        (b"", "application/json", BadRequest),
        (b"{nope", "application/json", BadRequest),
        (b"\xff\xfe", "application/json", BadRequest),
        (b"{}", "text/plain", UnsupportedMediaType),
        (b'{"top_k": "many"}', "application/json", ValidationFailed),
    ],
)
def test_request_model_errors(body: bytes, content_type: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        _request(body, content_type).model(Model)


def test_validation_error_names_the_field() -> None:
    with pytest.raises(ValidationFailed) as info:
        _request(b'{"query": "q", "top_k": "x"}').model(Model)
    assert info.value.message.startswith("top_k:")
    assert info.value.details["fields"][0]["field"] == "top_k"


def test_json_body_size_limit() -> None:
    with pytest.raises(PayloadTooLarge):
        _request(b"[" + b"1," * 100 + b"1]").json(max_bytes=50)
