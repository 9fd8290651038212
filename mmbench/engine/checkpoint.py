"""Per-epoch checkpoints and stored models: written atomically with a checksum, loaded with
``weights_only=True``.

A file is one header line ``mmbench-torch sha256=<hex> bytes=<n>`` followed by ``torch.save``'s
bytes; loading verifies the length and the digest before unpickling anything, so a file garbled in
the middle is refused with a clear line instead of loading weights that silently differ. Files
written before the header existed load as plain ``torch.save`` files.
"""

from __future__ import annotations

import errno
import hashlib
import io
from pathlib import Path
from typing import Any

import torch

from mmbench.errors import MMBenchError
from mmbench.files import atomic_write, describe_os_error

CHECKPOINT_FORMAT = 1
_MAGIC = b"mmbench-torch "


def write_torch(path: Path, obj: Any, remedy: str = "free some space or choose another --out.") -> None:
    """``torch.save(obj)`` into ``path`` atomically, behind a checksum header."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    payload = buffer.getvalue()
    header = _MAGIC + f"sha256={hashlib.sha256(payload).hexdigest()} bytes={len(payload)}\n".encode()

    def write(handle: Any) -> None:
        handle.write(header)
        handle.write(payload)

    try:
        atomic_write(path, write)
    except OSError as exc:
        raise describe_os_error(exc, Path(path).parent, remedy) from None
    except RuntimeError as exc:  # torch's zip writer reports a full disk as "enforce fail at inline_container"
        if "inline_container" in str(exc):
            raise describe_os_error(OSError(errno.ENOSPC, "disk full"), Path(path).parent, remedy) from None
        raise


def checksum_problem(path: Path) -> str | None:
    """Why the file :func:`write_torch` wrote at ``path`` is damaged (its stored sha256 or length
    does not match), without loading it; ``None`` when it is intact (or has no stored sha256)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if not data.startswith(_MAGIC):
        return None
    header, _, payload = data.partition(b"\n")
    try:
        fields = dict(item.split("=", 1) for item in header[len(_MAGIC):].decode().split())
        expected, length = fields["sha256"], int(fields["bytes"])
    except (ValueError, KeyError, UnicodeDecodeError):
        return "is corrupt or truncated (damaged header)"
    if len(payload) != length:
        return f"is corrupt or truncated ({len(payload)} of {length} bytes)"
    if hashlib.sha256(payload).hexdigest() != expected:
        return "is corrupt (its sha256 does not match the one stored with it)"
    return None


def read_torch(path: Path, what: str, remedy: str) -> Any:
    """Load what :func:`write_torch` wrote; a truncated, garbled or foreign file is one line
    naming ``what`` it is and the ``remedy``."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise MMBenchError(f"{what} {path} cannot be read ({exc.strerror or exc}); {remedy}") from None
    payload = data
    if data.startswith(_MAGIC):
        header, _, payload = data.partition(b"\n")
        try:
            fields = dict(item.split("=", 1) for item in header[len(_MAGIC):].decode().split())
            expected, length = fields["sha256"], int(fields["bytes"])
        except (ValueError, KeyError, UnicodeDecodeError):
            raise MMBenchError(f"{what} {path} is corrupt or truncated (damaged header); {remedy}") from None
        if len(payload) != length:
            raise MMBenchError(f"{what} {path} is corrupt or truncated ({len(payload)} of {length} bytes); {remedy}")
        if hashlib.sha256(payload).hexdigest() != expected:
            raise MMBenchError(f"{what} {path} is corrupt (its sha256 does not match the one stored with it); {remedy}")
    try:
        return torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise MMBenchError(f"{what} {path} is corrupt or truncated ({type(exc).__name__}); {remedy}") from None


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    write_torch(path, {"format": CHECKPOINT_FORMAT, **state})


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint; a truncated, garbled or foreign file is a one-line error saying what to do."""
    remedy = "delete it to start the run from scratch."
    state = read_torch(path, "checkpoint", remedy)
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise MMBenchError(f"{path} is not an mmbench checkpoint (format {CHECKPOINT_FORMAT}); delete it to start over.")
    return state


def checkpoint_epochs(path: Path) -> int | None:
    """Completed epochs of the checkpoint at ``path`` (``None``: none there, or unreadable)."""
    if not Path(path).exists():
        return None
    try:
        return int(load_checkpoint(path).get("epoch", 0))
    except MMBenchError:
        return None
