"""Atomic writes: whoever reads a file (and whatever kills the writer: an error, Ctrl-C, kill -9)
sees the old version or the new one, never a mix or a truncated file.

Each write goes to a temporary name in the target's own folder (same file system, so the final
`os.replace` is atomic), is flushed to disk, and then replaces the target. A target that is a
symbolic link is replaced itself, never written through. A write that fails removes its temporary
file; one killed outright leaves a hidden ``.<name>.*.tmp*`` beside the target and the target
untouched.

- `write_text`, `write_bytes`: content in memory;
- `write_via`: a writer that needs a path (netCDF, ``DataFrame.to_csv``) writes the temporary file;
- `replace_dir`: a folder filled by a callback, swapped in as a whole.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


def write_text(path, text: str, encoding: str = "utf-8") -> Path:
    """Write `text` to `path` atomically."""
    return write_bytes(path, text.encode(encoding))


def write_bytes(path, data: bytes) -> Path:
    """Write `data` to `path` atomically."""
    return write_via(path, lambda tmp: tmp.write_bytes(data))


def write_via(path, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` to write a temporary file beside `path`, then move it onto `path`.

    The temporary name keeps the target's suffix (``.posterior.nc.k3j9.tmp.nc``) for writers that
    choose a format by it.
    """
    path = Path(path)
    mode = _mode_for(path, 0o666)
    fd, name = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{path.suffix}"
    )
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        os.chmod(tmp, mode)
        _fsync(tmp)
        os.replace(tmp, path)
    except BaseException:  # Ctrl-C included: never leave the temporary file behind
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync(path.parent)
    return path


def replace_dir(path, fill: Callable[[Path], object]) -> Path:
    """Call ``fill(tmp)`` to fill a temporary folder beside `path`, then swap it in for `path`.

    The old folder (or link, or file) at `path` is moved aside and deleted only once the new one
    is complete; between the two renames `path` is briefly absent, never half written.
    """
    path = Path(path)
    mode = _mode_for(path, 0o777)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    old = None
    try:
        fill(tmp)
        os.chmod(tmp, mode)
        for file in tmp.rglob("*"):
            if file.is_file():
                _fsync(file)
        _fsync(tmp)
        if path.is_symlink() or path.exists():
            old = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".old"))
            os.replace(path, old / path.name)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not (path.is_symlink() or path.exists()):
            with contextlib.suppress(OSError):
                os.replace(old / path.name, path)  # put the old one back
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)  # a moved link is deleted, not followed
    _fsync(path.parent)
    return path


def _mode_for(path: Path, default: int) -> int:
    """The permissions of the file being replaced, else what `open` would give a new one."""
    with contextlib.suppress(OSError):
        if not path.is_symlink():
            return path.stat().st_mode & 0o7777
    umask = os.umask(0)  # there is no way to read the umask without setting it
    os.umask(umask)
    return default & ~umask


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:  # some file systems cannot fsync a folder; the data itself was synced
        pass
    finally:
        os.close(fd)
