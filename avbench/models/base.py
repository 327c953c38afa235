"""What every avbench method shares: metadata, registry, optimiser, loss logging, fit stages.

Each method is an :class:`AVModel` subclass in its own module with a
``meta: ModelMeta`` naming the paper and the capabilities it implements
(DESIGN 4.4). The evaluator decides which benchmarks apply to a model from
``meta.capabilities`` alone, so a capability is declared only when the method
really has it:

- ``embed(batch) -> {"audio": [B,D], "visual": [B,D], "text": [B,D]?}``,
  L2-normalised global embeddings (every model);
- ``localize(batch) -> [B,h,w]``, a sound-source heat map at feature
  resolution (the evaluator upsamples, min-max normalises and binarises);
- ``sounding_score(batch) -> [B]``, ``class_graph() -> adjacency``,
  ``prompted_heatmap``, ``generate_audio``, ``pairwise_score`` (a model's own
  audio x visual score matrix for retrieval): method-specific extras
  (:mod:`avbench.capabilities`).

How a model is trained (read by the runner and by ``avbench fit``):

- **Fit stages.** :meth:`AVModel.configure_fit_stages` returns the ordered
  :class:`FitStage` list (default: one stage, ``"fit"``, as long as the trainer
  config says: today's single ``trainer.fit``). Each stage is one Lightning
  ``Trainer.fit`` with the stage's length (``max_epochs``/``max_steps`` over
  the trainer config's), with only the parameters named by ``trainable``
  requiring grad (None: the model's own ``requires_grad`` flags), and with a
  fresh optimiser: the default :meth:`AVModel.configure_optimizers` reads the
  running stage from :attr:`AVModel.fit_stage` and takes its ``lr`` /
  ``weight_decay`` where given. After a non-final stage, its ``end_hook`` (the
  name of a model method ``hook(datamodule) -> None``) does the work that is
  not gradient descent (fit a graph, fill a memory bank). In the runner (one
  process, or ``ddp_spawn``) it runs once, in the launching process, on the
  model the stage's Trainer hands back (on the CPU after ``ddp_spawn``); under
  a script-launched DDP (``avbench fit`` with ``strategy=ddp``) every rank runs
  it on its own copy, so a hook must be deterministic (same data, no
  unseeded randomness) for the ranks to agree.
  State a stage or hook makes for later stages must live in the model's
  ``state_dict`` (parameters or persistent buffers) or be written by
  ``on_save_checkpoint`` and read back by ``on_load_checkpoint`` (called
  before ``load_state_dict``, so a hook may resize a buffer there): it is then
  in every checkpoint of the later stages, in the runner's end-of-stage
  checkpoints (a job killed between stages resumes at the next stage) and in
  the selected checkpoint (a reused fit restores it). VAL selection happens
  only in the final stage; its ``select_after_epochs`` skips that many
  leading epochs (a warm-up whose val loss lacks the later terms, e.g.
  FNAC's).
- **Trainer arguments.** :attr:`AVModel.trainer_arguments` (default ``{}``)
  are Trainer keyword arguments the method needs (e.g.
  ``{"gradient_clip_val": 1.0}``). They override the trainer config and the
  suite's ``trainer_overrides``; a stage's own ``trainer_arguments`` (e.g.
  precision or clipping of one stage only) and its length override them. Keys the
  runner owns (``logger``, ``callbacks``, ``default_root_dir``,
  ``enable_checkpointing``) are refused.
- **Callbacks.** ``configure_callbacks`` (Lightning's hook, e.g. an EMA of
  the weights) is honoured by the runner and ``avbench fit``: Lightning adds
  the model's callbacks to the Trainer's and drops trainer callbacks of the
  same type. Callbacks in a trainer config (``callbacks:`` with
  ``class_path``/``init_args``) are instantiated for every stage. The runner's
  own callbacks (VAL selection, the non-finite-loss guard) cannot be replaced:
  a checkpoint callback from a trainer config or a model is refused, because
  selection is the runner's (the suite's ``select:``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import lightning as L
import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator

from avbench.capabilities import CAPABILITIES


class ModelMeta(BaseModel):
    """Who a model is and what it can do."""

    model_config = ConfigDict(frozen=True)

    name: str
    paper: str
    year: int
    capabilities: frozenset[str]
    reference_code: str | None = None

    @field_validator("capabilities")
    @classmethod
    def _known(cls, caps: frozenset[str]) -> frozenset[str]:
        unknown = set(caps) - CAPABILITIES
        if unknown:
            raise ValueError(f"unknown capabilities {sorted(unknown)}; known: {sorted(CAPABILITIES)}")
        return caps

_STAGE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class FitStage(BaseModel):
    """One training stage of a model (see the module docstring).

    Attributes:
        name: stage name (unique within the model; used in file names and logs).
        max_epochs: stage length in epochs; None: the trainer config's.
        max_steps: stage length in optimiser steps; None: the trainer config's.
            When only one of the two is given, the other is lifted (-1), so
            the stage's own length decides.
        trainable: parameter-name prefixes that train in this stage
            (``"audio"`` matches ``audio.weight`` and ``audio.0.bias``); every
            other parameter is frozen (``requires_grad=False``; modules stay
            in train mode). None: the model's own ``requires_grad`` flags.
        lr: learning rate of this stage's optimiser; None: the model's ``lr``.
        weight_decay: weight decay of this stage's optimiser; None: the model's.
        select_after_epochs: VAL selection ignores the stage's first N epochs
            (only in the final stage; when the stage is shorter, its last epoch
            still counts).
        end_hook: name of a model method ``hook(datamodule) -> None`` run after
            the stage (not allowed on the final stage, whose weights VAL
            selection chooses afterwards).
        trainer_arguments: Trainer keyword arguments of this stage only (e.g.
            ``{"gradient_clip_val": 1.0, "precision": "bf16-mixed"}``), over
            the model's :attr:`AVModel.trainer_arguments`; the length goes in
            ``max_epochs``/``max_steps``, not here.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = "fit"
    max_epochs: int | None = Field(None, ge=1)
    max_steps: int | None = Field(None, ge=1)
    trainable: tuple[str, ...] | None = None
    lr: float | None = Field(None, gt=0)
    weight_decay: float | None = Field(None, ge=0)
    select_after_epochs: int = Field(0, ge=0)
    end_hook: str | None = None
    trainer_arguments: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not _STAGE_NAME.fullmatch(name):
            raise ValueError(f"stage name {name!r} must match {_STAGE_NAME.pattern}")
        return name

    def length(self) -> dict[str, int]:
        """Trainer length arguments of this stage (empty: the trainer config's length)."""
        if self.max_epochs is None and self.max_steps is None:
            return {}
        return {"max_epochs": self.max_epochs if self.max_epochs is not None else -1,
                "max_steps": self.max_steps if self.max_steps is not None else -1}

    @field_validator("trainer_arguments")
    @classmethod
    def _no_length(cls, args: dict[str, Any]) -> dict[str, Any]:
        given = sorted({"max_epochs", "max_steps"} & set(args))
        if given:
            raise ValueError(f"stage length {given} goes in the FitStage fields, not trainer_arguments")
        return args

    def trainer_kwargs(self) -> dict[str, Any]:
        """This stage's Trainer arguments: ``trainer_arguments`` plus :meth:`length`."""
        return dict(self.trainer_arguments) | self.length()

    def trains(self, parameter: str) -> bool:
        """Whether ``parameter`` (a ``named_parameters`` name) trains in this stage.

        Raises:
            ValueError: when the stage leaves the flags to the model (``trainable`` None).
        """
        if self.trainable is None:
            raise ValueError(f"stage {self.name!r} keeps the model's own requires_grad flags")
        return any(parameter == p or parameter.startswith(p + ".") for p in self.trainable)


def check_fit_stages(stages: Sequence[FitStage], model: Any = None) -> tuple[FitStage, ...]:
    """Validate a model's stage list: non-empty, unique names, final-stage-only rules.

    With ``model`` also checks that every ``trainable`` prefix matches a
    parameter and that every ``end_hook`` is a method of the model.

    Raises:
        ValueError: naming the stage and the problem.
    """
    stages = tuple(stages)
    if not stages or not all(isinstance(s, FitStage) for s in stages):
        raise ValueError(f"configure_fit_stages must return a non-empty list of FitStage, "
                         f"got {stages!r}")
    names = [s.name for s in stages]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate fit stage names {names}")
    for s in stages[:-1]:
        if s.select_after_epochs:
            raise ValueError(f"stage {s.name!r}: select_after_epochs applies to the final "
                             "stage only (selection happens there)")
    if stages[-1].end_hook is not None:
        raise ValueError(f"stage {stages[-1].name!r}: the final stage cannot have an end_hook "
                         "(its weights are chosen by VAL selection afterwards)")
    if model is not None:
        params = [n for n, _ in model.named_parameters()]
        for s in stages:
            for prefix in s.trainable or ():
                if not any(n == prefix or n.startswith(prefix + ".") for n in params):
                    raise ValueError(f"stage {s.name!r}: trainable {prefix!r} matches no "
                                     f"parameter of {type(model).__name__}")
            if s.end_hook is not None and not callable(getattr(model, s.end_hook, None)):
                raise ValueError(f"stage {s.name!r}: end_hook {s.end_hook!r} is not a method "
                                 f"of {type(model).__name__}")
    return stages


REGISTRY: dict[str, type[AVModel]] = {}


def register(name: str) -> Callable[[type[AVModel]], type[AVModel]]:
    """Class decorator adding a model to :data:`REGISTRY` under ``name``."""

    def deco(cls: type[AVModel]) -> type[AVModel]:
        if name in REGISTRY and REGISTRY[name] is not cls:
            raise KeyError(f"model name {name!r} already registered by {REGISTRY[name].__name__}")
        REGISTRY[name] = cls
        return cls

    return deco


class AVModel(L.LightningModule):
    """Base LightningModule of every method.

    Args:
        lr: learning rate.
        weight_decay: weight decay.
        optimizer: ``"adam"`` or ``"adamw"`` (the papers use one of the two).
        betas: Adam betas.
    """

    meta: ModelMeta

    def __init__(
        self,
        lr: float = 1e-4,
        weight_decay: float = 0.0,
        optimizer: Literal["adam", "adamw"] = "adam",
        betas: tuple[float, float] = (0.9, 0.999),
    ) -> None:
        super().__init__()
        self.lr = lr
        self.weight_decay = weight_decay
        self.optimizer_name = optimizer
        self.betas = betas
        #: the stage being fitted (set by the stage runner before each stage's ``fit``)
        self.fit_stage: FitStage | None = None

    # --- capabilities (override what the method has) -----------------
    def embed(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        raise NotImplementedError(f"{type(self).__name__} has no 'embed'")

    def localize(self, batch: Mapping[str, Any]) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} has no 'localize'")

    def has(self, capability: str) -> bool:
        return capability in self.meta.capabilities

    # --- training plumbing ---------------------------------------------
    def configure_fit_stages(self) -> Sequence[FitStage]:
        """The ordered training stages (default: one stage as long as the trainer config).

        Override to declare a multi-stage recipe or a warm-up excluded from
        selection; see the module docstring.
        """
        return [FitStage()]

    @property
    def trainer_arguments(self) -> dict[str, Any]:
        """Trainer keyword arguments this method needs (default: none); see the module docstring."""
        return {}

    def lr_scales(self) -> Mapping[str, float]:
        """Learning-rate multipliers by parameter-name prefix (default: none).

        ``{"audio_encoder": 10.0}`` trains every parameter named
        ``audio_encoder.*`` at 10x the optimiser's lr (the stage's or the
        model's). Parameters matched by no prefix use the lr as is; the first
        matching prefix wins. Override to give a from-scratch tower a larger
        step than a pretrained one (a documented deviation of the method).
        """
        return {}

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """The model's optimiser over the parameters that require grad.

        The running :attr:`fit_stage`'s ``lr``/``weight_decay`` replace the
        model's where the stage gives them; :meth:`lr_scales` splits the
        parameters into groups with scaled learning rates.
        """
        stage = self.fit_stage
        lr = stage.lr if stage is not None and stage.lr is not None else self.lr
        wd = (stage.weight_decay if stage is not None and stage.weight_decay is not None
              else self.weight_decay)
        scales = dict(self.lr_scales())
        groups: dict[float, list[torch.nn.Parameter]] = {}
        for name, p in self.named_parameters():
            if not p.requires_grad:
                continue
            scale = next((f for prefix, f in scales.items()
                          if name == prefix or name.startswith(prefix + ".")), 1.0)
            groups.setdefault(scale, []).append(p)
        cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[self.optimizer_name]
        return cls([{"params": ps, "lr": lr * f} for f, ps in groups.items()],
                   lr=lr, weight_decay=wd, betas=self.betas)

    def log_losses(self, losses: Mapping[str, torch.Tensor], stage: str, batch_size: int) -> None:
        """Log every loss term by name (``{stage}/loss_{name}``) and the total.

        DESIGN 4.4: every loss term of a paper is its own named, logged quantity.
        """
        for name, value in losses.items():
            key = f"{stage}/loss" if name == "total" else f"{stage}/loss_{name}"
            self.log(key, value.detach(), prog_bar=name == "total", batch_size=batch_size,
                     sync_dist=stage != "train", on_step=stage == "train", on_epoch=True)
