"""`python -m eval.answers` (`make eval-answers`): answer quality of each local option, and the
calibration of `confidence`.

The questions (tests/eval/answer_questions.json) each name a Cranfield abstract, a verbatim
answer span in it and the sentence holding it; a few have no answer in the collection. Those
abstracts and `--distractors` others are ingested into a fresh mesh over HTTP; every question
goes to `POST /v1/answer`. Scored:

- containment: the answer text contains the expected span (whitespace- and case-folded);
- citation correctness: a citation points into the expected document and its quote overlaps
  the expected sentence;
- abstention: questions without an answer should abstain, the others should not.

Confidence is recorded *before* calibration (`rag.answer.CALIBRATION` switched off for the
run), so the logistic fit `P(correct) = 1 / (1 + e^-(a·raw + b))` over the answered questions,
its expected calibration error (ECE, 5 equal-width bins) and a reliability table can be
reported for the raw score, the committed calibration and the new fit, and the fit's
leave-one-out ECE and Brier score beside the base rate's (in-sample ECE flatters a fit). Writes
eval/answer_results.json. Nothing here is a test; tests/eval/test_answer_quality.py gates on it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import re
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from eval.datasets import load_collection
from eval.harness import MESH_VARS, OPERATOR_TOKEN, _ok, ingest_documents, new_tenant
from rag.answer import CALIBRATION

REPO = Path(__file__).resolve().parents[1]
QUESTIONS = REPO / "tests" / "eval" / "answer_questions.json"
RESULTS = Path(__file__).resolve().parent / "answer_results.json"
BINS = 5
# Read at import, before a run switches it off to record raw scores.
COMMITTED_CALIBRATION = tuple(CALIBRATION) if CALIBRATION else None


def fold(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def load_questions(path: Path = QUESTIONS) -> list[dict[str, Any]]:
    return list(json.loads(path.read_text(encoding="utf-8"))["questions"])


def score(
    question: dict[str, Any], body: dict[str, Any], doc_ids: dict[str, str]
) -> dict[str, Any]:
    """One answer against its question: correct, contains, cited_right, abstained."""
    abstained = bool(body["abstained"])
    if question["document_id"] is None:
        return {"answerable": False, "abstained": abstained, "correct": abstained}
    contains = fold(question["answer"]) in fold(body["answer"])
    sentence = fold(question["sentence"])
    cited_right = any(
        doc_ids.get(c["document_id"]) == question["document_id"]
        and (
            fold(c["quote"]) in sentence
            or sentence in fold(c["quote"])
            or fold(question["answer"]) in fold(c["quote"])
        )
        for c in body["citations"]
    )
    return {
        "answerable": True,
        "abstained": abstained,
        "contains": contains,
        "cited_right": cited_right,
        "correct": (not abstained) and contains and cited_right,
    }


def logistic_fit(x: list[float], y: list[bool], iters: int = 100) -> tuple[float, float]:
    """(a, b) maximizing the likelihood of y under sigmoid(a·x + b): Newton's method with a
    small ridge term, since a few dozen points can be separable."""
    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    w = np.zeros(2)
    design = np.stack([xs, np.ones_like(xs)], axis=1)
    ridge = 1e-2 * np.eye(2)
    for _ in range(iters):
        p = 1 / (1 + np.exp(-(design @ w)))
        gradient = design.T @ (p - ys) + ridge @ w
        hessian = design.T @ (design * (p * (1 - p))[:, None]) + ridge
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if float(np.abs(step).max()) < 1e-9:
            break
    return round(float(w[0]), 4), round(float(w[1]), 4)


def apply(fit: tuple[float, float] | None, raw: float) -> float:
    if fit is None:
        return raw
    return 1 / (1 + math.exp(-(fit[0] * raw + fit[1])))


def held_out(raw: list[float], right: list[bool]) -> dict[str, Any]:
    """Leave-one-out: each answer's confidence from a fit without it — ECE and Brier score out
    of sample, beside the Brier score of always saying the base rate (a score that does not
    discriminate cannot beat it)."""
    predicted = []
    for i in range(len(raw)):
        rest_x, rest_y = raw[:i] + raw[i + 1 :], right[:i] + right[i + 1 :]
        fit = logistic_fit(rest_x, rest_y) if len(set(rest_y)) == 2 else None
        predicted.append(apply(fit, raw[i]) if fit else sum(rest_y) / len(rest_y))
    base = sum(right) / len(right)
    ece, table = reliability(predicted, right)
    return {
        "ece": ece,
        "brier": round(
            sum((p - y) ** 2 for p, y in zip(predicted, right, strict=True)) / len(right), 4
        ),
        "base_rate_brier": round(sum((base - y) ** 2 for y in right) / len(right), 4),
        "reliability": table,
    }


def reliability(conf: list[float], correct: list[bool]) -> tuple[float, list[dict[str, Any]]]:
    """ECE and the reliability table: per bin, count, mean confidence, share correct."""
    table, ece, n = [], 0.0, len(conf)
    for i in range(BINS):
        lo, hi = i / BINS, (i + 1) / BINS
        inside = [k for k, c in enumerate(conf) if lo <= c < hi or (i == BINS - 1 and c == 1.0)]
        if not inside:
            table.append({"bin": f"{lo:.1f}-{hi:.1f}", "n": 0})
            continue
        mean_conf = sum(conf[k] for k in inside) / len(inside)
        accuracy = sum(correct[k] for k in inside) / len(inside)
        ece += len(inside) / n * abs(mean_conf - accuracy)
        table.append(
            {
                "bin": f"{lo:.1f}-{hi:.1f}",
                "n": len(inside),
                "confidence": round(mean_conf, 3),
                "correct": round(accuracy, 3),
            }
        )
    return round(ece, 4), table


async def run_option(
    name: str, settings: dict[str, str], questions: list[dict[str, Any]], distractors: int
) -> dict[str, Any]:
    from emulator.ai import EmulatedAI
    from emulator.dev import AsgiGateway
    from emulator.mesh import build_mesh

    collection = load_collection("cranfield")
    wanted = {q["document_id"] for q in questions if q["document_id"]}
    answer_docs = [d for d in collection.documents if d.id in wanted]
    others = [d for d in collection.documents if d.id not in wanted and d.text.strip()]
    documents = answer_docs + others[:distractors]
    with tempfile.TemporaryDirectory() as tmp:
        mesh = build_mesh(
            Path(tmp),
            operator_token=OPERATOR_TOKEN,
            ai=EmulatedAI(),
            vars={**MESH_VARS, **settings},
        )
        transport = httpx.ASGITransport(app=AsgiGateway(mesh))
        async with httpx.AsyncClient(
            transport=transport, base_url="http://eval", timeout=600
        ) as client:
            auth = await new_tenant(client, "answers")
            doc_ids = await ingest_documents(client, auth, documents)
            rows = []
            started = time.perf_counter()
            for q in questions:
                body = _ok(
                    await client.post("/v1/answer", json={"query": q["question"]}, headers=auth),
                    200,
                )
                rows.append(
                    {
                        "question": q["question"],
                        "confidence_raw": body["confidence"],
                        "answer": body["answer"][:300],
                        **score(q, body, doc_ids),
                    }
                )
            seconds = time.perf_counter() - started
        await mesh.drain()
    return summarize(name, rows, seconds)


def summarize(name: str, rows: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
    answerable = [r for r in rows if r["answerable"]]
    unanswerable = [r for r in rows if not r["answerable"]]
    answered = [r for r in rows if not r["abstained"] and r["answerable"]]
    raw = [r["confidence_raw"] for r in answered]
    right = [bool(r["correct"]) for r in answered]
    report: dict[str, Any] = {
        "option": name,
        "questions": len(rows),
        "answerable": len(answerable),
        "correct": round(sum(r["correct"] for r in answerable) / max(1, len(answerable)), 3),
        "containment": round(sum(r["contains"] for r in answerable) / max(1, len(answerable)), 3),
        "citation_correct": round(
            sum(r["cited_right"] for r in answerable) / max(1, len(answerable)), 3
        ),
        "false_abstentions": sum(r["abstained"] for r in answerable),
        "abstained_when_unanswerable": f"{sum(r['abstained'] for r in unanswerable)}/{len(unanswerable)}",
        "seconds_per_question": round(seconds / max(1, len(rows)), 3),
    }
    if len(set(right)) == 2:
        fit = logistic_fit(raw, right)
        # A negative slope means a higher raw score went with *fewer* correct answers: the
        # score does not discriminate, and a decreasing map would be no calibration to ship.
        report["raw_score_discriminates"] = fit[0] > 0
        committed = COMMITTED_CALIBRATION
        for label, f in (("raw", None), ("committed", committed), ("fitted", fit)):
            conf = [apply(f, x) for x in raw]  # type: ignore[arg-type]
            ece, table = reliability(conf, right)
            report[f"calibration_{label}"] = {"fit": f, "ece": ece, "reliability": table}
        report["calibration_held_out"] = held_out(raw, right)
    report["per_question"] = rows
    return report


def start_llama() -> tuple[subprocess.Popen[str], str] | None:
    from bench.answer import start_llama as start

    return start()


async def run_all(args: argparse.Namespace) -> list[dict[str, Any]]:
    import rag.answer

    rag.answer.CALIBRATION = None  # record the raw score; calibrations are applied offline
    questions = load_questions()
    reports = [
        await run_option(
            "extractive stand-in",
            {"EDGERAG_LLM_PROVIDERS": "workers-ai"},
            questions,
            args.distractors,
        )
    ]
    if not args.skip_llama and (llama := start_llama()) is not None:
        process, base = llama
        try:
            settings = {
                "EDGERAG_LLM_PROVIDERS": "openai",
                "OPENAI_BASE_URL": base,
                "EDGERAG_OPENAI_MODEL": "smollm2",
            }
            reports.append(
                await run_option("llama.cpp SmolLM2-135M", settings, questions, args.distractors)
            )
        finally:
            process.terminate()
            process.wait(timeout=30)
    return reports


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--distractors", type=int, default=200)
    parser.add_argument("--skip-llama", action="store_true")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    from eval.harness import quiet_request_logs

    with quiet_request_logs():
        reports = asyncio.run(run_all(args))
    document = {
        "command": "python -m eval.answers",
        "distractors": args.distractors,
        "options": reports,
    }
    args.output.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    for r in reports:
        print(
            f"{r['option']}: correct {r['correct']}, containment {r['containment']}, "
            f"citations {r['citation_correct']}, false abstentions {r['false_abstentions']}, "
            f"abstained when unanswerable {r['abstained_when_unanswerable']}"
        )
        for label in ("raw", "committed", "fitted"):
            c = r.get(f"calibration_{label}")
            if c:
                print(f"  ECE {label:<9} {c['ece']:.3f}  fit {c['fit']}")
                for row in c["reliability"]:
                    print(f"    {row}")
        held = r.get("calibration_held_out")
        if held:
            print(
                f"  held out (leave-one-out): ECE {held['ece']:.3f}, Brier {held['brier']:.4f}"
                f" (always the base rate: {held['base_rate_brier']:.4f})"
            )


if __name__ == "__main__":
    main()
