"""Leaderboard tables from the result store (Markdown + CSV, pandas).

Per benchmark: one row per (model, training dataset) and per trivial
baseline, one column per metric, cells ``mean ± std`` over the seeds that
finished (sample std, ddof=1; a single seed shows the mean only), the best
mean of each column in bold (lowest for the metrics the results list in
``lower_is_better``, marked ↓), the seeds that finished over the seeds
expected, and notes for failed runs, not-scorable results, fit warnings and
train/test leaks (rows marked ⚠). Rows with fit warnings (a doubtful checkpoint
selection: val too small, constant monitor, first epoch) carry ``†`` on their label in
every table, the overview included, with a legend line. Each benchmark page names the
number of evaluated samples (the results' task info ``n``/``n_frames``, else their
``timings.eval_samples``); the overview notes every benchmark with fewer than
:data:`FEW_SAMPLES`. A row whose results are all
``not-scorable`` shows ``not scorable`` in its cells (never a number; not in
any mean or bold), the reason in the notes.
The overview has the main score of every benchmark and their mean, taken only
over rows that have every benchmark (else ``—``); a benchmark that no row
could score (``not scorable`` on this data) is left out of that mean. A footer names the
commit(s), the date, the suite and the data preset.

How: the results become one long DataFrame (:func:`scores_frame`, one row per
result and metric), aggregated with ``groupby``/``agg`` (:func:`benchmark_table`)
and rendered with ``DataFrame.to_markdown`` (tabulate) and ``to_csv``.

Corrupt result files are listed in the overview's notes and never used.
Figures go to ``plots/`` (:mod:`avbench.runner.plots`, which is handed plain
DataFrames) and are linked from the overview.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from avbench.atomic_io import atomic_write_text
from avbench.runner.results import CorruptResult, ResultRecord, ResultStore

DASH = "—"
#: the key of a table row; ``kind`` is ordered so that models sort before baselines
ROW_KEY = ["kind", "model", "train_dataset"]
KIND = pd.CategoricalDtype(["model", "baseline"], ordered=True)
#: one result in the long frame
RESULT_KEY = ["suite", "benchmark", "job_id"]
_STATS = ("mean", "std", "n")
#: the marker of a row whose results carry fit warnings
WARNED = "†"
#: a benchmark evaluated on fewer samples than this gets a note in the overview
FEW_SAMPLES = 30


# --- the long frame ------------------------------------------------------------------------------
def scores_frame(records: Sequence[ResultRecord]) -> pd.DataFrame:
    """One row per (result, metric), in the order of ``records`` and of each result's metrics.

    Columns: ``suite``, ``benchmark``, ``job_id``, ``kind`` (categorical, models
    first), ``model``, ``train_dataset`` (``—`` for baselines and when unknown),
    ``seed`` (Int64, <NA> for baselines), ``status`` (``ok``/``error``),
    ``main_score``, ``metric`` (None for a result without metrics), ``value``
    (float, NaN when missing or not finite), ``lower`` (lower is better for the
    metric, :func:`lower_is_better`), ``leak`` (note text of a leaking ok result,
    else None), ``error`` (note text of a failed result, else None),
    ``not_scorable`` (the reason of a not-scorable result, else None), ``warning``
    (the ok result's warnings, one per line, else None), ``n_samples`` (Int64, the
    evaluated samples, :func:`evaluated_samples`) and ``record`` (the
    :class:`ResultRecord`, for the figures).
    """
    rows: list[dict[str, Any]] = []
    for r in records:
        base = {
            "suite": r.suite, "benchmark": r.benchmark, "job_id": r.job_id, "kind": r.kind,
            "model": r.model,
            "train_dataset": DASH if r.kind == "baseline" else (r.train_dataset or DASH),
            "seed": r.seed, "status": r.status, "main_score": r.main_score,
            "leak": _leak_text(r) if r.ok and r.leak and r.leak.get("n_overlap", 0) > 0 else None,
            "error": _error_text(r) if r.status == "error" else None,
            "not_scorable": (r.reason or "no reason given") if r.status == "not-scorable"
            else None,
            "warning": "\n".join(_warnings(r)) if r.ok and _warnings(r) else None,
            "n_samples": evaluated_samples(r), "record": r,
        }
        lower = set(lower_is_better(r))
        metrics = list(r.metrics.items()) or [(None, None)]
        rows += [{**base, "metric": m, "value": v, "lower": m in lower} for m, v in metrics]
    columns = [*RESULT_KEY, "kind", "model", "train_dataset", "seed", "status", "main_score",
               "metric", "value", "lower", "leak", "error", "not_scorable", "warning", "n_samples",
               "record"]
    df = pd.DataFrame(rows, columns=columns).astype(
        {"kind": KIND, "seed": "Int64", "value": "float64", "lower": "bool",
         "n_samples": "Int64"})
    df["value"] = df["value"].where(np.isfinite(df["value"]))  # inf: not a score
    return df


def evaluated_samples(r: ResultRecord) -> int | None:
    """How many samples a result was scored on: the first task info ``n`` (items) or
    ``n_frames`` (segmentation frames), else ``timings.eval_samples``; None when unknown."""
    for task in r.tasks:
        info = task.get("info") or {}
        for key in ("n", "n_frames"):
            if isinstance(info.get(key), int | float) and not isinstance(info.get(key), bool):
                return int(info[key])
    return r.timings.eval_samples


def _warnings(r: ResultRecord) -> list[str]:
    """The fit warnings of ``r``: its ``warnings``, else its selection's."""
    return list(r.warnings) or (list(r.selection.warnings) if r.selection else [])


def lower_is_better(r: ResultRecord) -> list[str]:
    """The metrics of ``r`` where lower is better.

    What the result lists; a result written before results carried the list
    (the field absent from its file) takes it from the task specs of the
    registered benchmark of the same name (the same source the runner
    records), or none when that benchmark is not registered in this process.
    """
    if "lower_is_better" in r.model_fields_set:
        return list(r.lower_is_better)
    from avbench.benchmarks import BENCHMARKS

    bench = BENCHMARKS.get(r.benchmark)
    return list(bench.lower_is_better) if bench is not None else []


def _leak_text(r: ResultRecord) -> str:
    from avbench.benchmarks import LeakReport

    leak = LeakReport.model_validate({k: v for k, v in (r.leak or {}).items()
                                      if k != "overlap_fraction"})
    return f"seed {r.seed}: {leak.summary()}"


def _error_text(r: ResultRecord) -> str:
    msg = r.error.message.splitlines()[0][:200] if r.error and r.error.message else ""
    return f"failed in {r.error.stage if r.error else '?'}: {msg}"


def _label(model: str, kind: str) -> str:
    """``model``; baselines ``model (trivial)``, fitted ones (CCA) ``model (baseline)``."""
    if kind == "model":
        return model
    from avbench.benchmarks.baselines import baseline_tag

    return f"{model} ({baseline_tag(model)})"


# --- one benchmark -------------------------------------------------------------------------------
@dataclass
class BenchmarkTable:
    """The aggregates of one benchmark (one suite).

    ``stats``: index = the row key (``kind``, ``model``, ``train_dataset``, sorted),
    columns = (metric, ``mean``|``std``|``n``) over the finite values of the ok seeds;
    ``rows``: same index, columns ``seeds_ok``, ``failed``, ``not_scorable`` (counts),
    ``leak``, ``warned`` (bool: fit warnings), ``n_samples`` (Int64, most evaluated samples
    of the row's results); ``n_samples``: (fewest, most) samples of any result, None when
    unknown.
    """

    benchmark: str
    main_score: str
    metrics: list[str]
    lower: frozenset[str]  # the metrics where lower is better
    stats: pd.DataFrame
    rows: pd.DataFrame
    seeds_expected: int
    notes: list[str] = field(default_factory=list)
    n_samples: tuple[int, int] | None = None
    #: a diagnostic benchmark (``BenchmarkMeta.diagnostic``): left out of the overview's Mean
    diagnostic: bool = False

    def samples_text(self) -> str | None:
        """``"N"`` or ``"N1–N2"`` evaluated samples, None when unknown."""
        if self.n_samples is None:
            return None
        lo, hi = self.n_samples
        return str(lo) if lo == hi else f"{lo}–{hi}"

    def best(self, metric: str) -> float | None:
        """Best mean of a column (lowest for lower-is-better metrics), None when empty."""
        means = self.stats[(metric, "mean")].dropna()
        if means.empty:
            return None
        return float(means.min() if metric in self.lower else means.max())

    def main_stats(self) -> pd.DataFrame:
        """``mean``, ``std``, ``n`` of the main score per row (NaN/0 when no result has it)."""
        if self.main_score in self.metrics:
            return self.stats[self.main_score]
        return pd.DataFrame({"mean": float("nan"), "std": float("nan"), "n": 0},
                            index=self.stats.index)


def _metric_order(df: pd.DataFrame) -> list[str]:
    """The registered benchmark's metrics that occur first, then the others as they come."""
    from avbench.benchmarks import get_benchmark

    present = list(df["metric"].dropna().unique())
    try:
        declared = list(get_benchmark(df["benchmark"].iat[0]).metrics)
    except KeyError:  # not registered in this process: the results' order
        declared = []
    first = [m for m in declared if m in present]
    return first + [m for m in present if m not in first]


def benchmark_table(records: Sequence[ResultRecord] | pd.DataFrame) -> BenchmarkTable:
    """Aggregate the results of one benchmark (one suite) over seeds.

    ``records``: the results, or their :func:`scores_frame`.
    """
    df = records if isinstance(records, pd.DataFrame) else scores_frame(records)
    metrics = _metric_order(df)
    runs = (df.drop_duplicates(RESULT_KEY)
            .sort_values([*ROW_KEY, "seed"], na_position="first", kind="stable"))
    ok = runs[runs["status"] == "ok"]
    rows = (runs.assign(failed=runs["error"].notna(), leak=runs["leak"].notna(),
                        not_scorable=runs["not_scorable"].notna(),
                        warned=runs["warning"].notna())
            .groupby(ROW_KEY, observed=True, sort=False)
            .agg(failed=("failed", "sum"), not_scorable=("not_scorable", "sum"),
                 leak=("leak", "any"), warned=("warned", "any"), n_samples=("n_samples", "max")))
    rows.insert(0, "seeds_ok", ok.groupby(ROW_KEY, observed=True)["seed"].nunique(dropna=False)
                .reindex(rows.index, fill_value=0))
    keys = rows.index

    values = df[(df["status"] == "ok") & df["metric"].isin(metrics)]
    stats = (values.groupby([*ROW_KEY, "metric"], observed=True)["value"]
             .agg(mean="mean", std="std", n="count")  # std: ddof=1, NaN for one seed
             .unstack("metric")
             .swaplevel(axis=1)
             .reindex(index=keys, columns=pd.MultiIndex.from_product([metrics, _STATS])))
    stats = stats.fillna({(m, "n"): 0 for m in metrics}).astype({(m, "n"): int for m in metrics})

    notes: list[str] = []  # per row: failures, not scorable, warnings, then leaks
    for (kind, model, ds), g in runs.groupby(ROW_KEY, observed=True, sort=False):
        label = _label(model, kind)
        notes += [f"- {label} ({ds}), seed {_seed(seed)}: {error}"
                  for seed, error in zip(g["seed"], g["error"], strict=True) if error is not None]
        notes += [f"- {label} ({ds}), seed {_seed(seed)}: not scorable: {why}"
                  for seed, why in zip(g["seed"], g["not_scorable"], strict=True)
                  if why is not None]
        notes += [f"- {label} ({ds}), seed {_seed(seed)}: fit warning: {w}"
                  for seed, ws in zip(g["seed"], g["warning"], strict=True) if ws is not None
                  for w in ws.splitlines()]
        notes += [f"- ⚠ train/test leak, {label} ({ds}), {leak}"
                  for leak in g["leak"] if leak is not None]

    per_model = rows["seeds_ok"] + rows["failed"] + rows["not_scorable"]
    model_rows = per_model[rows.index.get_level_values("kind") == "model"]
    # a loader-free task (graph recovery) evaluates no samples: unknown, not "few"
    counts = runs.loc[runs["status"] != "error", "n_samples"].dropna()
    counts = counts[counts > 0]
    from avbench.benchmarks import BENCHMARKS

    registered = BENCHMARKS.get(df["benchmark"].iat[0])
    return BenchmarkTable(
        diagnostic=bool(registered is not None and registered.diagnostic),
        benchmark=df["benchmark"].iat[0], main_score=df["main_score"].iat[0], metrics=metrics,
        lower=frozenset(df.loc[df["lower"], "metric"]), stats=stats, rows=rows,
        seeds_expected=int(model_rows.max()) if len(model_rows) else 1, notes=notes,
        n_samples=(int(counts.min()), int(counts.max())) if len(counts) else None,
    )


def _diagnostic_legend(tables: Sequence[BenchmarkTable]) -> str:
    """``"; not averaged: <diagnostic benchmarks> (diagnostics)"`` or ``""``."""
    names = [f"`{t.benchmark}`" for t in tables if t.diagnostic]
    return f" (diagnostics not averaged: {', '.join(names)})" if names else ""


def _seed(seed: Any) -> str:
    return "None" if pd.isna(seed) else str(seed)


# --- rendering -----------------------------------------------------------------------------------
NOT_SCORABLE = "not scorable"


def _cells(stats: pd.DataFrame, best: float | None,
           not_scorable: pd.Series | None = None) -> pd.Series:
    """``mean ± std`` (mean only for one seed, ``—`` for none), the best mean in bold;
    ``not scorable`` where a row has no value and ``not_scorable`` (a count per row) > 0."""
    mean, std = stats["mean"], stats["std"]
    text = mean.map("{:.3f}".format)
    text = text.where(std.isna(), text + " ± " + std.map("{:.3f}".format)).where(mean.notna(), DASH)
    if best is not None:
        text = text.mask((mean - best).abs() <= 1e-12, "**" + text + "**")
    if not_scorable is not None:
        text = text.mask(mean.isna() & (not_scorable.to_numpy() > 0), NOT_SCORABLE)
    return text


def _markdown(table: pd.DataFrame, text_columns: int) -> str:
    """Pipe table: the first ``text_columns`` left-aligned, the others right-aligned."""
    body = table.apply(lambda col: col.str.replace("|", "\\|", regex=False))
    align = ["left"] * text_columns + ["right"] * (table.shape[1] - text_columns)
    return body.to_markdown(index=False, disable_numparse=True, colalign=align)


def _row_labels(keys: pd.DataFrame, leak: pd.Series, warned: pd.Series) -> pd.Series:
    """Markdown row labels: ``⚠ `` before a leaking row, `` †`` after a row with fit
    warnings (``leak``/``warned`` aligned with ``keys``)."""
    label = keys["label"].where(~leak.to_numpy(), "⚠ " + keys["label"])
    return label.where(~warned.to_numpy(), label + " " + WARNED)


def _key_columns(index: pd.MultiIndex) -> pd.DataFrame:
    """The row key as columns, plus the Markdown ``label``."""
    keys = index.to_frame(index=False)
    keys["label"] = [_label(m, k) for m, k in zip(keys["model"], keys["kind"], strict=True)]
    return keys


def render_benchmark(t: BenchmarkTable) -> tuple[str, pd.DataFrame]:
    """(Markdown, CSV DataFrame) of one benchmark table."""
    keys = _key_columns(t.stats.index)
    rows = t.rows.reset_index(drop=True)
    baseline = keys["kind"] == "baseline"
    expected = pd.Series(t.seeds_expected, index=keys.index).where(~baseline, 1)
    md = pd.DataFrame({"Model": _row_labels(keys, rows["leak"], rows["warned"]),
                       "Train data": keys["train_dataset"]})
    csv = pd.DataFrame({"model": keys["model"], "kind": keys["kind"].astype(str),
                        "train_dataset": keys["train_dataset"].replace(DASH, ""),
                        "seeds_ok": rows["seeds_ok"], "seeds_expected": expected,
                        "failed": rows["failed"], "not_scorable": rows["not_scorable"],
                        "leak": rows["leak"], "fit_warnings": rows["warned"],
                        "n_samples": rows["n_samples"].astype("float64")})
    for m in t.metrics:
        stats = t.stats[m].reset_index(drop=True)
        md[f"{m}{' ↓' if m in t.lower else ''}"] = _cells(stats, t.best(m), rows["not_scorable"])
        for s in _STATS:
            csv[f"{m}_{s}"] = stats[s]
    if not t.metrics and rows["not_scorable"].gt(0).any():  # nothing scored at all
        md[t.main_score] = rows["not_scorable"].gt(0).map({True: NOT_SCORABLE, False: DASH})
    md["Seeds"] = rows["seeds_ok"].astype(str) + "/" + expected.astype(str)
    lower = "; ↓ lower is better" if t.lower & set(t.metrics) else ""
    samples = t.samples_text()
    few = (f" (fewer than {FEW_SAMPLES}: differences between rows are mostly noise)"
           if t.n_samples is not None and t.n_samples[0] < FEW_SAMPLES else "")
    text = [f"Main score: `{t.main_score}`. Mean ± std over the seeds that finished; "
            f"best in **bold**{lower}. Seeds: finished / run."
            + (f" Evaluated samples: {samples}{few}." if samples else "")]
    if rows["warned"].any():
        text.append(f"{WARNED}: the row's checkpoint selection is doubtful (fit warnings in "
                    "the notes).")
    text += ["", _markdown(md, 2)]
    if t.notes:
        text += ["", "Notes:", "", *t.notes]
    return "\n".join(text) + "\n", csv


def render_overview(tables: Sequence[BenchmarkTable]) -> tuple[str, pd.DataFrame]:
    """(Markdown, CSV DataFrame): the main score of every benchmark per row, their mean, coverage."""
    names = [t.benchmark for t in tables]
    main = pd.concat({t.benchmark: t.main_stats() for t in tables}, axis=1)
    order = main.index.to_frame(index=False).astype({"kind": KIND}).sort_values(ROW_KEY)
    main = main.reindex(pd.MultiIndex.from_frame(order))
    leak, warned = (
        pd.concat([t.rows[col] for t in tables], axis=1)
        .reindex(main.index, fill_value=False).eq(True).any(axis=1).reset_index(drop=True)
        for col in ("leak", "warned"))
    unscorable = (pd.concat({t.benchmark: t.rows["not_scorable"] for t in tables}, axis=1)
                  .reindex(main.index, fill_value=0).reset_index(drop=True))
    # rows with a scorable attempt (ok or failed) at a benchmark: it counts for their mean
    attempted = (pd.concat({t.benchmark: t.rows["seeds_ok"] + t.rows["failed"] for t in tables},
                           axis=1).reindex(main.index, fill_value=0).reset_index(drop=True).gt(0))
    main = main.reset_index(drop=True)
    means = main.xs("mean", axis=1, level=1)
    # diagnostics (e.g. how much of a score needs the sound) are shown but not averaged
    diagnostic = {t.benchmark for t in tables if t.diagnostic}
    keys = _key_columns(order.set_index(ROW_KEY).index)
    overall = pd.Series(float("nan"), index=means.index)
    # Per training dataset (models trained on different data answer different benchmarks,
    # e.g. ILI's feature files): the benchmarks some row of the group attempted (ok or
    # failed; one that could not be scored, or never ran, is left out); a row needs every one
    # of them, so a failed run shows as no mean rather than a mean over fewer benchmarks.
    for _, idx in keys.groupby("train_dataset", sort=False).groups.items():
        scored = [b for b in names if b not in diagnostic and attempted.loc[idx, b].any()]
        if scored:
            group = means.loc[idx, scored]
            overall.loc[idx] = group.mean(axis=1).where(group.notna().all(axis=1))
    coverage = means.drop(columns=sorted(diagnostic)).notna().sum(axis=1)
    md = pd.DataFrame({"Model": _row_labels(keys, leak, warned),
                       "Train data": keys["train_dataset"]})
    csv = pd.DataFrame({"model": keys["model"], "kind": keys["kind"].astype(str),
                        "train_dataset": keys["train_dataset"].replace(DASH, ""),
                        "fit_warnings": warned})
    for t in tables:
        col = means[t.benchmark].dropna()
        best = None if col.empty else (col.min() if t.main_score in t.lower else col.max())
        md[f"{t.benchmark} ({t.main_score})"] = _cells(main[t.benchmark], best,
                                                        unscorable[t.benchmark])
        csv[t.benchmark], csv[f"{t.benchmark}_std"] = main[(t.benchmark, "mean")], main[(t.benchmark, "std")]
    best_mean = overall.max() if overall.notna().any() else None
    md["Mean"] = _cells(pd.DataFrame({"mean": overall, "std": float("nan")}), best_mean)
    md["Coverage"] = coverage.astype(str) + f"/{len(names) - len(diagnostic)}"
    csv["mean"], csv["coverage"] = overall, coverage
    return _markdown(md, 2), csv


# --- the whole leaderboard -----------------------------------------------------------------------
@dataclass
class LeaderboardSummary:
    out: Path
    files: list[Path] = field(default_factory=list)
    corrupt: list[CorruptResult] = field(default_factory=list)
    suites: list[str] = field(default_factory=list)
    wandb_run_id: str | None = None


def _footer(records: Sequence[ResultRecord], suite: str, date: str) -> str:
    commits = sorted({(r.environment.git_commit or "unknown")[:12]
                      + ("-dirty" if r.environment.git_dirty else "") for r in records})
    presets: set[str] = set()
    for r in records:
        for part in r.data.values():
            syn = part.get("synthetic") if isinstance(part, dict) else None
            if syn and syn.get("preset"):
                presets.add(str(syn["preset"]))
    preset = ", ".join(sorted(presets)) if presets else "real data"
    return (f"Generated {date} by `avbench leaderboard` · suite `{suite}` · "
            f"commit {', '.join(commits)} · data preset {preset}")


def plot_frame(scores: pd.DataFrame, tables: Sequence[BenchmarkTable]) -> pd.DataFrame:
    """What :func:`avbench.runner.plots.write_plots` draws: one row per result of one suite.

    Columns: those of :func:`scores_frame` without the per-metric ones, plus ``value``
    (the main score, NaN when missing) and ``main_lower`` (lower is better for the
    benchmark's main score).
    """
    main = scores[scores["metric"] == scores["main_score"]].set_index(RESULT_KEY)["value"]
    runs = (scores.drop_duplicates(RESULT_KEY).drop(columns=["metric", "value", "lower"])
            .join(main, on=RESULT_KEY))
    lower = {t.benchmark: t.main_score in t.lower for t in tables}
    return runs.assign(main_lower=runs["benchmark"].map(lower).astype(bool))


def write_leaderboard(
    results: str | Path,
    out: str | Path,
    *,
    date: str | None = None,
    wandb_mode: str | None = None,
    plots: bool = True,
) -> LeaderboardSummary:
    """Write ``<out>/overview.md|csv``, ``<out>/<benchmark>.md|csv`` and ``<out>/plots/*.png``.

    Per suite (``<out>/<suite>/`` when the store holds several). ``plots=False``
    skips the figures (and their links) for speed.
    """
    store = ResultStore(results)
    records, corrupt = store.load_all()
    out = Path(out)
    summary = LeaderboardSummary(out=out, corrupt=corrupt)
    date = date or datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    scores = scores_frame(records)
    summary.suites = sorted(scores["suite"].unique())
    frames: dict[str, pd.DataFrame] = {}
    for suite, suite_scores in scores.groupby("suite", sort=True):
        dest = out if len(summary.suites) == 1 else out / suite
        tables = [benchmark_table(b) for _, b in suite_scores.groupby("benchmark", sort=True)]
        footer = _footer(suite_scores.drop_duplicates(RESULT_KEY)["record"].tolist(), suite, date)
        for t in tables:
            md, df = render_benchmark(t)
            summary.files += _write(dest, t.benchmark, f"# {t.benchmark} (suite `{suite}`)\n\n{md}\n"
                                    f"---\n{footer}\n", df)
            frames[f"{suite}/{t.benchmark}"] = df
        ov_md, ov_df = render_overview(tables)
        frames[f"{suite}/overview"] = ov_df
        plot_md: list[str] = []
        if plots:
            from avbench.runner.plots import write_plots

            figs = write_plots(dest, plot_frame(suite_scores, tables), store)
            summary.files += [f.path for f in figs]
            plot_md = _plot_links(figs, dest)
        notes = _overview_notes(tables)
        if corrupt:
            notes += ["", "Corrupt result files (ignored; rerun `avbench benchmark` to recompute):",
                      "", *[f"- `{c.path}`: {c.problem}" for c in corrupt]]
        body = [f"# Leaderboard: suite `{suite}`", "",
                "Main score of every benchmark, mean ± std over seeds; best in **bold**. "
                "Mean: over the benchmarks run for the row's training data, only for rows "
                "that have all of them"
                + _diagnostic_legend(tables) + ". ⚠: train/test "
                "leak (see the benchmark page)." + _warned_legend(tables), "", ov_md, *notes, "",
                *["- [" + t.benchmark + f"]({t.benchmark}.md)" for t in tables],
                *plot_md, "", "---", footer, ""]
        summary.files += _write(dest, "overview", "\n".join(body), ov_df)
    if frames:
        from avbench.runner.wandb_utils import log_tables

        summary.wandb_run_id = log_tables(frames, suite=",".join(summary.suites),
                                          save_dir=Path(results), mode=wandb_mode)
    return summary


def _warned_legend(tables: Sequence[BenchmarkTable]) -> str:
    """The overview's legend of :data:`WARNED` ("" when no row has fit warnings)."""
    if not any(t.rows["warned"].any() for t in tables):
        return ""
    return f" {WARNED}: doubtful checkpoint selection (fit warnings, see the benchmark pages)."


def _overview_notes(tables: Sequence[BenchmarkTable]) -> list[str]:
    """A note per benchmark evaluated on fewer than :data:`FEW_SAMPLES` samples."""
    few = [t for t in tables if t.n_samples is not None and t.n_samples[0] < FEW_SAMPLES]
    if not few:
        return []
    return ["", f"Few samples (fewer than {FEW_SAMPLES}; differences between rows are "
            "mostly noise):", "", *[f"- {t.benchmark}: {t.samples_text()} evaluated samples"
                                     for t in few]]


def _plot_links(figs: Sequence[Any], dest: Path) -> list[str]:
    """Markdown image links (relative to the overview) under a "Plots" heading."""
    if not figs:
        return []
    lines = ["", "## Plots"]
    bench: str | None = ""
    for f in sorted(figs, key=lambda f: (f.benchmark is not None, f.benchmark or "")):
        if f.benchmark != bench:
            bench = f.benchmark
            lines += ["", f"### {bench}" if bench else "### Main scores", ""]
        lines.append(f"![{f.caption}]({f.path.relative_to(dest).as_posix()})")
    return lines


def _write(dest: Path, stem: str, md: str, df: pd.DataFrame) -> list[Path]:
    md_path, csv_path = dest / f"{stem}.md", dest / f"{stem}.csv"
    atomic_write_text(md_path, md)
    atomic_write_text(csv_path, df.to_csv(index=False, float_format="%.6g"))
    return [md_path, csv_path]


__all__ = ["FEW_SAMPLES", "WARNED", "BenchmarkTable", "LeaderboardSummary", "benchmark_table",
           "evaluated_samples", "lower_is_better",
           "plot_frame", "render_benchmark", "render_overview", "scores_frame", "write_leaderboard"]
