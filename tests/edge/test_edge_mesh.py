"""Edge tier, real code: the four Workers' `entry.py` in Pyodide (one isolate each) on Miniflare.

One harness run of mesh_plan.json (session fixture `mesh_run`) does three things, asserted here:

1. smoke (in_pyodide/mesh_smoke.py): tenants, ingest, search, tenant isolation, /health and
   /metrics through the gateway's real entry.py, over service bindings to rag/ingest/llm;
2. the binding contracts (tests/contract/*_contract.py) against the *Cloudflare adapters*
   (kernel.bindings.cloudflare, kernel.bindings.services.CloudflareService) on Miniflare's real D1/KV/R2, the
   Vectorize stand-in and a real service binding to an echo Worker;
3. the same D1 contract against a deliberately broken adapter, which must fail;
4. the ingest Worker's cron handler (`scheduled`) resumes a job whose isolate went away.

Plus: the plan agrees with the wrangler configs, and each Worker's heap after all imports.
"""

from __future__ import annotations

import re
import tomllib
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.edge

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
WORKERS = ("gateway", "rag", "ingest", "llm")
CONFIGS = {
    "gateway": ROOT / "wrangler.toml",
    **{w: ROOT / "workers" / w / "wrangler.toml" for w in WORKERS if w != "gateway"},
}
HEAP_BUDGET_MB = 64  # of the 128 MB isolate limit: leave half for requests
# Contract tests the edge tier may skip, with the reason (anything else must pass).
ALLOWED_SKIPS = {
    "TestEdgeR2::test_custom_metadata_size_limit": "Miniflare enforces R2's old 2 KiB limit",
}


def _plan() -> dict[str, Any]:
    import json

    data: dict[str, Any] = json.loads((HERE / "mesh_plan.json").read_text())
    return data


def _step(run: dict[str, Any], name: str) -> dict[str, Any]:
    plan_steps = _plan()["steps"]
    index = next(i for i, s in enumerate(plan_steps) if s.get("name") == name)
    step: dict[str, Any] = run["steps"][index]
    assert step["kind"] != "error", step
    return step


@pytest.fixture(scope="module")
def smoke(mesh_run: dict[str, Any]) -> dict[str, Any]:
    step = _step(mesh_run, "smoke")
    assert step["ok"], step.get("traceback", step)
    result: dict[str, Any] = step["result"]
    return result


def _ok(call: dict[str, Any], status: int = 200) -> dict[str, Any]:
    assert call["status"] == status, call
    body: dict[str, Any] = call["json"]
    return body


# --- 1. the plan is the deployment ---------------------------------------------------------


@pytest.mark.parametrize("worker", WORKERS)
def test_plan_matches_wrangler_config(worker: str) -> None:
    """Bindings, main module and bundle contents exactly as wrangler deploys them."""
    with CONFIGS[worker].open("rb") as f:
        cfg = tomllib.load(f)
    spec = _plan()["workers"][worker]
    base = CONFIGS[worker].parent
    main = (base / cfg["main"]).resolve().relative_to((base / cfg["base_dir"]).resolve())
    assert spec["bundle"]["main"] == main.as_posix() == f"{worker}/entry.py"
    copied = re.findall(r"cp -R ((?:workers/\w+\s*)+)", cfg["build"]["command"])
    assert copied, cfg["build"]["command"]
    assert sorted(spec["bundle"]["include"]) == sorted(
        p.removeprefix("workers/") for p in copied[0].split()
    )
    plain = {
        b["binding"]
        for key in ("d1_databases", "kv_namespaces", "r2_buckets", "vectorize")
        for b in cfg.get(key, [])
    }
    if "ai" in cfg:
        plain.add(cfg["ai"]["binding"])
    assert set(spec["bindings"]) == plain
    services = {
        s["binding"]: s["service"].removeprefix("edgerag-") for s in cfg.get("services", [])
    }
    assert spec.get("services", {}) == services
    for key in (
        "queues",
        "durable_objects",
        "workflows",
        "hyperdrive",
        "analytics_engine_datasets",
    ):
        assert not cfg.get(key), f"{worker}: {key} bindings are not in the edge plan yet"
    assert {"python_workers", "python_workers_20260610"} <= set(cfg["compatibility_flags"])
    if worker == "gateway":
        assert "EDGERAG_OPERATOR_TOKEN" in spec["secrets"]


def test_plan_applies_the_repo_migrations_to_the_shared_d1(mesh_run: dict[str, Any]) -> None:
    expected = sorted(p.name for p in (ROOT / "migrations").glob("*.sql"))
    assert expected and mesh_run["migrations"]["DB"] == expected
    for worker in WORKERS:
        assert mesh_run["workers"][worker]["entrypoints"]["workerEntrypoints"][0]["className"] == (
            "Default"
        )
        assert (
            "fetch"
            in mesh_run["workers"][worker]["entrypoints"]["workerEntrypoints"][0]["methodNames"]
        )


# --- heap ----------------------------------------------------------------------------------


@pytest.mark.parametrize("worker", WORKERS)
def test_heap_after_all_imports_within_budget(mesh_run: dict[str, Any], worker: str) -> None:
    line = next(ln for ln in mesh_run["report"] if ln.startswith(f"heap {worker}: "))
    mb = float(line.split(": ")[1].split()[0])
    assert mb <= HEAP_BUDGET_MB, line
    assert mesh_run["workers"][worker]["heapAfterStepsMB"] < 128, mesh_run["workers"][worker]


# --- 2. smoke through the gateway's entry.py ------------------------------------------------


def test_health_reports_cloudflare_adapters(smoke: dict[str, Any]) -> None:
    body = _ok(smoke["health"])
    assert body["status"] == "ok"
    workers = {w["worker"]: w for w in body["workers"]}
    assert set(workers) == set(WORKERS)
    for name, info in workers.items():
        assert info["adapter"] == "cloudflare", (name, info)
        assert set(info["bindings"].values()) == {"cloudflare"}, (name, info)
    plan = _plan()["workers"]
    for name in WORKERS:  # least privilege: what the wrangler config grants, nothing more
        granted = set(plan[name]["bindings"]) | set(plan[name].get("services", {}))
        assert set(workers[name]["bindings"]) == granted, (name, workers[name])


def test_tenants_are_created_with_the_operator_token_only(smoke: dict[str, Any]) -> None:
    a = _ok(smoke["tenant_a"], 201)
    b = _ok(smoke["tenant_b"], 201)
    assert a["tenant_id"] != b["tenant_id"] and a["api_key"] != b["api_key"]
    assert smoke["tenant_no_auth"]["status"] == 401, smoke["tenant_no_auth"]


def test_documents_are_accepted_and_become_ready(smoke: dict[str, Any]) -> None:
    for side in ("a", "b"):
        body = _ok(smoke[f"ingest_{side}"], 202)
        assert body["document_id"].startswith("d_") and body["version"] == 1
        assert body["status"] in ("ready", "queued", "processing"), body
        ready = smoke[f"ready_{side}"]
        # Asynchronous ingestion: polled GET /v1/documents/{id}/status; a 404 of that route
        # is tolerated until it exists (then the document must have been ready at once).
        if ready.get("route") == "missing":
            assert body["status"] == "ready", (body, smoke["polls"])
        else:
            assert ready["status"] == "ready", (ready, smoke["polls"])


def test_tenant_a_finds_the_canary_with_exact_offsets(smoke: dict[str, Any]) -> None:
    canary_id = _ok(smoke["ingest_a"], 202)["document_id"]
    text = smoke["text"]["canary"]
    for search in smoke["search"]:
        hits = _ok(search["a"])["results"]
        mine = [h for h in hits if h["document_id"] == canary_id]
        assert mine, (search["query"], hits)
        for hit in mine:
            assert {"chunk_id", "score", "char_start", "char_end"} <= set(hit)
            assert text[hit["char_start"] : hit["char_end"]] == hit["text"], hit


def test_tenant_b_never_sees_the_canary(smoke: dict[str, Any]) -> None:
    canary_id = _ok(smoke["ingest_a"], 202)["document_id"]
    physics_id = _ok(smoke["ingest_b"], 202)["document_id"]
    for search in smoke["search"]:
        hits = _ok(search["b"])["results"]
        assert all(h["document_id"] != canary_id for h in hits), (search["query"], hits)
        assert all("zorblax" not in h["text"].lower() for h in hits), hits
        assert {h["document_id"] for h in hits} <= {physics_id}, hits


def test_metrics_are_prometheus_text(smoke: dict[str, Any]) -> None:
    metrics = smoke["metrics"]
    assert metrics["status"] == 200, metrics
    assert metrics["content_type"].startswith("text/plain")
    assert "edgerag_requests_total" in metrics["text"]


def test_answer_cites_the_canary_verbatim(smoke: dict[str, Any]) -> None:
    """POST /v1/answer (rag -> llm -> AI): every citation's offsets select its quote in the text.

    The generator is the Workers AI stand-in (it echoes the sources it was given), so this
    proves the plumbing and the citation verification in Pyodide, not the answer's quality.
    """
    canary_id = _ok(smoke["ingest_a"], 202)["document_id"]
    text = smoke["text"]["canary"]
    body = _ok(smoke["answer_a"])
    assert not body["abstained"] and body["citations"], body
    # Workers AI JSON mode through the Cloudflare AI adapter: the claims object crossed the FFI
    # as a dict, and its one claim (source [1]'s first sentence) is the answer.
    assert body["generated_by"]["provider"] == "workers-ai", body
    assert body["answer"] == f"{text.split('. ')[0]}. [1]", body
    for citation in body["citations"]:
        assert citation["document_id"] == canary_id, citation
        assert text[citation["char_start"] : citation["char_end"]] == citation["quote"], citation
        assert f"[{citation['n']}]" in body["answer"], body
    # Tenant B asks the same question: nothing of tenant A's is cited or quoted.
    other = _ok(smoke["answer_b"])
    assert all(c["document_id"] != canary_id for c in other["citations"]), other
    assert "zorblax" not in other["answer"].lower(), other


def test_tools_run_as_the_caller_and_are_audited(smoke: dict[str, Any]) -> None:
    canary_id = _ok(smoke["ingest_a"], 202)["document_id"]
    passages = _ok(smoke["tool_search"])["result"]["passages"]
    assert passages and passages[0]["document_id"] == canary_id, passages
    document = _ok(smoke["tool_document"])["result"]
    assert document["document"]["id"] == canary_id
    assert (
        document["section"]["text"] == smoke["text"]["canary"][: len(document["section"]["text"])]
    )
    assert smoke["tool_document_b"]["status"] == 404, smoke["tool_document_b"]
    entries = _ok(smoke["audit_a"])["entries"]
    assert [e["tool"] for e in entries[:2]] == ["get_document", "search_knowledge_base"], entries
    assert all(len(e["args_sha256"]) == 64 for e in entries)
    other = _ok(smoke["audit_b"])["entries"]
    assert [(e["tool"], e["error_code"]) for e in other] == [("get_document", "not_found")], other


def test_speech_from_workers_ai_aura_is_wav_and_cached(smoke: dict[str, Any]) -> None:
    for reply in (smoke["tts"], smoke["tts_again"]):
        assert reply["status"] == 200 and reply["content_type"] == "audio/wav", reply
        assert reply["text"].startswith("RIFF") and "WAVE" in reply["text"][:12], reply


def test_chat_streams_verified_sentences_from_workers_ai(smoke: dict[str, Any]) -> None:
    """The streamed path in Pyodide: WorkersAI.stream on the AI stand-in's SSE, rag verifying
    as it reads, the gateway relaying `text/event-stream`."""
    import json

    reply = smoke["chat_stream"]
    assert reply["status"] == 200 and reply["content_type"].startswith("text/event-stream"), reply
    frames = [f for f in reply["text"].split("\n\n") if f.strip()]
    events = []
    for frame in frames:
        fields = dict(line.split(": ", 1) for line in frame.splitlines() if ": " in line)
        events.append((fields.get("event", "message"), json.loads(fields["data"])))
    names = [n for n, _ in events]
    assert names[-1] == "done" and "token" in names, names
    done = events[-1][1]
    assert done["generated_by"]["provider"] == "workers-ai", done
    text = smoke["text"]["canary"]
    for name, data in events:
        if name == "citation":
            assert text[data["char_start"] : data["char_end"]] == data["quote"], data


# --- 3. binding contracts against the Cloudflare adapters, inside Pyodide -------------------


def _expected_contract_tests() -> Counter[str]:
    """`EdgeClass::test_name` -> number of cases, collected from the mixins on CPython."""
    from tests.contract.d1_contract import D1Contract
    from tests.contract.kv_contract import KvContract
    from tests.contract.r2_contract import R2Contract
    from tests.contract.service_contract import ServiceContract
    from tests.contract.vectorize_contract import VectorizeContract

    mixins = {
        "TestEdgeD1": D1Contract,
        "TestEdgeKV": KvContract,
        "TestEdgeR2": R2Contract,
        "TestEdgeVectorize": VectorizeContract,
        "TestEdgeService": ServiceContract,
    }
    expected: Counter[str] = Counter()
    for edge_name, mixin in mixins.items():
        for name in dir(mixin):
            if not name.startswith("test"):
                continue
            cases = 1
            for mark in getattr(getattr(mixin, name), "pytestmark", []):
                if mark.name == "parametrize":
                    cases *= len(mark.args[1])
            expected[f"{edge_name}::{name}"] = cases
    return expected


def _by_test(tests: list[dict[str, Any]]) -> Counter[str]:
    return Counter(t["test"].split("[")[0] for t in tests)


def test_every_contract_test_runs_against_the_cloudflare_adapters(
    mesh_run: dict[str, Any],
) -> None:
    tests = _step(mesh_run, "contracts")["tests"]
    ran = _by_test(tests)
    expected = _expected_contract_tests()
    missing = {k: v for k, v in expected.items() if ran[k] != v}
    assert not missing, f"contract tests not run (or wrong case count) in Pyodide: {missing}"
    counts = Counter(t["outcome"] for t in tests)
    per_suite = Counter((t["test"].split("::")[0], t["outcome"]) for t in tests)
    print(f"\ncontract suites in Pyodide: {dict(counts)}")
    for (suite, outcome), n in sorted(per_suite.items()):
        print(f"  {suite}: {outcome} {n}")


def test_contract_tests_pass_on_miniflare(mesh_run: dict[str, Any]) -> None:
    tests = _step(mesh_run, "contracts")["tests"]
    failed = [t for t in tests if t["outcome"] == "failed"]
    assert not failed, "\n\n".join(
        f"{t['test']}: {t['error']}\n{t.get('traceback', '')}" for t in failed
    )
    skipped = {t["test"]: t["error"] for t in tests if t["outcome"] == "skipped"}
    assert set(skipped) <= set(ALLOWED_SKIPS), skipped
    for name, reason in skipped.items():
        print(f"skipped {name}: {reason}")


def test_a_broken_cloudflare_adapter_fails_the_d1_contract(mesh_run: dict[str, Any]) -> None:
    """bind([a, b]) instead of bind(a, b): invisible to CPython fakes, fatal on real D1."""
    tests = {
        t["test"].replace("TestBrokenD1::", ""): t for t in _step(mesh_run, "broken_d1")["tests"]
    }
    d1 = {k: v for k, v in _expected_contract_tests().items() if k.startswith("TestEdgeD1::")}
    assert len(tests) == sum(d1.values())
    failed = {name for name, t in tests.items() if t["outcome"] == "failed"}
    assert "test_insert_then_select_returns_dict_rows" in failed, tests
    assert "test_values_round_trip" in failed
    assert "test_batch_returns_one_result_per_statement" in failed
    assert any("D1_TYPE_ERROR" in tests[name]["error"] for name in failed), tests
    # Tests without bound parameters are untouched by the bug and still pass.
    assert tests["test_implements_port"]["outcome"] == "passed"


# --- 4. cron triggers: the ingest Worker's scheduled() in Pyodide ---------------------------


def test_plan_fires_each_cron_the_wrangler_configs_declare() -> None:
    """Every cron a wrangler.toml declares is fired by the plan, on a Worker exposing scheduled."""
    fired = {(s["scheduled"], s["cron"]) for s in _plan()["steps"] if "scheduled" in s}
    declared = set()
    for worker, path in CONFIGS.items():
        with path.open("rb") as f:
            declared |= {(worker, c) for c in tomllib.load(f).get("triggers", {}).get("crons", [])}
    assert declared and fired == declared


def test_scheduled_resumes_an_ingestion_whose_isolate_went_away(mesh_run: dict[str, Any]) -> None:
    """The job of an accepted document never ran (its isolate was evicted after the 202): the
    ingest Worker's real `scheduled` handler, called the way workerd calls it, resumes it."""
    methods = mesh_run["workers"]["ingest"]["entrypoints"]["workerEntrypoints"][0]["methodNames"]
    assert "scheduled" in methods
    setup = _step(mesh_run, "cron_setup")
    assert setup["ok"], setup.get("traceback", setup)
    before = setup["result"]
    accepted = _ok(before["ingest"], 202)
    assert accepted["status"] == "queued", accepted
    for poll in before["polls"]:  # nothing ran it: still queued, nothing embedded
        state = _ok(poll)
        assert state["status"] == "queued" and state["progress"]["done"] == 0, state
        assert state["progress"]["total"] >= 1, state

    fired = _step(mesh_run, "cron")
    assert fired["ok"], fired

    check = _step(mesh_run, "cron_check")
    assert check["ok"], check.get("traceback", check)
    after = check["result"]
    status = _ok(after["status"])
    assert status["status"] == "ready", (status, after["polls"])
    assert status["progress"]["done"] == status["progress"]["total"] >= 1, status
    hits = [
        h for h in _ok(after["search"])["results"] if h["document_id"] == accepted["document_id"]
    ]
    assert hits, after["search"]
    for hit in hits:
        assert after["text"][hit["char_start"] : hit["char_end"]] == hit["text"], hit
