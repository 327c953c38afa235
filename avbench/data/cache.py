"""Decode a dataset once: in this process's RAM, or on disk for every process and run.

Every avbench dataset loads deterministically (no random augmentation in
``load``), so the decoded samples of an epoch are the same in every epoch,
every job and every seed. Training augmentation is applied after the cache
read (:class:`avbench.data.augment.AugmentedDataset`), so a cached split is
still augmented afresh in every epoch. ``AVDataModule(cache=...)`` chooses:

``"memory"`` (``True``) — :func:`cache_in_memory`
    Decodes each split once (with the module's workers) into a process-wide
    store keyed by the dataset's type, its settings and its records, and
    serves it from RAM with no workers. Jobs of one process that read the same
    split share one copy; every process (runner worker, DDP rank) decodes and
    holds its own: about ``3 * S^2 * 4 + L * 4`` bytes per clip (S = image
    side, L = audio samples), ~0.8 GB for the 2,000 clips of synthetic
    VGGSound at 128 px and 3 s.

``"disk"`` — :func:`cache_on_disk`
    The decoded samples are written ONCE per key (below) into a directory of
    memory-mapped numpy files under ``cache_dir`` (:func:`default_cache_dir`:
    ``$AVBENCH_CACHE_DIR``, else ``$XDG_CACHE_HOME/avbench/decoded``, else
    ``~/.cache/avbench/decoded``) and read by every job, loader worker, runner
    worker and DDP rank, in this run and later ones, without decoding. The
    pages live once in the OS page cache, shared by all readers.

Entry layout (``<cache_dir>/<dataset type>-<key[:24]>/``)::

    <field>.npy          one per tensor field of fixed shape and dtype: [N, ...]
                         (``np.lib.format.open_memmap``; float32 stays float32)
    <field>.ragged.bin   tensor fields whose shape varies (e.g. native-size
                         frames): the flat values; offsets and shapes in meta.pkl
    meta.pkl             per-sample key order, the non-tensor values (id,
                         label, class name, boxes...), ragged offsets/shapes
    manifest.json        written LAST: format, key, sample count, fields
                         (kind, dtype, shape), per-file size and checksum

Key (:func:`disk_cache_key`): sha256 of the cache format, the in-memory key
(:func:`dataset_key`: dataset type, the datamodule's settings incl. split,
root, every record), the dataset's own plain settings (image size, sample
rate, clip seconds, frame interpolation, source...), the identity of its data
files (size and ``mtime_ns`` of every file :meth:`AVDataset.required_files`
names for every record, plus the files directly in the root and in
``metadata/``) and a fingerprint of the decoding code (the ``.py`` files of
``avbench/data`` outside ``synthetic/``). Changed data, preprocessing or
decoding code -> another key -> a new entry; nothing stale is read.

Writing: one writer per key. A process takes an exclusive ``fcntl.flock`` on
``<cache_dir>/.locks/<entry>.lock``; others block there and then read what it
published. The writer removes a torn entry and any temp dir a killed writer
left behind (it holds the lock, so they are dead), decodes into
``.<entry>.tmp-<pid>`` next to the target, fsyncs every file, writes the
manifest (:func:`avbench.atomic_io.atomic_write_text`), fsyncs the directory
and renames it onto the entry (atomic on POSIX). Reading: an entry is used
only when its manifest parses, names this key and format, and every file it
lists exists with the recorded size and checksum (blake2b of the size and 17
evenly spaced 4 KiB blocks: truncation, a missing or torn file, another key
are all caught; a flipped byte between blocks is not). Anything else is
logged, removed and rebuilt under the lock, never read.

Old entries are never read again once their key changed; they stay until
removed. Each cache hit logs one line with the entry's size and the whole
cache directory's. Clear with ``rm -rf "$AVBENCH_CACHE_DIR"`` (or
``~/.cache/avbench/decoded``) when no run uses it, or
``python -c "from avbench.data.cache import clear_disk_cache; clear_disk_cache()"``;
:func:`prune_disk_cache` (run after every build) removes entries whose data
root no longer exists (e.g. test data in temp directories).

Measured on 2 cores (``benchmarks/perf/README.md``, "Decoded-sample cache").
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import pickle
import shutil
import time
from collections.abc import Hashable, Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from avbench.atomic_io import atomic_write_text
from avbench.data.datasets.base import DatasetView
from avbench.data.errors import CacheDirError

log = logging.getLogger(__name__)

#: ``AVDataModule(cache=...)`` modes besides ``False`` (``True`` means ``"memory"``)
CacheMode = Literal["memory", "disk"]
#: bump when the entry layout changes (part of every disk key)
CACHE_FORMAT = 1
_MANIFEST = "manifest.json"
_META = "meta.pkl"
_TMP = ".tmp-"
_BLOCK = 4096
_N_BLOCKS = 17

#: key -> decoded samples (process-wide; see :func:`clear_cache`)
_STORE: dict[Hashable, list[dict[str, Any]]] = {}


def _identity(sample: dict[str, Any]) -> dict[str, Any]:
    return sample


def _own(value: Any) -> Any:
    # Tensors from loader workers live in shared memory, one file descriptor
    # each; thousands of them exhaust the fd limit, so copy into private memory.
    if isinstance(value, torch.Tensor):
        return value.clone()
    return value


def _decoded(dataset: Dataset, num_workers: int, desc: str, progress: bool) -> Iterator[dict]:
    """The samples of ``dataset`` in order, decoded by ``num_workers`` loader workers."""
    loader = DataLoader(dataset, batch_size=None, shuffle=False, num_workers=num_workers,
                        collate_fn=_identity)
    if not progress:
        return iter(loader)
    from tqdm.auto import tqdm

    # disable=None: a bar on a terminal, nothing in logs
    return iter(tqdm(loader, total=len(dataset), desc=desc, leave=False,  # type: ignore[arg-type]
                     disable=None))


def dataset_key(dataset: Dataset, settings: dict[str, Any]) -> str:
    """Stable key of ``dataset``: its type, ``settings`` and the repr of its records."""
    h = hashlib.sha256(type(dataset).__qualname__.encode())
    h.update(repr(sorted(settings.items())).encode())
    h.update(repr(getattr(dataset, "root", "")).encode())
    for rec in getattr(dataset, "records", range(len(dataset))):  # type: ignore[arg-type]
        h.update(repr(rec).encode())
    return h.hexdigest()


class InMemoryDataset(DatasetView):
    """The samples of ``source``, decoded once; indexing returns the stored dict.

    Other attributes come from the source dataset (:class:`DatasetView`).
    """

    def __init__(self, source: Dataset, samples: list[dict[str, Any]]) -> None:
        super().__init__(source)
        self.samples = samples

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.samples[index]


def cache_in_memory(
    dataset: Dataset,
    settings: dict[str, Any] | None = None,
    *,
    num_workers: int = 0,
    desc: str = "cache",
    progress: bool = True,
) -> InMemoryDataset:
    """``dataset`` decoded once into RAM, shared by every later call with the same key.

    Args:
        dataset: a deterministic map-style dataset of sample dicts.
        settings: what else defines the samples (image size, sample rate...);
            part of the key.
        num_workers: loader workers for the one decoding pass.
        desc, progress: progress bar label and switch.
    """
    key = dataset_key(dataset, settings or {})
    samples = _STORE.get(key)
    if samples is None:
        items = _decoded(dataset, num_workers, desc, progress)
        samples = [{k: _own(v) for k, v in s.items()} for s in items]
        _STORE[key] = samples
        log.info("%s: cached %d samples in memory", desc, len(samples))
    return InMemoryDataset(dataset, samples)


def clear_cache() -> None:
    """Drop every dataset cached in this process's memory (the disk cache is untouched)."""
    _STORE.clear()


def cache_size() -> int:
    """Number of datasets cached in this process's memory."""
    return len(_STORE)


# --- disk cache: key ----------------------------------------------------------------------
def default_cache_dir() -> Path:
    """``$AVBENCH_CACHE_DIR``, else ``$XDG_CACHE_HOME/avbench/decoded``, else
    ``~/.cache/avbench/decoded``."""
    if os.environ.get("AVBENCH_CACHE_DIR"):
        return Path(os.environ["AVBENCH_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "avbench" / "decoded"


def _plain(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool, type(None), Path, tuple))


def _stat_line(path: Path) -> str:
    try:
        st = path.stat()
    except OSError:
        return f"{path}:absent"
    return f"{path}:{st.st_size}:{st.st_mtime_ns}"


def data_files_identity(dataset: Dataset) -> str:
    """sha256 of the size and ``mtime_ns`` of every file the dataset reads: the
    :meth:`required_files` of each record, its ``annotation_file`` and the files
    directly in its root and in ``root/metadata`` (stat only; nothing is read).
    A missing ``required_files`` method or root contributes nothing."""
    h = hashlib.sha256()
    required = getattr(dataset, "required_files", None)
    for rec in getattr(dataset, "records", []):
        if required is not None:
            for path in required(rec):
                h.update(_stat_line(Path(path)).encode())
    annotation = getattr(dataset, "annotation_file", None)
    if annotation is not None:
        h.update(_stat_line(Path(annotation)).encode())
    root = getattr(dataset, "root", None)
    for folder in (Path(root), Path(root) / "metadata") if root is not None else ():
        if folder.is_dir():
            for entry in sorted(os.scandir(folder), key=lambda e: e.name):
                if entry.is_file():
                    h.update(_stat_line(Path(entry.path)).encode())
    return h.hexdigest()


def _code_fingerprint() -> str:
    """sha256 of the decoding code: ``avbench/data/**/*.py`` outside ``synthetic/``."""
    here = Path(__file__).parent
    h = hashlib.sha256()
    for path in sorted(here.rglob("*.py")):
        rel = path.relative_to(here)
        if rel.parts[0] != "synthetic":
            h.update(str(rel).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def disk_cache_key(dataset: Dataset, settings: dict[str, Any] | None = None) -> str:
    """The disk cache key of ``dataset`` (module docstring): format, :func:`dataset_key`,
    the dataset's own plain attributes, :func:`data_files_identity`, the decoding code."""
    own = {k: v for k, v in vars(dataset).items() if not k.startswith("_") and _plain(v)}
    own["frame_interpolation"] = getattr(dataset, "frame_interpolation", None)
    h = hashlib.sha256(f"avbench-decoded-v{CACHE_FORMAT}".encode())
    for part in (dataset_key(dataset, settings or {}), repr(sorted(own.items())),
                 data_files_identity(dataset), _code_fingerprint()):
        h.update(part.encode())
    return h.hexdigest()


# --- disk cache: files --------------------------------------------------------------------
def _checksum(path: Path) -> str:
    """blake2b of the file size and 17 evenly spaced 4 KiB blocks (first and last included)."""
    size = path.stat().st_size
    h = hashlib.blake2b(str(size).encode(), digest_size=16)
    with open(path, "rb") as f:
        last = max(0, size - _BLOCK)
        for i in range(_N_BLOCKS):
            f.seek(last * i // (_N_BLOCKS - 1))
            h.update(f.read(_BLOCK))
    return h.hexdigest()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _FieldWriter:
    """Collects one tensor field row by row: a fixed ``[N, ...]`` ``.npy`` memmap while
    every row has the first row's shape, a flat ``.ragged.bin`` once one differs."""

    def __init__(self, folder: Path, name: str, n: int, first: np.ndarray) -> None:
        self.folder, self.name, self.n = folder, name, n
        self.dtype = first.dtype
        self.shape = first.shape
        self.kind = "fixed"
        self.array: np.ndarray | None = np.lib.format.open_memmap(
            self.path, mode="w+", dtype=self.dtype, shape=(n, *first.shape))
        self.rows: dict[int, tuple[int, tuple[int, ...]]] = {}  # ragged: index -> (offset, shape)
        self.flat: Any = None
        self.written = 0

    @property
    def path(self) -> Path:
        suffix = ".npy" if self.kind == "fixed" else ".ragged.bin"
        return self.folder / f"{self.name}{suffix}"

    def accepts(self, value: np.ndarray) -> bool:
        return value.dtype == self.dtype

    def add(self, index: int, value: np.ndarray) -> None:
        if self.kind == "fixed" and value.shape != self.shape:
            self._to_ragged()
        if self.kind == "fixed":
            assert self.array is not None
            self.array[index] = value
            self.rows[index] = (index, value.shape)
        else:
            self.rows[index] = (self.written, value.shape)
            self.flat.write(np.ascontiguousarray(value).tobytes())
            self.written += value.size

    def _to_ragged(self) -> None:
        assert self.array is not None
        old, old_path, rows = self.array, self.path, dict(self.rows)
        self.kind, self.rows = "ragged", {}
        self.flat = open(self.path, "wb")  # noqa: SIM115 - closed in finish()
        for index in sorted(rows):
            self.add(index, np.asarray(old[index]))
        del old
        self.array = None
        old_path.unlink()

    def value(self, index: int) -> np.ndarray:
        """A row already written (to move a field whose dtype changed into meta)."""
        if self.kind == "fixed":
            assert self.array is not None
            return np.array(self.array[index])
        self.flat.flush()
        offset, shape = self.rows[index]
        count = int(np.prod(shape))
        data = np.fromfile(self.path, dtype=self.dtype, count=count,
                           offset=offset * self.dtype.itemsize)
        return data.reshape(shape)

    def discard(self) -> None:
        if self.flat is not None:
            self.flat.close()
        self.array = None
        self.path.unlink(missing_ok=True)

    def finish(self) -> dict[str, Any]:
        """Flush and fsync; the manifest's description of this field."""
        if self.kind == "fixed":
            assert self.array is not None
            self.array.flush()
            self.array = None
            desc = {"kind": "fixed", "shape": [self.n, *self.shape]}
        else:
            self.flat.close()
            offsets = {i: o for i, (o, _) in self.rows.items()}
            shapes = {i: list(s) for i, (_, s) in self.rows.items()}
            desc = {"kind": "ragged", "offsets": offsets, "shapes": shapes}
        _fsync(self.path)
        return desc | {"dtype": self.dtype.str, "file": self.path.name}


def _write_entry(dataset: Dataset, folder: Path, num_workers: int, desc: str,
                 progress: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """Decode ``dataset`` into ``folder``; return (fields for the manifest, meta)."""
    n = len(dataset)  # type: ignore[arg-type]
    writers: dict[str, _FieldWriter] = {}
    pickled: set[str] = set()  # tensor fields whose dtype varies: kept as tensors in meta
    keys: list[tuple[str, ...]] = []
    values: list[dict[str, Any]] = []
    for index, sample in enumerate(_decoded(dataset, num_workers, desc, progress)):
        keys.append(tuple(sample))
        rest: dict[str, Any] = {}
        for name, value in sample.items():
            if isinstance(value, torch.Tensor) and name not in pickled:
                try:
                    array = value.detach().cpu().numpy()
                except (TypeError, RuntimeError):  # no numpy dtype (bfloat16...)
                    array = None
                writer = writers.get(name)
                if array is not None and writer is None:
                    writer = writers[name] = _FieldWriter(folder, name, n, array)
                if array is not None and writer is not None and writer.accepts(array):
                    writer.add(index, array)
                    continue
                pickled.add(name)
                if writer is not None:  # earlier rows move into meta too
                    for j in writer.rows:
                        values[j][name] = torch.from_numpy(writer.value(j))
                    writer.discard()
                    del writers[name]
            rest[name] = value
        values.append(rest)
    if len(keys) != n:
        raise RuntimeError(f"{desc}: decoded {len(keys)} samples, expected {n}")
    fields = {name: w.finish() for name, w in writers.items()}
    meta = {"keys": keys, "values": values,
            "ragged": {k: (f.pop("offsets"), f.pop("shapes")) for k, f in fields.items()
                       if f["kind"] == "ragged"}}
    return fields, meta


def _entry_name(dataset: Dataset, key: str) -> str:
    return f"{type(dataset).__name__.lower()}-{key[:24]}"


def _read_manifest(entry: Path, key: str | None) -> tuple[dict[str, Any] | None, str]:
    """The entry's manifest if the entry is complete and intact (module doc), else
    ``(None, reason)``."""
    path = entry / _MANIFEST
    if not path.is_file():
        return None, "no manifest (torn: the writer did not finish)"
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        return None, f"unreadable manifest ({err})"
    if manifest.get("format") != CACHE_FORMAT or (key is not None and manifest.get("key") != key):
        return None, "manifest of another key or format"
    for name, info in manifest.get("files", {}).items():
        file = entry / name
        if not file.is_file():
            return None, f"{name} is missing"
        if file.stat().st_size != info["size"]:
            return None, f"{name} has {file.stat().st_size} bytes, manifest says {info['size']}"
        if _checksum(file) != info["checksum"]:
            return None, f"{name} does not match its checksum"
    return manifest, ""


def _remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def _locked(cache_dir: Path, name: str) -> Iterator[None]:
    """Hold the exclusive lock of entry ``name`` (blocks while another process holds it).

    Raises:
        CacheDirError: ``cache_dir`` cannot be created or written.
    """
    locks = cache_dir / ".locks"
    try:
        locks.mkdir(parents=True, exist_ok=True)
        fh = open(locks / f"{name}.lock", "a+")  # noqa: SIM115 (closed by the with below)
    except OSError as err:
        raise CacheDirError(
            f"{cache_dir}: the decoded-sample cache directory cannot be written ({err}); set "
            "$AVBENCH_CACHE_DIR to a writable directory, or use cache: memory") from err
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("%s: waiting for another process writing the decoded cache", name)
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


class DiskCachedDataset(DatasetView):
    """The samples of ``source`` read from a published disk cache entry (no decoding).

    Indexing returns a new dict whose tensors are private copies of the
    memory-mapped rows (same dtype, shape and values as ``source[index]``).
    Files are opened lazily in each process (pickling drops the maps, so loader
    workers and spawned processes reopen them). Other attributes come from the
    source dataset (:class:`DatasetView`).

    Attributes:
        entry: the entry directory.
        manifest: its manifest (fields, sample count, sizes...).
        built_here: whether this call wrote the entry (``False``: read a published one).
    """

    def __init__(self, source: Dataset, entry: Path, manifest: dict[str, Any],
                 built_here: bool = False) -> None:
        super().__init__(source)
        self.entry = entry
        self.manifest = manifest
        self.built_here = built_here
        self._open: dict[str, Any] | None = None

    def __len__(self) -> int:
        return int(self.manifest["n"])

    def __getstate__(self) -> dict[str, Any]:
        return self.__dict__ | {"_open": None}

    def _files(self) -> dict[str, Any]:
        if self._open is None:
            with open(self.entry / _META, "rb") as f:
                meta = pickle.load(f)  # noqa: S301 - our own file, checksummed
            arrays: dict[str, np.ndarray] = {}
            for name, info in self.manifest["fields"].items():
                path = self.entry / info["file"]
                if info["kind"] == "fixed":
                    arrays[name] = np.load(path, mmap_mode="r")
                elif path.stat().st_size:
                    arrays[name] = np.memmap(path, dtype=np.dtype(info["dtype"]), mode="r")
                else:  # np.memmap refuses empty files
                    arrays[name] = np.empty(0, dtype=np.dtype(info["dtype"]))
            self._open = {"meta": meta, "arrays": arrays}
        return self._open

    def __getitem__(self, index: int) -> dict[str, Any]:
        files = self._files()
        meta, arrays = files["meta"], files["arrays"]
        if index < 0:
            index += len(self)
        values = meta["values"][index]
        sample: dict[str, Any] = {}
        for name in meta["keys"][index]:
            if name in values:
                sample[name] = values[name]
            elif name in meta["ragged"]:
                offsets, shapes = meta["ragged"][name]
                shape = shapes[index]
                start = offsets[index]
                flat = arrays[name][start:start + int(np.prod(shape))]
                sample[name] = torch.from_numpy(np.array(flat).reshape(shape))
            else:
                sample[name] = torch.from_numpy(np.array(arrays[name][index]))
        return sample


def _entry_bytes(entry: Path) -> int:
    return sum(f.stat().st_size for f in entry.iterdir() if f.is_file())


def disk_cache_entries(cache_dir: str | Path | None = None) -> list[dict[str, Any]]:
    """The published entries under ``cache_dir`` (default :func:`default_cache_dir`):
    ``name``, ``bytes``, ``n``, ``desc``, ``root``, ``created`` each (manifest only, not verified)."""
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    out = []
    for entry in sorted(cache_dir.glob("*")) if cache_dir.is_dir() else []:
        manifest_path = entry / _MANIFEST
        if entry.name.startswith(".") or not manifest_path.is_file():
            continue
        try:
            manifest = json.loads(manifest_path.read_text())
        except ValueError:
            continue
        out.append({"name": entry.name, "bytes": _entry_bytes(entry), "n": manifest.get("n"),
                    "desc": manifest.get("desc"), "root": manifest.get("root"),
                    "created": manifest.get("created")})
    return out


def clear_disk_cache(cache_dir: str | Path | None = None) -> int:
    """Remove every entry (and leftover temp dir) under ``cache_dir``; return bytes freed.
    Only while no process uses the cache (a reader opening an entry later would fail)."""
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    freed = 0
    for entry in cache_dir.glob("*") if cache_dir.is_dir() else []:
        if entry.is_dir() and entry.name != ".locks":
            freed += _entry_bytes(entry)
            _remove(entry)
    return freed


def prune_disk_cache(cache_dir: str | Path | None = None) -> list[str]:
    """Remove the entries whose data root no longer exists (nothing can read them again:
    their key names the root); return their names."""
    gone = []
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    for info in disk_cache_entries(cache_dir):
        if info["root"] and not Path(info["root"]).exists():
            with _locked(cache_dir, info["name"]):
                _remove(cache_dir / info["name"])
            gone.append(info["name"])
    return gone


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def _size_line(cache_dir: Path, entry: Path) -> str:
    entries = disk_cache_entries(cache_dir)
    total = sum(e["bytes"] for e in entries)
    return (f"{_human(_entry_bytes(entry))}; {cache_dir} holds {len(entries)} entries, "
            f"{_human(total)}; clear_disk_cache() or rm -rf it to free")


def cache_on_disk(
    dataset: Dataset,
    settings: dict[str, Any] | None = None,
    cache_dir: str | Path | None = None,
    *,
    num_workers: int = 0,
    desc: str = "cache",
    progress: bool = True,
) -> DiskCachedDataset:
    """``dataset`` decoded once into the shared disk cache, or read from it (module doc).

    Args:
        dataset: a deterministic map-style dataset of sample dicts (tensors are
            stored in their dtype and shape; other values pickled).
        settings: what else defines the samples (the datamodule's settings and
            split); part of the key with the dataset's own settings and files.
        cache_dir: root of the cache (default :func:`default_cache_dir`).
        num_workers: loader workers for the one decoding pass.
        desc, progress: log/progress bar label and switch.

    Returns:
        A :class:`DiskCachedDataset` over the published entry.

    Raises:
        RuntimeError: the dataset yielded another number of samples than its length.
        OSError: the cache directory cannot be written.
    """
    cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    key = disk_cache_key(dataset, settings)
    name = _entry_name(dataset, key)
    entry = cache_dir / name
    manifest, reason = _read_manifest(entry, key)
    if manifest is not None:
        log.info("%s: decoded cache hit %s (%d samples, %s)", desc, entry, manifest["n"],
                 _size_line(cache_dir, entry))
        return DiskCachedDataset(dataset, entry, manifest)
    with _locked(cache_dir, name):
        manifest, reason = _read_manifest(entry, key)
        if manifest is not None:  # another process published it while we waited
            log.info("%s: decoded cache written by another process: %s", desc, entry)
            return DiskCachedDataset(dataset, entry, manifest)
        if entry.exists():
            log.warning("%s: removing a bad decoded cache entry %s: %s", desc, entry, reason)
            _remove(entry)
        for torn in cache_dir.glob(f".{name}{_TMP}*"):  # left by a killed writer
            log.warning("%s: removing %s left by an interrupted writer", desc, torn)
            _remove(torn)
        tmp = cache_dir / f".{name}{_TMP}{os.getpid()}"
        tmp.mkdir(parents=True)
        try:
            start = time.perf_counter()
            fields, meta = _write_entry(dataset, tmp, num_workers, desc, progress)
            with open(tmp / _META, "wb") as f:
                pickle.dump(meta, f, protocol=pickle.HIGHEST_PROTOCOL)
                f.flush()
                os.fsync(f.fileno())
            files = {p.name: {"size": p.stat().st_size, "checksum": _checksum(p)}
                     for p in sorted(tmp.iterdir())}
            root = getattr(dataset, "root", None)
            manifest = {
                "format": CACHE_FORMAT, "key": key, "desc": desc, "n": len(meta["keys"]),
                "fields": fields, "files": files, "root": str(root) if root else None,
                "settings": {k: repr(v) for k, v in sorted((settings or {}).items())},
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "build_seconds": round(time.perf_counter() - start, 2),
            }
            atomic_write_text(tmp / _MANIFEST, json.dumps(manifest, indent=1))
            _fsync(tmp)
            os.rename(tmp, entry)
            _fsync(cache_dir)
        except BaseException:
            _remove(tmp)
            raise
    log.info("%s: wrote decoded cache %s (%d samples in %.1f s, %s)", desc, entry,
             manifest["n"], manifest["build_seconds"], _size_line(cache_dir, entry))
    for pruned in prune_disk_cache(cache_dir):
        log.info("decoded cache: removed %s (its data root no longer exists)", pruned)
    return DiskCachedDataset(dataset, entry, manifest, built_here=True)


__all__ = [
    "CACHE_FORMAT",
    "CacheMode",
    "DiskCachedDataset",
    "InMemoryDataset",
    "cache_in_memory",
    "cache_on_disk",
    "cache_size",
    "clear_cache",
    "clear_disk_cache",
    "data_files_identity",
    "dataset_key",
    "default_cache_dir",
    "disk_cache_entries",
    "disk_cache_key",
    "prune_disk_cache",
]
