"""deploy/tenants.toml: strict parsing, every problem named by tenant and field, stacks."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import pytest

from edgerag_cli.deploy import repo
from edgerag_cli.deploy.manifest import ManifestError, load_manifest, parse_manifest

MANIFEST = repo.ROOT / "deploy" / "tenants.toml"


@pytest.fixture
def raw() -> dict[str, Any]:
    return tomllib.loads(MANIFEST.read_text())


def problems(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(ManifestError) as info:
        parse_manifest(raw, "tenants.toml")
    return info.value.problems


def test_the_example_has_three_tenants_on_three_stacks() -> None:
    manifest = load_manifest(MANIFEST)
    plans = {name: t.plan for name, t in manifest.tenants.items()}
    assert plans == {
        "lincoln-high": "shared",
        "acme-textbooks": "dedicated",
        "northwind-kb": "dedicated",
    }
    stacks = manifest.stacks()
    assert {n: s.tenants for n, s in stacks.items()} == {
        "shared-schools": ("lincoln-high",),
        "acme-textbooks": ("acme-textbooks",),
        "northwind-kb": ("northwind-kb",),
    }
    shared = stacks["shared-schools"]
    assert shared.worker_name("gateway", "prod") == "edgerag-shared-schools-prod-gateway"
    assert shared.resource("vectorize", "dev") == "edgerag-shared-schools-dev-chunks"
    assert shared.domain("stage") == "stage.schools.edgerag.example"
    assert shared.secret_env("EDGERAG_JWT_KEYS") == "SHARED_SCHOOLS_EDGERAG_JWT_KEYS"
    kb = stacks["northwind-kb"]
    assert (kb.resource("d1", "prod"), kb.resource("r2", "dev")) == (
        "northwind-kb-prod",
        "northwind-kb-dev-files",
    )
    assert kb.resource("kv", "prod") == "edgerag-northwind-kb-prod-cache"  # the default
    assert kb.secret_env("OPENAI_API_KEY") == "NORTHWIND_OPENAI_API_KEY"
    assert manifest.stack_of("lincoln-high") is not None
    assert manifest.stack_of("lincoln-high").account.api_token_env == "CF_TOKEN_SCHOOLS"


def test_two_shared_tenants_of_one_account_share_one_stack(raw: dict[str, Any]) -> None:
    raw["tenants"]["roosevelt-middle"] = {
        "plan": "shared",
        "account": "schools",
        "environments": ["prod"],
    }
    stacks = parse_manifest(raw, "tenants.toml").stacks()
    assert stacks["shared-schools"].tenants == ("lincoln-high", "roosevelt-middle")
    assert stacks["shared-schools"].environments == ("dev", "stage", "prod")


def test_every_problem_names_the_tenant_and_the_field(raw: dict[str, Any]) -> None:
    acme = raw["tenants"]["acme-textbooks"]
    acme["colour"] = "blue"
    acme["environments"] = ["stage", "prod", "qa"]
    del acme["domains"]["stage"]
    acme["llm_providers"] = ["anthropic", "mistral"]
    acme["limits"]["max_upload_bytes"] = "100MB"
    kb = raw["tenants"]["northwind-kb"]
    kb["vars"]["llm"]["OPENAI_API_KEY"] = "sk-do-not-put-me-here"
    kb["vars"]["gateway"] = {"EDGERAG_DAILY_TOKEN_BUDGET": "5"}
    kb["limits"]["rate_limits"]["teleport"] = {"user": [1, 60]}
    lincoln = raw["tenants"]["lincoln-high"]
    lincoln["domains"] = {"prod": "lincoln.example"}
    lincoln["policy"]["rate_limits"]["login"] = {"user": 5}
    raw["tenants"]["ghost"] = {"plan": "shared", "account": "nowhere", "environments": ["prod"]}
    raw["tenants"]["Bad_Name"] = {"plan": "dedicated"}
    raw["tenants"]["orphan"] = {"plan": "premium", "account": "schools", "environments": ["dev"]}
    found = problems(raw)
    want = [
        "tenants.acme-textbooks.colour: unknown field",
        "tenants.acme-textbooks.environments.2: Input should be 'dev', 'stage' or 'prod'",
        "tenants.acme-textbooks.llm_providers.1: Input should be 'workers-ai', 'anthropic',",
        "tenants.acme-textbooks.limits.max_upload_bytes: Input should be a valid integer",
        "tenants.lincoln-high.domains: a shared-plan tenant has no domains of its own (it is the"
        " shared stack's: [accounts.schools.shared])",
        "tenants.Bad_Name: names are 2-32 of a-z, 0-9 and '-'",
        "tenants.orphan.plan: must be 'shared' or 'dedicated', got 'premium'",
    ]
    for message in want:
        assert any(message in p for p in found), (message, found)
    assert all(p.startswith("tenants.toml: ") for p in found)
    # The cross-checks run once the fields themselves are valid: fix those, see the rest.
    acme["environments"], acme["llm_providers"] = ["stage", "prod"], ["anthropic"]
    acme["limits"]["max_upload_bytes"] = 1 << 20
    del acme["colour"], lincoln["domains"], raw["tenants"]["Bad_Name"], raw["tenants"]["orphan"]
    found = problems(raw)
    for message in [
        "tenants.acme-textbooks.domains.stage: required (the gateway's custom domain)",
        "tenants.northwind-kb.vars.llm.OPENAI_API_KEY: looks like a secret",
        "tenants.northwind-kb.vars.gateway.EDGERAG_DAILY_TOKEN_BUDGET: set by the deploy",
        "tenants.northwind-kb.limits.rate_limits.teleport: unknown rate class",
        "tenants.lincoln-high.policy.rate_limits.login: not a class a tenant may tune",
        "tenants.ghost.account: no [accounts.nowhere] in the manifest",
    ]:
        assert any(message in p for p in found), (message, found)


def test_limits_above_their_ceiling_are_refused(raw: dict[str, Any]) -> None:
    limits = raw["accounts"]["schools"]["shared"]["limits"]
    limits["rate_limits"]["answer"]["user"] = [100, 3600]  # ceiling: [60, 3600]
    [problem] = problems(raw)
    assert "accounts.schools.shared.limits.rate_limits.answer.user: [100, 3600] is above" in problem


def test_no_two_stacks_or_environments_share_a_name(raw: dict[str, Any]) -> None:
    twin = copy.deepcopy(raw["tenants"]["northwind-kb"])
    twin["domains"] = {"dev": "kb2.dev.northwind.example", "prod": "kb.northwind.example"}
    raw["tenants"]["northwind-kb2"] = twin  # same resource patterns, same prod domain
    raw["tenants"]["acme-textbooks"]["resources"] = {"d1": "acme-db"}  # no {env}: stage = prod
    found = problems(raw)
    assert any(
        "northwind-kb2/dev and northwind-kb/dev would share the d1 'northwind-kb-dev'" in p
        for p in found
    ), found
    assert any("would share the domain 'kb.northwind.example'" in p for p in found)
    assert any(
        "acme-textbooks/prod and acme-textbooks/stage would share the d1 'acme-db'" in p
        for p in found
    )


def test_not_toml_and_wrong_version(tmp_path: Path, raw: dict[str, Any]) -> None:
    bad = tmp_path / "t.toml"
    bad.write_text("[tenants\n")
    with pytest.raises(ManifestError, match="not TOML"):
        load_manifest(bad)
    raw["version"] = 2
    assert problems(raw) == ["tenants.toml: version: must be 1"]
