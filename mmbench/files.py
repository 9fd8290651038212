"""Atomic file writes: results are either fully written or not there at all.

Everything mmbench persists (run records, checkpoints, caches, generated data) goes through a
temporary file in the destination directory followed by ``os.replace``, so a crash, ``kill -9``
or a concurrent writer never leaves a half-written file under the final name. Temporaries carry
the writer's pid, so the next writer in the same folder removes those of dead processes; the
final files get the user's umask (a team can share a runs folder or a cache), not the 0600 /
0700 of ``tempfile``. File-system errors become one line naming the place and the remedy.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from mmbench.errors import MMBenchError

_TEMP = re.compile(r"^\..+\.pid(\d+)(?:@([A-Za-z0-9-]+))?\.[^.]+\.tmp$")
#: A dead process's temporary is removed at once when it was written on this host. One from
#: another host (a shared file system: its pid means nothing here) is removed after this long,
#: as is one of an older release, whose name carries no host.
STALE_AFTER_SECONDS = 60.0
OTHER_HOST_STALE_AFTER_SECONDS = 24 * 3600.0


def mmbench_home() -> Path:
    """Root of mmbench's caches: ``$MMBENCH_HOME`` or ``~/.cache/mmbench``."""
    root = os.environ.get("MMBENCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "mmbench"
    )
    return Path(root)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def share_like_created(path: Path, directory: bool = False) -> None:
    """Give ``path`` the permissions an ordinary ``open`` / ``mkdir`` would have (mode & ~umask)."""
    with contextlib.suppress(OSError):
        os.chmod(path, (0o777 if directory else 0o666) & ~_umask())


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def clean_stale_temporaries(directory: Path) -> list[Path]:
    """Remove the temporaries that dead processes left in ``directory`` (killed during a write);
    returns what was removed."""
    removed = []
    try:
        entries = list(Path(directory).iterdir())
    except OSError:
        return removed
    now, here = time.time(), _host()
    for entry in entries:
        match = _TEMP.match(entry.name)
        if not match:
            continue
        host = match.group(2)
        if host is not None and host != here:
            keep_for = OTHER_HOST_STALE_AFTER_SECONDS
        elif _pid_alive(int(match.group(1))):
            continue
        else:
            keep_for = 0.0 if host == here else STALE_AFTER_SECONDS
        with contextlib.suppress(OSError):
            if now - entry.lstat().st_mtime < keep_for:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink()
            removed.append(entry)
    return removed


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9-]+", "-", socket.gethostname())[:63] or "host"


def _temp_prefix(path: Path) -> str:
    return f".{path.name}.pid{os.getpid()}@{_host()}."


def describe_os_error(exc: OSError, path: Path | str, remedy: str) -> MMBenchError:
    """One line for a file-system error at ``path``: what the place is (read-only, full, a file,
    not permitted) and what to do."""
    reasons = {errno.EROFS: "is on a read-only file system", errno.ENOSPC: "is full (no space left on the device)",
               errno.EDQUOT: "is over its disk quota", errno.ENOTDIR: "is a file, not a folder",
               errno.EEXIST: "is a file, not a folder", errno.EACCES: "is not writable (permission denied)",
               errno.EPERM: "is not writable (operation not permitted)"}
    reason = reasons.get(exc.errno or -1, f"cannot be written ({exc.strerror or exc})")
    link = _broken_link(Path(path))
    if link is not None:
        reason = f"is a broken symbolic link ({link})"
    elif exc.errno == errno.ELOOP:
        reason = "is a symbolic link that loops"
    return MMBenchError(f"{path} {reason}; {remedy}")


def _broken_link(path: Path) -> str | None:
    """What a dangling or looping symbolic link at ``path`` (or above it) points to, else ``None``."""
    for place in (path, *path.parents):
        if place.is_symlink() and not place.exists():
            try:
                return f"{place} → {os.readlink(place)}, which does not exist or loops"
            except OSError:
                return f"{place}, which cannot be read"
    return None


def atomic_write(path: Path, write: Callable[[Any], None], mode: str = "wb") -> None:
    """Call ``write(fileobj)`` on a temp file next to ``path``, fsync it, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_temporaries(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        share_like_created(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_json(path: Path, data: Any) -> None:
    text = json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n"
    atomic_write(path, lambda f: f.write(text), mode="w")


@contextlib.contextmanager
def atomic_directory(final: Path) -> Iterator[Path]:
    """Yield a temp directory that becomes ``final`` when the block succeeds.

    If another process created ``final`` meanwhile, its copy wins and ours is discarded (both are
    built from the same inputs, so they are interchangeable).
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_temporaries(final.parent)
    tmp = Path(tempfile.mkdtemp(prefix=_temp_prefix(final), suffix=".tmp", dir=final.parent))
    try:
        yield tmp
        share_like_created(tmp, directory=True)
        try:
            os.rename(tmp, final)
        except OSError:
            if not final.exists():
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def ensure_writable(directory: Path, remedy: str = "choose a writable --out directory.") -> None:
    """Fail before any work when results could not be written to ``directory``."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / f".write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise describe_os_error(exc, directory, remedy) from None
