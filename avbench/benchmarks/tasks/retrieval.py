"""Retrieval (REFERENCE A3): cross-modal retrieval with global embeddings (``model.embed``).

Relevance modes
---------------
* ``class``: items with the same ``batch[label_key]`` (an int class or a multi-hot
  row) are relevant (VGG-SS, AVE, VEGAS);
* ``instance``: only the query's own paired item is relevant (Ego4D instance retrieval);
* ``verb``: sounding-action groups (MC3, REFERENCE A5 data): items whose narration
  has the same verb are relevant. The verb is the batch's ``class_name`` (Ego4D:
  :func:`~avbench.data.datasets.ego4d_narrations.narration_verb` of the narration);
* ``verb_noun``: the same verb AND the same head noun. The batch carries no noun
  (the Ego4D-Sounds tables have ``tag_noun`` indices into the Ego4D taxonomy, but
  they are ``[]`` in the public test table and the loader does not pass them on),
  so the noun is derived from the narration ``text`` by :func:`narration_noun`.

Groups become integer labels by a stable hash of the group string
(:func:`~avbench.metrics._common.stable_key`), the same in every batch, process and
rank, and are scored with class relevance (per-query AP and R@K of
:class:`~avbench.metrics.retrieval.CrossModalRetrieval`).

Modalities: ``pairs`` lists modality pairs explicitly; ``modalities`` (e.g.
``[audio, visual, text]``) means every pair of them in list order, both
directions each (``a2v, v2a, a2t, t2a, v2t, t2v``). ``missing_modality="skip"``
leaves out the metrics of a modality that ``model.embed`` does not return (an
audio-visual model has no ``text``): they are named in ``info["undefined"]``; the
default ``"error"`` raises as before.

Score: ``score="embedding"`` (default) ranks by the cosine of ``model.embed``'s global
embeddings. ``score="model"`` ranks by the model's own pairwise score when it has the
``pairwise_score`` capability (DenseAV: per head max over image tokens, mean over
audio time, summed over heads, the reference's ``calc_recalls``): the task keeps every
sample's ``model.pairwise_features(batch)`` (keyed by id, de-duplicated) and in
``compute`` scores the whole gallery with ``model.pairwise_score(features, features)``
``[A, V]``; a model without it falls back to the embedding cosine
(``info["score"]`` says which was used). Audio-visual pairs only.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import torch
from pydantic import model_validator
from torch import Tensor

from avbench.benchmarks.tasks.base import TaskRunner, TaskSpec, register_task
from avbench.benchmarks.tasks.sample_store import SampleStore
from avbench.capabilities import Capability
from avbench.metrics import NotScorableError
from avbench.metrics._common import stable_key
from avbench.metrics.retrieval import (
    CrossModalRetrieval,
    retrieval_scores,
    retrieval_undefined,
    trivial_recall,
)

if TYPE_CHECKING:
    from avbench.benchmarks.batch_outputs import BatchOutputs

#: batch keys of the action groups: the verb (Ego4D ``class_name``) and the narration
VERB_KEY = "class_name"
TEXT_KEY = "text"

# words skipped before the object's noun phrase, and words that end it
_LEADING = frozenset({
    "the", "a", "an", "some", "his", "her", "their", "its", "my", "your", "our", "this",
    "that", "these", "those", "another", "other", "up", "down", "off", "out", "on", "in",
    "into", "onto", "at", "from", "to", "away", "back", "over", "around", "through", "of",
    "with", "by", "for", "it", "them", "both", "two", "three", "few", "piece", "pieces",
})
_PHRASE_END = frozenset({
    "with", "on", "in", "into", "onto", "at", "from", "to", "by", "for", "of", "and", "or",
    "using", "inside", "under", "over", "off", "out", "up", "down", "near", "beside",
    "across", "towards", "toward", "through", "around", "while", "then", "as",
})
_WORD = re.compile(r"[a-z][a-z'-]*")


def narration_noun(text: str, verb: str) -> str:
    """The head noun of the action's object in a narration (a heuristic, documented).

    Steps: lower-case the text and keep its words; start after the first occurrence
    of ``verb`` (from the start when the verb is absent); skip leading determiners,
    particles and prepositions (``the``, ``up``, ``some``, ...); the object phrase runs
    to the next preposition or conjunction (``with``, ``on``, ``and``, ...); its LAST
    word is the head noun. ``"cuts the carrot with the knife"`` -> ``"carrot"``;
    ``"picks up the cutting board"`` -> ``"board"``; ``"Woman X puts the card"`` ->
    ``"card"``; no object -> ``""``.
    """
    words = _WORD.findall(str(text).lower())
    verb = verb.lower()
    start = words.index(verb) + 1 if verb in words else 0
    rest = words[start:]
    k = 0
    while k < len(rest) and rest[k] in _LEADING:
        k += 1
    phrase: list[str] = []
    for w in rest[k:]:
        if w in _PHRASE_END:
            break
        phrase.append(w)
    return phrase[-1] if phrase else ""


def action_groups(verbs: Sequence[str], texts: Sequence[str] | None, mode: str) -> list[str]:
    """Group names of a batch: ``"<verb>"`` (``mode="verb"``) or ``"<verb>|<noun>"``
    (``"verb_noun"``, noun from :func:`narration_noun`).

    Raises:
        ValueError: ``verb_noun`` without texts, or lengths that differ.
    """
    verbs = [str(v).lower() for v in verbs]
    if mode == "verb":
        return verbs
    if texts is None or len(texts) != len(verbs):
        raise ValueError(f"verb_noun relevance needs batch[{TEXT_KEY!r}] with one narration "
                         "per clip")
    return [f"{v}|{narration_noun(t, v)}" for v, t in zip(verbs, texts)]


@register_task
class RetrievalTask(TaskSpec):
    """REFERENCE A3: cross-modal retrieval with global embeddings (``model.embed``).

    Cosine similarity of the embeddings. ``relevance``: ``"class"`` (same
    ``label_key``), ``"instance"`` (only the paired clip), ``"verb"`` / ``"verb_noun"``
    (same action group, module docstring). ``modalities`` (every pair of the list)
    replaces ``pairs`` when given. ``missing_modality``: ``"skip"`` leaves out the
    metrics of modalities the model does not embed, ``"error"`` raises.
    ``score``: ``"embedding"`` (cosine of ``embed``) or ``"model"`` (the model's
    ``pairwise_score`` when it has it, else the cosine; ``requires`` becomes
    ``("pairwise_score", "embed")``).
    New options left at their defaults are not dumped, so the protocol (hashed into
    every result's fingerprint) of the benchmarks defined before them is unchanged.
    """

    task: Literal["retrieval"] = "retrieval"
    requires: tuple[Capability, ...] = ("embed",)
    pairs: tuple[tuple[str, str], ...] = (("audio", "visual"),)
    ks: tuple[int, ...] = (1, 5, 10)
    compute_map: bool = False
    relevance: Literal["class", "instance", "verb", "verb_noun"] = "class"
    label_key: Literal["label", "labels"] = "label"
    modalities: tuple[str, ...] | None = None
    missing_modality: Literal["error", "skip"] = "error"
    score: Literal["embedding", "model"] = "embedding"
    omit_at_default: ClassVar[tuple[str, ...]] = ("modalities", "missing_modality", "score")

    @model_validator(mode="before")
    @classmethod
    def _model_score_requires(cls, data: Any) -> Any:
        """``score: model`` prefers the model's ``pairwise_score``, falling back to ``embed``."""
        if isinstance(data, dict) and data.get("score") == "model" and "requires" not in data:
            data = {**data, "requires": ("pairwise_score", "embed")}
        return data

    @model_validator(mode="after")
    def _check_modalities(self) -> RetrievalTask:
        if self.modalities is not None:
            if len(self.modalities) < 2 or len(set(self.modalities)) != len(self.modalities):
                raise ValueError(f"modalities needs at least 2 distinct names, got "
                                 f"{list(self.modalities)}")
            if self.pairs != (("audio", "visual"),):
                raise ValueError("give either pairs or modalities, not both")
            if len({m[0] for m in self.modalities}) != len(self.modalities):
                raise ValueError(f"modalities {list(self.modalities)} share a first letter "
                                 "(metric names use it: a2v, t2a, ...)")
        if self.score == "model" and self.modality_pairs() != (("audio", "visual"),):
            raise ValueError("score: model ranks audio against visual only; got pairs "
                             f"{[list(p) for p in self.modality_pairs()]}")
        return self

    def modality_pairs(self) -> tuple[tuple[str, str], ...]:
        """The scored pairs: every pair of ``modalities`` in list order, else ``pairs``."""
        if self.modalities is not None:
            return tuple(itertools.combinations(self.modalities, 2))
        return self.pairs

    def metric_names(self) -> list[str]:
        names: list[str] = []
        for x, y in self.modality_pairs():
            names += pair_metric_names(x, y, self.ks, self.compute_map)
        if self.compute_map:
            names.append("map")  # mean of the first pair's two directions
        return names

    def make_runner(self, capability: str) -> RetrievalRunner:
        return RetrievalRunner(self, capability)


def pair_metric_names(x: str, y: str, ks: Sequence[int], compute_map: bool) -> list[str]:
    """Metric names of one modality pair: ``a2v_r1 ... v2a_r10`` and the two MAPs."""
    a, b = x[0], y[0]
    names = [f"{d}_r{k}" for d in (f"{a}2{b}", f"{b}2{a}") for k in ks]
    if compute_map:
        names += [f"{a}2{b}_map", f"{b}2{a}_map"]
    return names


class RetrievalRunner(TaskRunner):
    """Recall@k (and MAP) per modality pair; ``map`` comes from the first pair."""

    spec: RetrievalTask

    def __init__(self, spec: RetrievalTask, capability: str) -> None:
        super().__init__(spec, capability)
        group = spec.relevance in ("verb", "verb_noun")
        self.metrics = [
            CrossModalRetrieval(
                modalities=pair, ks=spec.ks, compute_map=spec.compute_map,
                relevance="class" if group else spec.relevance,
            )
            for pair in spec.modality_pairs()
        ]
        #: modalities the model does not embed (``missing_modality="skip"``), set on batch 1
        self.absent: set[str] | None = None
        #: ``capability == "pairwise_score"``: every sample's pairwise features (made on batch 1)
        self.store: SampleStore | None = None
        self.model: Any = None
        if spec.score == "model":
            self.info["score"] = ("model.pairwise_score" if capability == "pairwise_score"
                                  else "cosine of model.embed (the model has no pairwise_score)")
        if group:
            self.info["relevance"] = (
                f"same {spec.relevance.replace('_', ' + ')} (verb = batch[{VERB_KEY!r}]"
                + (f", noun = head noun of batch[{TEXT_KEY!r}]" if spec.relevance == "verb_noun"
                   else "") + ")")

    def _labels(self, batch: dict[str, Any]) -> Tensor | None:
        rel = self.spec.relevance
        if rel == "instance":
            return None
        if rel == "class":
            labels = batch.get(self.spec.label_key)
            if not isinstance(labels, Tensor):
                raise KeyError(f"class-match retrieval needs batch[{self.spec.label_key!r}]")
            return labels
        verbs = batch.get(VERB_KEY)
        if verbs is None or isinstance(verbs, Tensor):
            raise KeyError(f"{rel} retrieval needs batch[{VERB_KEY!r}] (the verb of each clip)")
        groups = action_groups(list(verbs), batch.get(TEXT_KEY), rel)
        return torch.tensor([stable_key(g) for g in groups], dtype=torch.long)

    def update(self, out: BatchOutputs) -> None:
        if self.capability == "pairwise_score":
            self._update_pairwise(out)
            return
        emb = out.embed()
        labels = self._labels(out.batch)
        wanted = {m for pair in self.spec.modality_pairs() for m in pair}
        absent = wanted - set(emb)
        if self.spec.missing_modality == "skip":
            if self.absent is None:
                self.absent = absent
            elif absent != self.absent:
                raise KeyError(f"model.embed() returned {sorted(emb)} in this batch; it "
                               f"returned all of {sorted(wanted - self.absent)} before")
        for m in self.metrics:
            x, y = m.modalities
            if x not in emb or y not in emb:
                if self.spec.missing_modality == "skip":
                    continue
                raise KeyError(
                    f"model.embed() returned {sorted(emb)}; retrieval needs {x!r} and {y!r}"
                )
            m.update(emb[x], emb[y], labels, out.ids())

    def _update_pairwise(self, out: BatchOutputs) -> None:
        """Keep the batch's ``model.pairwise_features`` (and labels) per sample id."""
        self.model = out.model
        feats = dict(out.model.pairwise_features(out.batch))
        labels = self._labels(out.batch)
        if labels is not None:
            feats["labels"] = labels
        if self.store is None:
            self.store = SampleStore(sorted(feats))
        self.store.update(out.ids(), **feats)

    def _compute_pairwise(self) -> dict[str, float]:
        """R@k / MAP of the model's score matrix over the whole gallery (both directions).

        Raises:
            NotScorableError: no sample, or :func:`retrieval_undefined` on the gallery.
        """
        names = pair_metric_names("audio", "visual", self.spec.ks, self.spec.compute_map)
        names += ["map"] if self.spec.compute_map else []
        if self.store is None:
            raise NotScorableError("no sample to retrieve", names)
        values, n_dup = self.store.compute()
        labels = values.pop("labels", None)
        n = next(iter(values.values())).shape[0]
        relevance = "instance" if self.spec.relevance == "instance" else "class"
        reason = retrieval_undefined(labels, n, relevance)
        if reason is not None:
            raise NotScorableError(reason, names)
        trivial = trivial_recall(self.spec.ks, n)
        undefined = {f"{d}_r{k}": why for d in ("a2v", "v2a") for k, why in trivial.items()}
        ks = [k for k in self.spec.ks if k not in trivial]
        if not ks and not self.spec.compute_map:
            raise NotScorableError("; ".join(trivial.values()), names)
        device = getattr(self.model, "device", None)
        feats = {k: v.to(device) for k, v in values.items()} if device is not None else values
        with torch.no_grad():
            sim = self.model.pairwise_score(feats, feats).double().cpu()  # [A, V], rows audio
        if sim.shape != (n, n):
            raise ValueError(f"model.pairwise_score returned {tuple(sim.shape)} for {n} samples")
        # rank each row of the score matrix: its rows against the identity gallery under the
        # metric's cosine divide each row by a positive constant (same order, same ties)
        eye = torch.eye(n, dtype=torch.float64)
        res: dict[str, float] = {}
        for d, rows in (("a2v", sim), ("v2a", sim.T)):
            r = retrieval_scores(rows, eye, labels, labels, ks=ks, relevance=relevance)
            res |= {f"{d}_r{k}": float(r[f"r{k}"]) for k in ks}
            if self.spec.compute_map:
                res[f"{d}_map"] = float(r["map"])
        if self.spec.compute_map:
            res["map"] = (res["a2v_map"] + res["v2a_map"]) / 2
        self.info |= {"n": n, "n_duplicates": n_dup}
        if undefined:
            self.info["undefined"] = undefined
        return res

    def compute(self) -> dict[str, float]:
        """R@k and MAP per pair. An R@k with k >= the gallery size, and (with
        ``missing_modality="skip"``) every metric of a modality the model does not embed,
        is left out, its reason in ``info["undefined"]`` (metric -> reason).

        Raises:
            NotScorableError: retrieval is undefined on the data. (When the benchmark's
                main score is one of the left-out metrics, the evaluator makes the result
                not-scorable from ``info["undefined"]``.)
        """
        if self.capability == "pairwise_score":
            return self._compute_pairwise()
        res: dict[str, float] = {}
        undefined: dict[str, str] = {}
        absent = self.absent or set()
        for i, m in enumerate(self.metrics):
            x, y = m.modalities
            if absent & {x, y}:
                why = f"model.embed() returns no {sorted(absent & {x, y})}"
                undefined |= dict.fromkeys(
                    pair_metric_names(x, y, self.spec.ks, self.spec.compute_map), why)
                if i == 0 and self.spec.compute_map:
                    undefined["map"] = why
                continue
            r = m.compute()
            undefined |= m.undefined
            self.info.setdefault("n", int(r["n"]))
            self.info.setdefault("n_duplicates", int(r["n_duplicates"]))
            for k, v in r.items():
                if k in ("n", "n_duplicates") or (k == "map" and i > 0):
                    continue
                res[k] = float(v)
        if undefined:
            self.info["undefined"] = undefined
        return res


__all__ = ["RetrievalRunner", "RetrievalTask", "action_groups", "narration_noun",
           "pair_metric_names"]
