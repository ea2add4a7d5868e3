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
