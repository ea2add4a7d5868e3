"""What the deploy reads from the checked-in tree, and the configs it generates from it."""

from __future__ import annotations

import re
import shutil
import tomllib
from pathlib import Path
from typing import Any

import pytest

from edgerag_cli.deploy import config, repo
from edgerag_cli.deploy.manifest import load_manifest
from gateway import ratelimit, tenant_limits
from llm import providers

MANIFEST = repo.ROOT / "deploy" / "tenants.toml"
WORKERS_SRC = repo.ROOT / "workers"


def source_of(worker: str) -> str:
    files = [*(WORKERS_SRC / worker).rglob("*.py"), *(WORKERS_SRC / "kernel").rglob("*.py")]
    return "\n".join(p.read_text() for p in files)


# --- the checked-in tree ------------------------------------------------------------------------
def test_deploy_order_and_vectorize_come_from_the_checked_in_configs() -> None:
    source = repo.load_repo()
    assert source.order == ["llm", "ingest", "rag", "gateway"]  # callees first
    assert source.vectorize == repo.VectorizeSpec(
        384,
        "cosine",
        (("document_id", "string"), ("visibility", "string"), ("owner_id", "string")),
    )
    assert source.migration_names() == sorted(
        p.name for p in (repo.ROOT / "migrations").glob("*.sql")
    )
    ingest = {b.name for b in source.configs["ingest"].bindings}
    assert ingest == {"DB", "R2", "VECTORIZE", "AI", "SELF", "LLM"}


def test_secret_and_var_tables_match_the_code_that_reads_them() -> None:
    for worker, names in repo.REQUIRED_SECRETS.items():
        code = source_of(worker)
        for name in names:
            assert f'"{name}"' in code, f"{worker} does not read {name}"
    for worker, names in repo.OPTIONAL_SECRETS.items():
        for name in names:
            assert f'"{name}"' in source_of(worker), name
    for var, readers in repo.MANAGED_VARS.items():
        for worker in readers:
            assert f'"{var}"' in source_of(worker), f"{worker} does not read {var}"
    assert set(repo.PROVIDERS) == set(providers.DEFAULT_MODELS)
    # llm/providers.py reads f"{prefix}_API_KEY" with prefix = NAME.upper() with - as _
    for name, secret in repo.PROVIDER_SECRETS.items():
        assert secret == f"{name.upper().replace('-', '_')}_API_KEY"
    assert set(repo.PROVIDER_SECRETS) == set(repo.PROVIDERS) - {"workers-ai"}
    assert set(ratelimit.DEFAULT_LIMITS) == repo.RATE_CLASSES
    assert tenant_limits.TUNABLE == repo.TUNABLE_CLASSES


def test_required_secrets_follow_the_provider_chain() -> None:
    assert repo.required_secrets("gateway", ["workers-ai"], {}) == [
        "EDGERAG_OPERATOR_TOKEN",
        "EDGERAG_JWT_KEYS",
        "EDGERAG_JWT_ACTIVE_KID",
    ]
    assert repo.required_secrets("llm", ["workers-ai"], {}) == []
    assert repo.required_secrets("llm", ["anthropic", "openai"], {}) == [
        "ANTHROPIC_API_KEY",
        "OPENAI_API_KEY",
    ]
    # a keyless local OpenAI-compatible server (llama.cpp, Ollama): the base URL is enough
    assert repo.required_secrets("llm", ["openai"], {"OPENAI_BASE_URL": "http://10.0.0.2"}) == []


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the checked-in configs and migrations to break."""
    for rel in repo.CONFIG_FILES.values():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(repo.ROOT / rel, tmp_path / rel)
    shutil.copytree(repo.ROOT / "migrations", tmp_path / "migrations")
    return tmp_path


def test_a_binding_the_deploy_cannot_provision_is_refused(tree: Path) -> None:
    rag = tree / "workers/rag/wrangler.toml"
    rag.write_text(rag.read_text() + '\n[[queues.producers]]\nbinding = "JOBS"\nqueue = "q"\n')
    with rag.open("a") as f:
        f.write('\n[[hyperdrive]]\nbinding = "PG"\nid = "x"\n')
    with pytest.raises(repo.RepoError) as info:
        repo.load_repo(tree)
    assert info.value.problems == [
        f"workers/rag/wrangler.toml: [{key}] is a binding the per-tenant deploy does not"
        " provision; teach edgerag_cli/deploy (repo.py, config.py, provision.py) about it"
        for key in ("queues", "hyperdrive")
    ]


def test_a_service_cycle_and_two_databases_are_refused(tree: Path) -> None:
    llm = tree / "workers/llm/wrangler.toml"
    text = llm.read_text().replace('database_name = "edgerag"', 'database_name = "other"')
    llm.write_text(text + '\n[[services]]\nbinding = "GW"\nservice = "edgerag-gateway"\n')
    with pytest.raises(repo.RepoError) as info:
        repo.load_repo(tree)
    found = " | ".join(info.value.problems)
    assert "[[d1_databases]]: the configs bind 2 different d1 resources (edgerag, other)" in found
    assert "service bindings form a cycle" in found


def test_a_build_step_that_no_longer_vendors_is_refused(tree: Path) -> None:
    gw = tree / "wrangler.toml"
    gw.write_text(gw.read_text().replace("python3 scripts/vendor_pyodide_wheels.py stage .;", ""))
    [problem] = config.build_problems(repo.load_repo(tree))
    assert problem.startswith("wrangler.toml: build.command does not run")


# --- generated configs ------------------------------------------------------------------------
def resolved(base: Path, value: str) -> Path:
    return (base / value).resolve()


def paths_of(data: dict[str, Any]) -> list[str]:
    found = [data["main"], data["base_dir"], *data["build"]["watch_dir"]]
    found += [db["migrations_dir"] for db in data.get("d1_databases", [])]
    if "assets" in data:
        found.append(data["assets"]["directory"])
    return found


@pytest.mark.parametrize("worker", list(repo.CONFIG_FILES))
def test_generated_configs_keep_the_checked_in_ones_but_the_tenant_parts(worker: str) -> None:
    source = repo.load_repo()
    stack = load_manifest(MANIFEST).stacks()["acme-textbooks"]
    ids = config.ResourceIds(d1="1b4c0a3e-0000-4000-8000-000000000001", kv="ab" * 16)
    [gen] = [g for g in config.generate(source, stack, "prod", ids) if g.worker == worker]
    checked = source.configs[worker]
    data = tomllib.loads(config.dumps(gen.data))
    assert data == gen.data  # what is written reads back as the same config

    assert data["name"] == f"edgerag-acme-textbooks-prod-{worker}" == gen.script
    # everything but the tenant's parts and the paths (checked below) is the checked-in config's
    tenant_parts = {
        "name",
        "main",
        "base_dir",
        "build",
        "vars",
        "routes",
        "services",
        *RESOURCE_KEYS,
    }
    for key, value in checked.data.items():
        if key == "assets":
            assert {**data[key], "directory": value["directory"]} == value
        elif key not in tenant_parts:
            assert data[key] == value, key  # compatibility, crons, [ai], workers_dev, ...
    assert data["build"]["command"] == checked.data["build"]["command"].replace(
        re.search(r"vendor_pyodide_wheels\.py stage ([^;\s]+)", checked.data["build"]["command"])[
            0
        ],  # type: ignore[index]
        "vendor_pyodide_wheels.py stage .wrangler/deploy/acme-textbooks/prod",
    )
    # every relative path reaches the same file from the generated config's directory
    here, there = repo.ROOT / checked.path.parent, repo.ROOT / gen.path.parent
    assert [resolved(there, p) for p in paths_of(data)] == [
        resolved(here, p) for p in paths_of(checked.data)
    ]

    assert {b.name for b in checked.bindings} == _binding_names(data)
    for db in data.get("d1_databases", []):
        assert (db["database_name"], db["database_id"]) == ("edgerag-acme-textbooks-prod", ids.d1)
    for kv in data.get("kv_namespaces", []):
        assert kv["id"] == ids.kv
    for bucket in data.get("r2_buckets", []):
        assert bucket["bucket_name"] == "edgerag-acme-textbooks-prod-originals"
    for index in data.get("vectorize", []):
        assert index["index_name"] == "edgerag-acme-textbooks-prod-chunks"
    for svc in data.get("services", []):
        assert re.fullmatch(r"edgerag-acme-textbooks-prod-(llm|ingest|rag|gateway)", svc["service"])
        if svc["binding"] == "SELF":
            assert svc["service"] == data["name"]
    expected_vars = {
        "gateway": {
            "EDGERAG_MAX_UPLOAD_BYTES": "104857600",
            "EDGERAG_DAILY_TOKEN_BUDGET": "5000000",
            "EDGERAG_RATE_LIMITS": '{"answer": {"tenant": [20000, 3600], "user": [60, 3600]}}',
            "EDGERAG_RATE_CEILINGS": '{"answer": {"tenant": [40000, 3600], "user": [120, 3600]}}',
        },
        "ingest": {
            "EDGERAG_MAX_UPLOAD_BYTES": "104857600",
            "EDGERAG_R2_ENDPOINT": "https://9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b.r2.cloudflarestorage.com",
            "EDGERAG_R2_BUCKET": "edgerag-acme-textbooks-prod-originals",
        },
        "llm": {
            "EDGERAG_LLM_PROVIDERS": "anthropic,workers-ai",
            "EDGERAG_ANTHROPIC_MODEL": "claude-sonnet-4-5",
        },
        "rag": {},
    }
    assert {**checked.data.get("vars", {}), **expected_vars[worker]} == data.get("vars", {})
    if worker == "gateway":
        assert data["routes"] == [{"pattern": "rag.acme-textbooks.example", "custom_domain": True}]
    else:
        assert "routes" not in data and data.get("workers_dev") is False


RESOURCE_KEYS = ("d1_databases", "kv_namespaces", "r2_buckets", "vectorize")


def _binding_names(data: dict[str, Any]) -> set[str]:
    names = {b["binding"] for key in (*RESOURCE_KEYS, "services") for b in data.get(key, [])}
    return names | {data[k]["binding"] for k in ("ai", "assets") if "binding" in data.get(k, {})}


def test_toml_writer_round_trips_what_configs_hold() -> None:
    data = {
        "name": 'a "quoted" name\\ with\ttabs and ünïcode',
        "n": 3,
        "f": 1.5,
        "flag": False,
        "list": ["a", "b"],
        "inline": [{"pattern": "x.example", "custom_domain": True}, {"pattern": "y"}],
        "table": {"key with space": "v", "nested": {"deep": [1, 2]}},
        "tables": [{"binding": "A", "sub": {"x": 1}}, {"binding": "B"}],
    }
    assert tomllib.loads(config.dumps(data)) == data
