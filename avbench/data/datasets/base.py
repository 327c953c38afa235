"""Base class for every avbench dataset: records over a real on-disk layout.

Subclasses parse the dataset's own list/annotation files into *records* (one
per item), say which files a record needs, and turn a record into a sample
dict (see :mod:`avbench.data.sample`). The base class implements the
``missing="error"|"skip"`` policy of DESIGN 4.2: real copies of these datasets
are always incomplete, so a dataset either fails naming the first missing file
and how many are missing, or drops those items and reports the counts.

Identity: every item has an id (``sample["id"]``, :meth:`AVDataset.record_id`)
made by a documented rule per layout (each dataset module's docstring,
docs/datasets.md). Per-sample results are keyed by it and the evaluator drops
repeated ids as multi-process padding, so :meth:`AVDataset._finalize_records`
checks that the ids are unique and raises
:class:`~avbench.data.errors.DuplicateIdError` naming the dataset, example ids
and the annotation file otherwise.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from torch.utils.data import Dataset

from avbench.data.errors import DuplicateIdError, MediaError, MissingFileError
from avbench.data.id_lists import match_ids

log = logging.getLogger(__name__)

MissingPolicy = Literal["error", "skip"]


class AVDataset(Dataset):
    """A list of records, each needing some files under ``root``.

    Subclasses set ``self.records`` and call :meth:`_finalize_records` at the
    end of ``__init__``; they implement :meth:`required_files` and
    :meth:`load`.

    ``annotation_file`` is the list/annotation file the records were read from
    (named by the duplicate-id error; subclasses set it before finalizing).

    ``skipped`` counts dropped items by reason: missing files are found at
    construction; a file that exists but fails to decode is found in
    ``__getitem__`` and, with ``missing="skip"``, replaced by the next
    loadable item (counted in ``load_failures`` of that worker process).
    """

    name: str = "dataset"
    #: how frames are resized to ``image_size`` (``"bilinear"``; the paper configs of the
    #: EZ-VSL line and JSA use ``"bicubic"`` as their test transforms do); set by the datamodule
    frame_interpolation: Literal["bilinear", "bicubic"] = "bilinear"

    def __init__(self, root: str | Path, *, missing: MissingPolicy = "error") -> None:
        if missing not in ("error", "skip"):
            raise ValueError(f"missing must be 'error' or 'skip', got {missing!r}")
        self.root = Path(root)
        if not self.root.is_dir():
            raise MissingFileError(self.root, "dataset root directory does not exist")
        self.missing = missing
        self.records: list[Any] = []
        self.annotation_file: Path | None = None
        self.skipped: Counter[str] = Counter()
        self.load_failures: Counter[str] = Counter()

    # --- to implement -------------------------------------------------
    def required_files(self, record: Any) -> Sequence[Path]:
        """Files that must exist for ``record`` to be loadable."""
        raise NotImplementedError

    def load(self, record: Any) -> dict[str, Any]:
        """Read one record into a sample dict; raise :class:`MediaError` on bad media."""
        raise NotImplementedError

    def record_id(self, record: Any) -> str:
        """The id of ``record`` (what :meth:`load` returns as ``sample["id"]``).

        ``record.id``; a mapping's ``"id"``; a record that is a plain string is its own id.
        Override when a layout keeps its id elsewhere.
        """
        if isinstance(record, dict):
            return str(record["id"])
        return str(getattr(record, "id", record))

    # --- shared machinery ---------------------------------------------
    def _check_unique_ids(self) -> None:
        """Raise :class:`DuplicateIdError` unless every record has its own id."""
        counts = Counter(self.record_id(r) for r in self.records)
        repeated = [(i, n) for i, n in counts.items() if n > 1]
        if repeated:
            where = self.annotation_file or self.root
            shown = ", ".join(f"{i!r} x{n}" for i, n in repeated[:5])
            raise DuplicateIdError(
                where,
                f"{self.describe()}: {len(repeated)} ids name more than one item "
                f"(e.g. {shown}); every item needs its own id (see the id rule of the layout)",
            )

    def _match_list_to_files(
        self, list_path: Path, ids: Sequence[str], directory: Path, suffix: str
    ) -> None:
        """Raise :class:`~avbench.data.id_lists.IdListMismatchError` when the ids of
        ``list_path`` match none, or too few, of the ``<id><suffix>`` files in
        ``directory`` (:func:`~avbench.data.id_lists.match_ids`). Nothing is
        checked when ``directory`` does not exist (the missing-file policy reports it).
        """
        if not directory.is_dir():
            return
        present = {e.name[: -len(suffix)] for e in os.scandir(directory) if e.name.endswith(suffix)}
        match_ids(list_path, ids, present, what=f"'*{suffix}' files in {directory}")

    def _finalize_records(self) -> None:
        """Check that ids are unique, then apply the missing-file policy to ``self.records``."""
        self._check_unique_ids()
        kept, missing_files = [], []
        for rec in self.records:
            absent = [p for p in self.required_files(rec) if not Path(p).exists()]
            if absent:
                missing_files.append(absent[0])
            else:
                kept.append(rec)
        if missing_files:
            n, total = len(missing_files), len(self.records)
            if self.missing == "error":
                raise MissingFileError(
                    missing_files[0],
                    f"file does not exist ({n} of {total} items of {self.describe()} "
                    "have missing files; pass missing='skip' to drop them)",
                )
            self.skipped["file does not exist"] += n
            log.warning("%s: skipped %d of %d items (missing files, e.g. %s)",
                        self.describe(), n, total, missing_files[0])
        self.records = kept

    def describe(self) -> str:
        return f"{type(self).__name__}({self.root})"

    def skip_report(self) -> str:
        """Human-readable summary of dropped items, for logs and results."""
        counts = self.skipped + self.load_failures
        if not counts:
            return f"{self.describe()}: {len(self)} items, none skipped"
        parts = ", ".join(f"{n} {why}" for why, n in counts.most_common())
        return f"{self.describe()}: {len(self)} items kept; skipped {sum(counts.values())}: {parts}"

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if self.missing == "error":
            return self.load(self.records[index])
        for step in range(len(self.records)):
            rec = self.records[(index + step) % len(self.records)]
            try:
                return self.load(rec)
            except MediaError as err:
                self.load_failures[err.problem.split(" (")[0]] += 1
                log.warning("%s: skipping unreadable item: %s", self.describe(), err)
        raise MediaError(self.root, "no loadable item in the dataset")


class DatasetView(Dataset):
    """A dataset derived from ``source`` (cached, augmented...): ``len`` and every
    attribute it does not define itself (``classes``, ``records``, ``root``,
    ``skip_report``...) come from the source."""

    def __init__(self, source: Dataset) -> None:
        self.source = source

    def __len__(self) -> int:
        return len(self.source)  # type: ignore[arg-type]

    def __getattr__(self, name: str) -> Any:
        if name == "source":  # not yet set (unpickling)
            raise AttributeError(name)
        return getattr(self.source, name)
