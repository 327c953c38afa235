"""Benchmark descriptions: dataset + split + protocol + metrics + main score.

A :class:`BenchmarkMeta` is pure data (pydantic v2, frozen): what to run and
how to score it. It holds one or more task specs (any kind registered in
:data:`~avbench.benchmarks.tasks.TASK_KINDS`), each with the protocol options
that decide its numbers (REFERENCE.md section A) and the model capabilities
that can serve it (any one of them, in order of preference).

Applicability (DESIGN 4.5): a benchmark applies to a model when the model has
a capability serving the **primary** task, the one that produces
``main_score``. Secondary tasks (e.g. retrieval on VGG-SS) run when their
capability is present and are otherwise listed as skipped with the reason.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SerializeAsAny,
    SerializerFunctionWrapHandler,
    ValidatorFunctionWrapHandler,
    computed_field,
    model_serializer,
    model_validator,
)

from avbench.benchmarks.tasks import TaskSpec, task_kind

Split = Literal["train", "val", "test"]

#: computed fields of the dumps, accepted (and ignored) in input
_COMPUTED = ("requires", "protocol", "lower_is_better")


def _task_spec(value: Any) -> Any:
    """A mapping becomes the spec class registered for its ``task`` key (looked up now)."""
    if isinstance(value, TaskSpec):
        return value
    if isinstance(value, dict):
        if "task" not in value:
            raise ValueError(f"a task needs a 'task' key (its kind): {value!r}")
        try:
            cls = task_kind(str(value["task"]))
        except KeyError as err:
            raise ValueError(err.args[0]) from None
        return cls.model_validate(value)
    raise ValueError(f"a task is a TaskSpec or a mapping with a 'task' key, got {value!r}")


#: any registered task spec; dumped with its own class's fields
AnyTaskSpec = Annotated[SerializeAsAny[TaskSpec], BeforeValidator(_task_spec)]


class BenchmarkMeta(BaseModel):
    """One benchmark: dataset + split + protocol (tasks) + metrics + main score.

    ``tasks`` accepts spec instances or mappings (``{"task": "<kind>", ...}``)
    of any kind registered when the meta is validated. Metric direction comes
    from the task specs (``lower_is_better``); ``higher_is_better`` is derived
    from the main score and, when given (old dumps), must agree.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    dataset: str = Field(description="dataset family (datamodule), e.g. 'vggss', 'avsbench'")
    subset: str | None = Field(None, description="e.g. 'heard', 's4'")
    split: Split = "test"
    tasks: tuple[AnyTaskSpec, ...] = Field(min_length=1)
    metrics: tuple[str, ...]
    main_score: str
    description: str = ""
    reference: str = Field("", description="REFERENCE.md section of the protocol")
    diagnostic: bool = Field(
        False, description="a diagnostic of another benchmark's score (e.g. how much of it "
        "needs the sound): shown on the leaderboard, left out of the overview's Mean")

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # the default stays out of the dump: benchmarks dump as before the field existed
        data = handler(self)
        if not self.diagnostic:
            data.pop("diagnostic", None)
        return data

    @model_validator(mode="wrap")
    @classmethod
    def _accept_dumps(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> BenchmarkMeta:
        # accept its own dumps (which include the computed fields)
        claimed = None
        if isinstance(data, dict):
            claimed = data.get("higher_is_better")
            data = {k: v for k, v in data.items() if k not in (*_COMPUTED, "higher_is_better")}
        meta = handler(data)
        if claimed is not None and bool(claimed) != meta.higher_is_better:
            raise ValueError(
                f"{meta.name}: higher_is_better={claimed} contradicts the task's direction of "
                f"main_score {meta.main_score!r}"
            )
        return meta

    @model_validator(mode="after")
    def _check(self) -> BenchmarkMeta:
        produced = [m for t in self.tasks for m in t.metric_names()]
        dup = {m for m in produced if produced.count(m) > 1}
        if dup:
            raise ValueError(f"{self.name}: tasks produce the same metric names {sorted(dup)}")
        unknown = set(self.metrics) - set(produced)
        if unknown:
            raise ValueError(f"{self.name}: metrics {sorted(unknown)} are not produced by any task")
        if self.main_score not in self.metrics:
            raise ValueError(f"{self.name}: main_score {self.main_score!r} is not in metrics")
        return self

    @property
    def primary_task(self) -> TaskSpec:
        """The task that produces ``main_score``."""
        for t in self.tasks:
            if self.main_score in t.metric_names():
                return t
        raise AssertionError("validated in _check")  # pragma: no cover

    @computed_field  # type: ignore[prop-decorator]
    @property
    def requires(self) -> tuple[str, ...]:
        """Capabilities that make the benchmark applicable (any one of them)."""
        return tuple(self.primary_task.requires)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def protocol(self) -> dict[str, Any]:
        """The protocol options of every task (recorded in every result)."""
        return {t.task: t.model_dump(mode="json") for t in self.tasks}

    @computed_field  # type: ignore[prop-decorator]
    @property
    def lower_is_better(self) -> tuple[str, ...]:
        """Every metric the tasks produce where lower is better (per the task specs)."""
        return tuple(
            m for t in self.tasks for m in t.metric_names() if m in type(t).lower_is_better
        )

    @computed_field  # type: ignore[prop-decorator]
    @property
    def higher_is_better(self) -> bool:
        """Direction of ``main_score``."""
        return self.main_score not in self.lower_is_better


__all__ = ["AnyTaskSpec", "BenchmarkMeta", "Split"]
