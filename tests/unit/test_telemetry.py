from __future__ import annotations

import json

from kernel.runtime.errors import Unauthorized
from kernel.runtime.logs import log, mask, set_sink
from kernel.runtime.metrics import Registry, merge_exposition


def test_mask_hides_secrets_keys_and_email_local_parts() -> None:
    masked = mask(
        {
            "authorization": "Bearer abc.def",
            "note": "key erk_abcd1234567890 from jane.doe@school.edu via Bearer xyz",
            "password": "hunter2",
            "count": 3,
        }
    )
    assert masked["authorization"] == "***" and masked["password"] == "***"
    assert "1234567890" not in masked["note"] and "jane.doe" not in masked["note"]
    assert "@school.edu" in masked["note"] and "xyz" not in masked["note"]
    assert masked["count"] == 3


def test_log_writes_one_json_line() -> None:
    lines: list[str] = []
    set_sink(lines.append)
    try:
        log("hello", request_id="req_1", token="secret")
    finally:
        set_sink(None)
    record = json.loads(lines[0])
    assert (
        record["event"] == "hello" and record["request_id"] == "req_1" and record["token"] == "***"
    )


def test_error_body_shape() -> None:
    assert Unauthorized("nope").body("req_9") == {
        "error": {"code": "unauthorized", "message": "nope", "request_id": "req_9"}
    }


def test_prometheus_render_and_merge() -> None:
    a, b = Registry(), Registry()
    a.inc("edgerag_requests_total", help="Requests", route="/x", status="200")
    b.inc("edgerag_requests_total", help="Requests", route="/y", status="404")
    a.observe("edgerag_request_duration_ms", 12.0, help="Latency", route="/x")
    merged = merge_exposition([a.render({"worker": "gateway"}), b.render({"worker": "rag"})])
    assert merged.count("# TYPE edgerag_requests_total counter") == 1
    assert 'edgerag_requests_total{route="/x",status="200",worker="gateway"} 1' in merged
    assert 'edgerag_requests_total{route="/y",status="404",worker="rag"} 1' in merged
    assert 'edgerag_request_duration_ms_bucket{route="/x",le="10",worker="gateway"} 0' in merged
    assert 'edgerag_request_duration_ms_bucket{route="/x",le="25",worker="gateway"} 1' in merged
    assert 'edgerag_request_duration_ms_count{route="/x",worker="gateway"} 1' in merged
