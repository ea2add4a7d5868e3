"""Results of a deploy run, and how they are shown: a table per tenant, then the details."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Literal, TextIO

Status = Literal["ok", "failed", "skipped"]
STEPS = ("validate", "provision", "migrate", "config", "deploy", "smoke")


@dataclass
class Step:
    status: Status = "skipped"
    detail: str = ""


@dataclass
class StackRun:
    """One stack in one environment. Shared by every tenant that lives on it."""

    stack: str
    env: str
    account: str
    tenants: list[str]
    steps: dict[str, Step] = field(default_factory=lambda: {s: Step() for s in STEPS})
    created: list[str] = field(default_factory=list)
    applied: list[str] = field(default_factory=list)
    deployed: list[str] = field(default_factory=list)
    secrets_set: list[str] = field(default_factory=list)  # names only, never values
    configs: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    plan: list[str] = field(default_factory=list)  # --dry-run: what would happen

    @property
    def failed(self) -> bool:
        return any(s.status == "failed" for s in self.steps.values())

    def fail(self, step: str, detail: str) -> None:
        self.steps[step] = Step("failed", detail)


@dataclass
class TenantRow:
    tenant: str
    env: str
    stack: StackRun
    policy: Step = field(default_factory=Step)

    @property
    def failed(self) -> bool:
        return self.stack.failed or self.policy.status == "failed"


def render(rows: list[TenantRow], out: TextIO, *, dry_run: bool) -> None:
    headers = ["tenant", "env", "stack", *STEPS, "policy"]
    table = [
        [r.tenant, r.env, r.stack.stack, *(r.stack.steps[s].status for s in STEPS), r.policy.status]
        for r in rows
    ]
    widths = [max(len(h), *(len(row[i]) for row in table)) for i, h in enumerate(headers)]
    for row in [headers, *table]:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip(), file=out)
    for run in _unique(rows):
        print(
            f"\n{run.stack}/{run.env} (account {run.account}; {', '.join(run.tenants)})", file=out
        )
        for line in run.plan:
            print(f"  {line}", file=out)
        for label, items in (
            ("created", run.created),
            ("migrations applied", _span(run.applied)),
            ("deployed", run.deployed),
            ("secrets set", run.secrets_set),
            ("configs", [] if dry_run else run.configs),
        ):
            if items:
                print(f"  {label}: {', '.join(items)}", file=out)
        for name, step in run.steps.items():
            if step.status == "failed" or (step.detail and step.status == "ok"):
                print(f"  {name} {step.status}: {step.detail}", file=out)
        for problem in run.problems:
            print(f"  problem: {problem}", file=out)
    for r in rows:
        if r.policy.detail:
            print(f"\npolicy {r.tenant}/{r.env} {r.policy.status}: {r.policy.detail}", file=out)
    failed = [r for r in rows if r.failed]
    verdict = "dry run" if dry_run else "deploy"
    if failed:
        names = ", ".join(f"{r.tenant}/{r.env}" for r in failed)
        print(f"\n{verdict}: {len(failed)} of {len(rows)} failed: {names}", file=out)
    else:
        print(f"\n{verdict}: {len(rows)} ok", file=out)


def render_json(rows: list[TenantRow], out: TextIO) -> None:
    payload = {
        "ok": not any(r.failed for r in rows),
        "stacks": {f"{run.stack}/{run.env}": asdict(run) for run in _unique(rows)},
        "tenants": [
            {
                "tenant": r.tenant,
                "env": r.env,
                "stack": f"{r.stack.stack}/{r.env}",
                "policy": asdict(r.policy),
                "failed": r.failed,
            }
            for r in rows
        ],
    }
    print(json.dumps(payload, indent=2), file=out)


def _span(names: list[str]) -> list[str]:
    return names if len(names) <= 3 else [f"{len(names)} ({names[0]} … {names[-1]})"]


def _unique(rows: list[TenantRow]) -> list[StackRun]:
    seen: dict[int, StackRun] = {}
    for r in rows:
        seen.setdefault(id(r.stack), r.stack)
    return list(seen.values())
