"""Leaderboard tables from the result store (Markdown + CSV, pandas).

Per benchmark: one row per (model, training dataset) and per trivial
baseline, one column per metric, cells ``mean ± std`` over the seeds that
finished (sample std, ddof=1; a single seed shows the mean only), the best
mean of each column in bold (``shd``-like metrics: lowest), the seeds that
finished over the seeds expected, and notes for failed runs and train/test
leaks (rows marked ⚠). The overview has the main score of every benchmark
and their mean, taken only over rows that have every benchmark (else ``—``).
A footer names the commit(s), the date, the suite and the data preset.

Corrupt result files are listed in the overview's notes and never used.
Figures (success curves, heat-map galleries, seed bars) go to ``plots/``
(:mod:`avbench.runner.plots`) and are linked from the overview.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from avbench.runner.results import (
    LOWER_IS_BETTER,
    CorruptResult,
    ResultRecord,
    ResultStore,
    atomic_write_text,
)

DASH = "—"


@dataclass(frozen=True, order=True)
class RowKey:
    kind_order: int  # models first, then baselines
    model: str
    train_dataset: str

    @property
    def kind(self) -> str:
        return "model" if self.kind_order == 0 else "baseline"

    def label(self) -> str:
        return self.model if self.kind == "model" else f"{self.model} (trivial)"


def _row_key(r: ResultRecord) -> RowKey:
    if r.kind == "baseline":
        return RowKey(1, r.model, DASH)
    return RowKey(0, r.model, r.train_dataset or DASH)


@dataclass
class Cell:
    values: list[float] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.values) if self.values else None

    @property
    def std(self) -> float | None:
        return statistics.stdev(self.values) if len(self.values) > 1 else None

    def text(self, digits: int = 3) -> str:
        if not self.values:
            return DASH
        if self.std is None:
            return f"{self.mean:.{digits}f}"
        return f"{self.mean:.{digits}f} ± {self.std:.{digits}f}"


@dataclass
class Row:
    key: RowKey
    cells: dict[str, Cell] = field(default_factory=dict)
    seeds_ok: set[Any] = field(default_factory=set)
    failed: list[ResultRecord] = field(default_factory=list)
    leaks: list[str] = field(default_factory=list)
    records: list[ResultRecord] = field(default_factory=list)  # the ok seeds (for the plots)


@dataclass
class BenchmarkTable:
    benchmark: str
    metrics: list[str]
    main_score: str
    rows: dict[RowKey, Row]
    seeds_expected: int

    def best(self, metric: str) -> float | None:
        means = [r.cells[metric].mean for r in self.rows.values()
                 if metric in r.cells and r.cells[metric].mean is not None]
        if not means:
            return None
        return min(means) if _lower_better(metric) else max(means)


def _lower_better(metric: str) -> bool:
    return metric in LOWER_IS_BETTER or metric.endswith("_loss")


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def _metric_order(records: list[ResultRecord]) -> list[str]:
    from avbench.benchmarks import BENCHMARKS

    bench = BENCHMARKS.get(records[0].benchmark)
    present = {k for r in records for k in r.metrics}
    names = [m for m in (bench.metrics if bench is not None else ()) if m in present]
    for r in records:
        for k in r.metrics:
            if k not in names:
                names.append(k)
    return names


def benchmark_table(records: list[ResultRecord]) -> BenchmarkTable:
    """Aggregate the results of one benchmark (one suite) over seeds."""
    metrics = _metric_order(records)
    rows: dict[RowKey, Row] = {}
    for r in sorted(records, key=lambda r: (_row_key(r), r.seed if r.seed is not None else -1)):
        row = rows.setdefault(_row_key(r), Row(_row_key(r)))
        if not r.ok:
            row.failed.append(r)
            continue
        row.seeds_ok.add(r.seed)
        row.records.append(r)
        for m in metrics:
            row.cells.setdefault(m, Cell())
            v = r.metrics.get(m)
            if _finite(v):
                row.cells[m].values.append(float(v))  # type: ignore[arg-type]
        if r.leak and r.leak.get("n_overlap", 0) > 0:
            row.leaks.append(_leak_text(r))
    seeds = [len(row.seeds_ok) + len(row.failed) for row in rows.values() if row.key.kind == "model"]
    return BenchmarkTable(
        benchmark=records[0].benchmark, metrics=metrics, main_score=records[0].main_score,
        rows=dict(sorted(rows.items())), seeds_expected=max(seeds, default=1),
    )


def _leak_text(r: ResultRecord) -> str:
    from avbench.benchmarks import LeakReport

    leak = LeakReport.model_validate({k: v for k, v in (r.leak or {}).items()
                                      if k != "overlap_fraction"})
    return f"seed {r.seed}: {leak.summary()}"


# --- rendering --------------------------------------------------------------------------------
def _md(header: list[str], rows: list[list[str]], align: list[str]) -> str:
    sep = {"l": ":---", "r": "---:", "c": ":---:"}
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(sep[a] for a in align) + " |"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _bold_if(text: str, value: float | None, best: float | None) -> str:
    if value is not None and best is not None and math.isclose(value, best, rel_tol=0, abs_tol=1e-12):
        return f"**{text}**"
    return text


def _csv_ds(key: RowKey) -> str:
    return "" if key.train_dataset == DASH else key.train_dataset


def _seeds_text(row: Row, expected: int) -> str:
    if row.key.kind == "baseline":
        return f"{len(row.seeds_ok)}/1"
    return f"{len(row.seeds_ok)}/{expected}"


def _label(row: Row) -> str:
    return ("⚠ " if row.leaks else "") + row.key.label()


def render_benchmark(t: BenchmarkTable) -> tuple[str, Any]:
    """(Markdown, DataFrame) of one benchmark table."""
    import pandas as pd

    header = ["Model", "Train data", *[f"{m}{' ↓' if _lower_better(m) else ''}" for m in t.metrics],
              "Seeds"]
    md_rows, csv_rows, notes = [], [], []
    best = {m: t.best(m) for m in t.metrics}
    for row in t.rows.values():
        cells = []
        for m in t.metrics:
            c = row.cells.get(m, Cell())
            cells.append(_bold_if(c.text(), c.mean, best[m]))
        md_rows.append([_label(row), row.key.train_dataset, *cells, _seeds_text(row, t.seeds_expected)])
        rec: dict[str, Any] = {"model": row.key.model, "kind": row.key.kind,
                               "train_dataset": _csv_ds(row.key),
                               "seeds_ok": len(row.seeds_ok),
                               "seeds_expected": 1 if row.key.kind == "baseline" else t.seeds_expected,
                               "failed": len(row.failed), "leak": bool(row.leaks)}
        for m in t.metrics:
            c = row.cells.get(m, Cell())
            rec[f"{m}_mean"], rec[f"{m}_std"], rec[f"{m}_n"] = c.mean, c.std, c.n
        csv_rows.append(rec)
        for f in row.failed:
            msg = f.error.message.splitlines()[0][:200] if f.error and f.error.message else ""
            stage = f.error.stage if f.error else "?"
            notes.append(f"- {row.key.label()} ({row.key.train_dataset}), seed {f.seed}: "
                         f"failed in {stage}: {msg}")
        for leak in row.leaks:
            notes.append(f"- ⚠ train/test leak, {row.key.label()} ({row.key.train_dataset}), {leak}")
    align = ["l", "l", *["r"] * len(t.metrics), "r"]
    lower = "; ↓ lower is better" if any(_lower_better(m) for m in t.metrics) else ""
    md = [f"Main score: `{t.main_score}`. Mean ± std over the seeds that finished; "
          f"best in **bold**{lower}. Seeds: finished / run.", "", _md(header, md_rows, align)]
    if notes:
        md += ["", "Notes:", "", *notes]
    return "\n".join(md) + "\n", pd.DataFrame(csv_rows)


def render_overview(tables: list[BenchmarkTable]) -> tuple[str, Any]:
    import pandas as pd

    keys = sorted({k for t in tables for k in t.rows})
    names = [t.benchmark for t in tables]
    cells = {(k, t.benchmark): t.rows[k].cells.get(t.main_score, Cell()) if k in t.rows else Cell()
             for k in keys for t in tables}
    means: dict[RowKey, float | None] = {}
    for k in keys:
        vals = [cells[(k, b)].mean for b in names]
        means[k] = statistics.fmean(vals) if vals and all(v is not None for v in vals) else None  # type: ignore[arg-type]
    best = {}
    for t in tables:
        vals = [cells[(k, t.benchmark)].mean for k in keys if cells[(k, t.benchmark)].mean is not None]
        lower = _lower_better(t.main_score)
        best[t.benchmark] = (min(vals) if lower else max(vals)) if vals else None
    complete = [m for m in means.values() if m is not None]
    best_mean = max(complete) if complete else None
    header = ["Model", "Train data", *[f"{t.benchmark} ({t.main_score})" for t in tables],
              "Mean", "Coverage"]
    md_rows, csv_rows = [], []
    for k in keys:
        leak = any(k in t.rows and t.rows[k].leaks for t in tables)
        label = ("⚠ " if leak else "") + k.label()
        row_cells = [_bold_if(cells[(k, b)].text(), cells[(k, b)].mean, best[b]) for b in names]
        have = sum(cells[(k, b)].mean is not None for b in names)
        m = means[k]
        md_rows.append([label, k.train_dataset, *row_cells,
                        _bold_if(f"{m:.3f}", m, best_mean) if m is not None else DASH,
                        f"{have}/{len(names)}"])
        rec: dict[str, Any] = {"model": k.model, "kind": k.kind, "train_dataset": _csv_ds(k)}
        for b in names:
            rec[b], rec[f"{b}_std"] = cells[(k, b)].mean, cells[(k, b)].std
        rec["mean"], rec["coverage"] = m, have
        csv_rows.append(rec)
    align = ["l", "l", *["r"] * len(names), "r", "r"]
    md = _md(header, md_rows, align)
    return md, pd.DataFrame(csv_rows)


# --- the whole leaderboard -----------------------------------------------------------------------
@dataclass
class LeaderboardSummary:
    out: Path
    files: list[Path] = field(default_factory=list)
    corrupt: list[CorruptResult] = field(default_factory=list)
    suites: list[str] = field(default_factory=list)
    wandb_run_id: str | None = None


def _footer(records: list[ResultRecord], suite: str, date: str) -> str:
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
    by_suite: dict[str, list[ResultRecord]] = defaultdict(list)
    for r in records:
        by_suite[r.suite].append(r)
    summary.suites = sorted(by_suite)
    frames: dict[str, Any] = {}
    for suite, recs in sorted(by_suite.items()):
        dest = out if len(by_suite) == 1 else out / suite
        by_bench: dict[str, list[ResultRecord]] = defaultdict(list)
        for r in recs:
            by_bench[r.benchmark].append(r)
        tables = [benchmark_table(by_bench[b]) for b in sorted(by_bench)]
        footer = _footer(recs, suite, date)
        sections = []
        for t in tables:
            md, df = render_benchmark(t)
            sections.append(md)
            summary.files += _write(dest, t.benchmark, f"# {t.benchmark} (suite `{suite}`)\n\n{md}\n"
                                    f"---\n{footer}\n", df)
            frames[f"{suite}/{t.benchmark}"] = df
        ov_md, ov_df = render_overview(tables)
        frames[f"{suite}/overview"] = ov_df
        plot_md: list[str] = []
        if plots:
            from avbench.runner.plots import write_plots

            figs = write_plots(dest, tables, store)
            summary.files += [f.path for f in figs]
            plot_md = _plot_links(figs, dest)
        notes = []
        if corrupt:
            notes += ["", "Corrupt result files (ignored; rerun `avbench benchmark` to recompute):",
                      "", *[f"- `{c.path}`: {c.problem}" for c in corrupt]]
        body = [f"# Leaderboard: suite `{suite}`", "",
                "Main score of every benchmark, mean ± std over seeds; best in **bold**. "
                "Mean: over benchmarks, only for rows that have all of them. ⚠: train/test "
                "leak (see the benchmark page).", "", ov_md, *notes, "",
                *["- [" + t.benchmark + f"]({t.benchmark}.md)" for t in tables],
                *plot_md, "", "---", footer, ""]
        summary.files += _write(dest, "overview", "\n".join(body), ov_df)
    if frames:
        from avbench.runner.wandb_utils import log_tables

        summary.wandb_run_id = log_tables(frames, suite=",".join(summary.suites),
                                          save_dir=Path(results), mode=wandb_mode)
    return summary


def _plot_links(figs: list[Any], dest: Path) -> list[str]:
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


def _write(dest: Path, stem: str, md: str, df: Any) -> list[Path]:
    md_path, csv_path = dest / f"{stem}.md", dest / f"{stem}.csv"
    atomic_write_text(md_path, md)
    atomic_write_text(csv_path, df.to_csv(index=False, float_format="%.6g"))
    return [md_path, csv_path]


__all__ = ["BenchmarkTable", "LeaderboardSummary", "benchmark_table", "render_benchmark",
           "render_overview", "write_leaderboard"]
