"""The result schemas of :func:`avbench.benchmarks.evaluate`: one outcome per task, one result
per (model, benchmark) pair."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from avbench.benchmarks.leak import LeakReport

#: ``not-scorable``: the data make the main metric undefined (``reason`` says why); a valid
#: outcome, not an error (see :class:`avbench.metrics.NotScorableError`)
Status = Literal["ok", "skipped", "failed", "not-scorable"]


class TaskOutcome(BaseModel):
    """The result of one task of a benchmark."""

    task: str
    status: Status
    capability_used: str | None = None
    reason: str | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    info: dict[str, Any] = Field(default_factory=dict)


class EvaluationResult(BaseModel):
    """Everything :func:`~avbench.benchmarks.evaluate` measured for one (model, benchmark) pair."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model: str
    benchmark: str
    dataset: str
    subset: str | None = None
    split: str
    status: Status
    reason: str | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    main_score: str
    main_value: float | None = None
    higher_is_better: bool = True
    lower_is_better: list[str] = Field(
        default_factory=list,
        description="metrics of the benchmark's tasks where lower is better (from the task specs)",
    )
    protocol: dict[str, Any] = Field(default_factory=dict)
    tasks: list[TaskOutcome] = Field(default_factory=list)
    leak: LeakReport | None = None
    n_samples: int = 0
    seconds: float = 0.0
    world_size: int = 1
    gallery: dict[str, Any] | None = Field(
        default=None,
        exclude=True,
        description="first samples of rank 0 for the leaderboard's qualitative figure (numpy "
        "arrays, see evaluate(gallery=N)); not part of the JSON result",
    )


__all__ = ["EvaluationResult", "Status", "TaskOutcome"]
