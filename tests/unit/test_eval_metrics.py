"""Retrieval metrics against hand-computed values, and the golden-set evaluation core."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence

import pytest
from pydantic import ValidationError

from eval import metrics as eval_metrics
from kernel.contracts.rag import MAX_QUESTIONS, EvalRequest, Mode
from rag.evaluation import (
    METRICS,
    collapse_to_documents,
    evaluate_golden_set,
    mean_scores,
    mrr_at_k,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
    run_evaluation,
    score_ranking,
)

L2 = math.log2


def test_eval_metrics_module_is_the_deployed_code() -> None:
    assert eval_metrics.ndcg_at_k is ndcg_at_k  # one implementation, not a copy


# --- nDCG -------------------------------------------------------------------------------------
def test_ndcg_binary_by_hand() -> None:
    # relevant: a, b. ranking: x a y b -> DCG = 1/log2(3) + 1/log2(5); IDCG = 1 + 1/log2(3)
    qrels = {"a": 1, "b": 1}
    expected = (1 / L2(3) + 1 / L2(5)) / (1 + 1 / L2(3))
    assert ndcg_at_k(["x", "a", "y", "b"], qrels, 10) == pytest.approx(expected)
    assert expected == pytest.approx(0.6509209)


def test_ndcg_graded_by_hand() -> None:
    # grades a=3, b=2, c=1; ranking c, a, z, b
    qrels = {"a": 3, "b": 2, "c": 1}
    dcg = 1 / L2(2) + 3 / L2(3) + 0 + 2 / L2(5)  # 1 + 1.892789 + 0.861353 = 3.754142
    idcg = 3 / L2(2) + 2 / L2(3) + 1 / L2(4)  # 3 + 1.261860 + 0.5 = 4.761860
    assert ndcg_at_k(["c", "a", "z", "b"], qrels, 10) == pytest.approx(dcg / idcg)
    assert dcg / idcg == pytest.approx(0.7883767)


def test_ndcg_cutoff_and_ideal_from_qrels() -> None:
    qrels = {"a": 1, "b": 1, "c": 1}
    # k=2: only the first two positions count, and the ideal has two relevant documents too
    assert ndcg_at_k(["a", "x", "b", "c"], qrels, 2) == pytest.approx(1 / (1 + 1 / L2(3)))
    # relevant documents that were never retrieved still count in the ideal
    assert ndcg_at_k(["a"], qrels, 10) == pytest.approx(1 / (1 + 1 / L2(3) + 1 / L2(4)))


def test_ndcg_perfect_empty_and_duplicates() -> None:
    qrels = {"a": 2, "b": 1}
    assert ndcg_at_k(["a", "b", "c"], qrels, 10) == pytest.approx(1.0)
    assert ndcg_at_k([], qrels, 10) == 0.0
    assert ndcg_at_k(["a", "b"], {}, 10) == 0.0
    # a repeated id counts once, at its first position: (a, a, b) scores like (a, b)
    assert ndcg_at_k(["a", "a", "b"], qrels, 10) == pytest.approx(1.0)
    # grade <= 0 is not relevant
    assert ndcg_at_k(["x"], {"x": 0, "a": 1}, 10) == 0.0


# --- recall, precision, MRR ---------------------------------------------------------------------
def test_recall_by_hand() -> None:
    qrels = {"a": 1, "b": 1, "c": 1, "d": 1}
    ranking = ["a", "x", "b", "y", "c"]
    assert recall_at_k(ranking, qrels, 1) == 0.25
    assert recall_at_k(ranking, qrels, 3) == 0.5
    assert recall_at_k(ranking, qrels, 100) == 0.75
    assert recall_at_k(["a", "a", "a"], qrels, 3) == 0.25
    assert recall_at_k(ranking, {}, 10) == 0.0


def test_precision_by_hand() -> None:
    qrels = {"a": 1, "b": 1}
    assert precision_at_k(["a", "x", "b"], qrels, 3) == pytest.approx(2 / 3)
    assert precision_at_k(["a"], qrels, 3) == pytest.approx(1 / 3)  # short list: still / k
    assert precision_at_k(["x", "y", "z", "a"], qrels, 3) == 0.0


def test_mrr_by_hand() -> None:
    qrels = {"b": 1, "c": 2}
    assert mrr_at_k(["a", "b", "c"], qrels, 10) == 0.5
    assert mrr_at_k(["c"], qrels, 10) == 1.0
    assert mrr_at_k(["x"] * 3 + ["b"], qrels, 3) == 0.5  # duplicates collapse: b is 2nd
    assert mrr_at_k([f"x{i}" for i in range(10)] + ["b"], qrels, 10) == 0.0


def test_score_ranking_and_mean() -> None:
    qrels = {"a": 1}
    one = score_ranking(["a"], qrels)
    zero = score_ranking(["x"], qrels)
    assert set(one) == set(METRICS)
    assert one == {
        "ndcg@10": 1.0,
        "recall@10": 1.0,
        "recall@100": 1.0,
        "mrr@10": 1.0,
        "precision@3": pytest.approx(1 / 3),
    }
    mean = mean_scores([one, zero])
    assert mean["ndcg@10"] == 0.5 and mean["precision@3"] == 0.1667
    assert mean_scores([]) == dict.fromkeys(METRICS, 0.0)


def test_collapse_chunks_to_documents() -> None:
    assert collapse_to_documents(["d2", "d1", "d2", "d3", "d1"]) == ["d2", "d1", "d3"]


# --- golden set + evaluation core ---------------------------------------------------------------
class FakeSearch:
    """Dense finds a's documents, keyword finds b's, hybrid finds both."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Mode, int]] = []

    async def __call__(self, question: str, mode: Mode, depth: int) -> Sequence[str]:
        self.calls.append((question, mode, depth))
        await asyncio.sleep(0)
        rankings = {
            "dense": ["d_a", "d_x", "d_a"],  # chunk hits of the same document repeat
            "keyword": ["d_x", "d_b"],
            "hybrid": ["d_a", "d_b"],
        }
        return rankings[mode]


def golden(**extra: object) -> dict[str, object]:
    return {
        "questions": [
            {"question": "what is a?", "relevant_document_ids": ["d_a"]},
            {
                "question": "a and b?",
                "relevant_document_ids": ["d_a", "d_b"],
                "grades": {"d_b": 3},
            },
        ],
        **extra,
    }


async def test_evaluate_golden_set_per_mode() -> None:
    search = FakeSearch()
    report = await evaluate_golden_set(
        EvalRequest.model_validate(golden(per_question=True)), search, concurrency=3
    )
    assert report["questions"] == 2 and report["skipped"] == 0 and report["depth"] == 100
    assert list(report["modes"]) == ["dense", "keyword", "hybrid"]
    assert len(search.calls) == 6 and {c[2] for c in search.calls} == {100}

    # q1 relevant {a}; q2 relevant {a: 1, b: 3} (ideal: b then a)
    idcg2 = 3 + 1 / L2(3)
    dense = report["modes"]["dense"]
    assert dense["ndcg@10"] == round((1.0 + 1 / idcg2) / 2, 4)
    assert dense["recall@10"] == 0.75 and dense["mrr@10"] == 1.0
    assert dense["precision@3"] == round((1 / 3 + 1 / 3) / 2, 4)
    keyword = report["modes"]["keyword"]
    assert keyword["ndcg@10"] == round((0 + (3 / L2(3)) / idcg2) / 2, 4)
    assert keyword["mrr@10"] == 0.25  # (0 + 1/2) / 2
    hybrid = report["modes"]["hybrid"]
    assert hybrid["ndcg@10"] == round((1.0 + (1 + 3 / L2(3)) / idcg2) / 2, 4)
    assert hybrid["recall@100"] == 1.0

    per = report["per_question"]
    assert [p["question"] for p in per] == ["what is a?", "a and b?"]
    assert per[0]["keyword"]["ndcg@10"] == 0.0 and per[0]["hybrid"]["ndcg@10"] == 1.0


async def test_evaluate_selected_modes_and_concurrency_independent() -> None:
    request = EvalRequest.model_validate(golden(modes=["hybrid", "dense", "hybrid"]))
    assert request.modes == ["dense", "hybrid"]
    one = await evaluate_golden_set(request, FakeSearch(), concurrency=1)
    many = await evaluate_golden_set(request, FakeSearch(), concurrency=8)
    assert one == many and list(one["modes"]) == ["dense", "hybrid"]
    assert "per_question" not in one


async def test_run_evaluation_skips_questions_without_relevant_documents() -> None:
    report = await run_evaluation(
        [("q1", {"d_a": 1}), ("q2", {}), ("q3", {"d_z": 0})], FakeSearch(), modes=("dense",)
    )
    assert report["questions"] == 1 and report["skipped"] == 2
    assert report["modes"]["dense"]["ndcg@10"] == 1.0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"questions": []}, "questions"),
        (
            {"questions": [{"question": " ", "relevant_document_ids": ["d"]}]},
            "questions.0.question",
        ),
        ({"questions": [{"question": "q", "relevant_document_ids": []}]}, "questions.0"),
        (
            {"questions": [{"question": "q", "relevant_document_ids": ["d"], "grades": {"e": 2}}]},
            "questions.0",
        ),
        (
            {"questions": [{"question": "q", "relevant_document_ids": ["d"], "grades": {"d": 0}}]},
            "questions.0",
        ),
        ({"questions": [{"question": "q", "relevant_document_ids": ["d"], "x": 1}]}, "questions.0"),
        (
            {"questions": [{"question": "q", "relevant_document_ids": ["d"]}], "modes": ["bm25"]},
            "modes.0",
        ),
        (
            {
                "questions": [{"question": "q", "relevant_document_ids": ["d"]}]
                * (MAX_QUESTIONS + 1)
            },
            "questions",
        ),
    ],
)
def test_golden_set_validation(body: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        EvalRequest.model_validate(body)
    where = ".".join(str(p) for p in info.value.errors()[0]["loc"])
    assert where.startswith(field)


def test_golden_set_defaults_and_grades() -> None:
    request = EvalRequest.model_validate(
        {
            "questions": [
                {"question": "q", "relevant_document_ids": ["d1", "d2", "d1"], "grades": {"d2": 4}}
            ]
        }
    )
    assert request.modes == ["dense", "keyword", "hybrid"]
    assert request.questions[0].qrels() == {"d1": 1, "d2": 4}
