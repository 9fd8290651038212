"""Resolve a :class:`mmbench.DatasetSpec` source to rows, through the real loading code paths.

* Hub: ``snapshot_download(repo, repo_type="dataset", revision=<sha>, allow_patterns=...)`` then
  ``datasets.load_dataset(<snapshot dir>, data_files=...)``. ``load_dataset(repo_id)`` is never
  called: offline it ignores ``revision`` (see ``reference/hf-datasets.md`` §8.2, §8.4).
* Hub files: each pinned repository of a :class:`mmbench.HubFilesSource` is snapshot the same
  way and the plugin's ``read`` turns the files (archives, GeoTIFFs) into rows.
* Generator: the plugin's generator writes parquet into ``$MMBENCH_HOME/generated/...`` once;
  it is read back with the same ``load_dataset(<dir>, data_files=...)`` call as hub data.
* Local: the user's directory (``--data-dir`` / ``$MMBENCH_DATA``), validated before use.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from mmbench.errors import MMBenchError
from mmbench.files import atomic_directory, describe_os_error, mmbench_home
from mmbench.specs import (
    DatasetSpec,
    GeneratorSource,
    HubFilesSource,
    HubRepo,
    HubSource,
    LocalSource,
)

DATA_ENV = "MMBENCH_DATA"
STREAM_BATCH_ROWS = 16  # rows decoded per parquet read while a cache is built


class SplitRows:
    """The raw rows of one split with their count (needed to pre-size the cache arrays)."""

    def __init__(self, rows: Iterable[Mapping[str, Any]], count: int):
        self.rows = rows
        self.count = count


def _parquet_rows(directory: Path, patterns: str | Sequence[str]) -> int:
    """Rows of the parquet files matching ``patterns`` under ``directory``, from their footers."""
    import pyarrow.parquet as pq

    files = sorted({p for pattern in ([patterns] if isinstance(patterns, str) else patterns)
                    for p in directory.glob(pattern) if p.is_file()})
    if not files:
        raise MMBenchError(f"no data files match {patterns!r} under {directory}.")
    total = 0
    for file in files:
        try:
            total += pq.ParquetFile(file).metadata.num_rows
        except Exception as exc:  # pyarrow raises ArrowInvalid / OSError for a damaged file
            raise MMBenchError(f"the data file {file} is not readable parquet ({type(exc).__name__}); "
                               f"{REBUILD_HINT}.") from None
    return total


def guarded_rows(rows: Iterable[Mapping[str, Any]], where: Path | str) -> Iterator[Mapping[str, Any]]:
    """``rows``, with a failure *to read* the next row (a damaged file under ``where``) turned
    into one line; errors of the code that consumes each row pass through unchanged."""
    iterator = iter(rows)
    while True:
        try:
            row = next(iterator)
        except StopIteration:
            return
        except MMBenchError:
            raise
        except Exception as exc:
            raise MMBenchError(f"the data under {where} cannot be read ({type(exc).__name__}: "
                               f"{str(exc).splitlines()[0][:200] if str(exc) else ''}); {REBUILD_HINT}.") from None
        yield row


def _scan_options() -> Any:
    """Read parquet column chunks on demand: pyarrow's default pre-buffering reads whole files
    through the Python file object at once."""
    import pyarrow.dataset as pads

    return pads.ParquetFragmentScanOptions(pre_buffer=False)


def _load_parquet_dir(directory: Path, data_files: Mapping[str, Any], config: str | None, split: str) -> SplitRows:
    """Stream the split's rows from the parquet files (row group by row group): memory stays
    bounded by one row group and no Arrow copy of the data is written (``datasets`` would
    otherwise convert every shard into its own cache first, doubling disk use)."""
    import datasets

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    if split not in data_files:
        raise MMBenchError(f"split '{split}' is not among the data files ({', '.join(data_files)}).")
    count = _parquet_rows(directory, data_files[split])
    try:
        ds = datasets.load_dataset(
            str(directory), name=config, data_files={split: data_files[split]}, split=split, streaming=True,
            batch_size=STREAM_BATCH_ROWS, fragment_scan_options=_scan_options(),
        )
    except FileNotFoundError as exc:
        raise MMBenchError(f"data files for split '{split}' missing under {directory}: {exc}") from None
    return SplitRows(guarded_rows(ds, directory), count)


def _hub_snapshot(source: HubSource | HubRepo, revision: str) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError
    from huggingface_hub.utils import logging as hub_logging

    hub_logging.set_verbosity_error()  # the client's per-retry warnings: the outcome is one line below
    try:
        path = snapshot_download(
            source.repo,
            repo_type="dataset",
            revision=revision,
            allow_patterns=list(source.allow_patterns) or None,
        )
    except LocalEntryNotFoundError:
        raise MMBenchError(
            f"dataset {source.repo}@{revision[:12]} is not in the local hub cache "
            f"({os.environ.get('HF_HUB_CACHE') or os.environ.get('HF_HOME') or '~/.cache/huggingface'}) "
            "and the hub cannot be reached; connect once to download it, or point HF_HOME at a cache that has it."
        ) from None
    except HfHubHTTPError as exc:
        raise MMBenchError(f"could not download {source.repo}@{revision[:12]}: {exc}".splitlines()[0]) from None
    return Path(path)


def quiet_datasets() -> None:
    """Turn off the ``datasets`` progress bars (mmbench shows its own progress), also inside a
    plugin's generator, which may import ``datasets`` after this is called."""
    import sys

    os.environ["HF_DATASETS_DISABLE_PROGRESS_BARS"] = "1"
    if "datasets" in sys.modules:
        sys.modules["datasets"].disable_progress_bars()


REBUILD_HINT = "delete it or run with --rebuild-cache"


def generated_dir(spec: DatasetSpec, source: GeneratorSource) -> Path:
    """Where a generator's output is kept (``$MMBENCH_HOME/generated/<dataset>-v<version>``, plus
    a digest of the generating plugin's code identity when it has one)."""
    code = f"-{hashlib.sha256(spec.code_identity.encode()).hexdigest()[:8]}" if spec.code_identity else ""
    return mmbench_home() / "generated" / f"{spec.name}-v{source.version}{code}"


def _generated_dir(spec: DatasetSpec, source: GeneratorSource) -> Path:
    target = generated_dir(spec, source)
    if not target.exists():
        quiet_datasets()
        try:
            with atomic_directory(target) as tmp:
                source.generate(tmp)
        except OSError as exc:
            raise describe_os_error(exc, mmbench_home(), f"set MMBENCH_HOME to a folder with space for dataset "
                                                         f"'{spec.name}'.") from None
    return target


def local_root(spec: DatasetSpec, source: LocalSource, data_dir: str | os.PathLike | None) -> Path:
    """The validated directory of a bring-your-own dataset, or a clear error saying how to get it."""
    base = data_dir or os.environ.get(DATA_ENV)
    if not base:
        raise MMBenchError(
            f"dataset '{spec.name}' must be supplied by you: {source.how_to_get} "
            f"Then pass --data-dir DIR (or set {DATA_ENV}) so that DIR/{source.subdir} holds it."
        )
    root = Path(base).expanduser() / source.subdir
    if not root.is_dir():
        raise MMBenchError(
            f"dataset '{spec.name}' not found at {root}: {source.how_to_get} "
            f"Place it at DIR/{source.subdir} and pass --data-dir DIR (or set {DATA_ENV})."
        )
    if source.check is not None:
        problem = source.check(root)
        if problem:
            raise MMBenchError(f"dataset '{spec.name}' at {root} does not have the expected layout: {problem}")
    return root


def local_fingerprint(root: Path) -> str:
    """Identity of a bring-your-own copy for the cache key: its resolved path and the names, sizes
    and modification times of its top-level files (the list files), so another copy or an edited
    list never reuses a stale cache."""
    import hashlib

    entries = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in root.iterdir() if p.is_file())
    text = repr((str(root.resolve()), entries))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def hub_snapshots(source: HubFilesSource) -> dict[str, Path]:
    """``{repo: snapshot folder}`` of every repository of ``source``, each at its pinned sha."""
    return {r.repo: _hub_snapshot(r, r.revision) for r in source.repos}


def _counted(rows: Any) -> SplitRows:
    rows = list(rows) if not hasattr(rows, "__len__") else rows
    return SplitRows(rows, len(rows))


def split_rows(spec: DatasetSpec, split: str, revision: str, data_dir: str | os.PathLike | None = None,
               options: Mapping[str, str] | None = None) -> SplitRows:
    """Rows of ``split`` from the dataset's source at ``revision``; a dataset with options (its
    resolved :attr:`DatasetSpec.options`) gets them as the third argument of its ``read``."""
    source = spec.source
    extra = (spec.resolve_options(options or {}),) if spec.options else ()
    if isinstance(source, HubSource):
        return _load_parquet_dir(_hub_snapshot(source, revision), source.data_files, source.config, split)
    if isinstance(source, HubFilesSource):
        return _counted(source.read(hub_snapshots(source), split, *extra))
    if isinstance(source, GeneratorSource):
        return _load_parquet_dir(_generated_dir(spec, source), source.data_files, None, split)
    if isinstance(source, LocalSource):
        return _counted(source.read(local_root(spec, source, data_dir), split, *extra))
    raise MMBenchError(f"dataset '{spec.name}' has an unsupported source {type(source).__name__}.")
