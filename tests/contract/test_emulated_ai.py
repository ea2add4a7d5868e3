"""The AI contract against the emulator, plus emulator-only behaviour."""

from __future__ import annotations

import pytest

from emulator.ai import EMBEDDING_MODEL, GENERATION_MODEL, EmulatedAI
from kernel.bindings.ports import BindingLimitError
from kernel.domain.prompt_format import format_grounded_prompt
from tests.contract.ai_contract import AIContract

pytestmark = pytest.mark.slow  # loads the local embedding model (once per session)


@pytest.fixture(scope="session")
def ai() -> EmulatedAI:
    return EmulatedAI()


class TestEmulatedAI(AIContract):
    async def test_describe_names_every_stand_in(self, ai: EmulatedAI) -> None:
        described = ai.describe()
        assert described[EMBEDDING_MODEL]["dimensions"] == 384
        assert all(entry["stand_in"] is True for entry in described.values())
        assert "not bge-reranker-base" in described["@cf/baai/bge-reranker-base"]["served_by"]

    async def test_long_text_truncates_by_default_and_fails_when_asked(
        self, ai: EmulatedAI
    ) -> None:
        long_text = "word " * 600
        out = await ai.run(EMBEDDING_MODEL, {"text": [long_text]})
        assert out["shape"] == [1, 384]
        with pytest.raises(BindingLimitError):
            await ai.run(EMBEDDING_MODEL, {"text": [long_text], "truncate_inputs": False})

    async def test_any_cf_instruct_model_generates(self, ai: EmulatedAI) -> None:
        prompt = format_grounded_prompt(
            ["The library closes at 9 pm."], "When does the library close?"
        )
        a = await ai.run(GENERATION_MODEL, {"prompt": prompt})
        b = await ai.run("@cf/meta/llama-3.3-70b-instruct-fp8-fast", {"prompt": prompt})
        assert a == b
        assert a["response"] == "The library closes at 9 pm. [1]"

    async def test_max_tokens_cuts_at_a_token_boundary_and_keeps_the_citation(
        self, ai: EmulatedAI
    ) -> None:
        source = "The library closes at nine in the evening on weekdays and at noon on Sundays."
        prompt = format_grounded_prompt([source], "When does the library close?")
        out = await ai.run(GENERATION_MODEL, {"prompt": prompt, "max_tokens": 6})
        quote, marker = out["response"].rsplit(" ", 1)
        assert marker == "[1]"
        assert source.startswith(quote) and len(quote) < len(source)
        assert out["usage"]["completion_tokens"] <= 6


async def test_json_mode_answers_the_claims_schema_with_verbatim_quotes(ai: EmulatedAI) -> None:
    from llm.claims import CLAIMS_SCHEMA

    sources = ["The library closes at 9 pm.", "The gym opens at 7 am."]
    prompt = format_grounded_prompt(sources, "When does the library close?")
    json_mode = {"type": "json_schema", "json_schema": CLAIMS_SCHEMA}
    out = await ai.run(GENERATION_MODEL, {"prompt": prompt, "response_format": json_mode})
    (claim,) = out["response"]["claims"]  # the object itself, as Workers AI JSON mode gives it
    assert claim == {"text": "The library closes at 9 pm.", "source": 1, "quote": claim["text"]}
    assert out["usage"]["completion_tokens"] > 0
    unanswerable = format_grounded_prompt(sources, "Who painted the Mona Lisa?")
    out = await ai.run(GENERATION_MODEL, {"prompt": unanswerable, "response_format": json_mode})
    assert out["response"] == {"claims": []}  # abstention: no claims


async def test_json_mode_refusals(ai: EmulatedAI) -> None:
    from kernel.bindings.ports import BindingError
    from llm.claims import CLAIMS_SCHEMA

    prompt = format_grounded_prompt(["The library closes at 9 pm."], "When?")
    other = {"type": "json_schema", "json_schema": {"type": "object", "properties": {"x": {}}}}
    with pytest.raises(BindingError, match="stand-in"):  # a schema the composer cannot fill
        await ai.run(GENERATION_MODEL, {"prompt": prompt, "response_format": other})
    with pytest.raises(BindingError, match=r"response_format\.type"):
        await ai.run(GENERATION_MODEL, {"prompt": prompt, "response_format": {"type": "xml"}})
    json_mode = {"type": "json_schema", "json_schema": CLAIMS_SCHEMA}
    with pytest.raises(BindingError, match="not supported with stream mode"):  # AiError 5023
        await ai.stream(GENERATION_MODEL, {"prompt": prompt, "response_format": json_mode})
