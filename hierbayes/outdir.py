"""The command line's output folder (``--out``): checked before any work, written only atomically.

`OutputFolder` is made before anything is fitted, so a folder that is a file, cannot be created or
is not writable fails in a moment, not after sampling. The names the command will write are
checked then too: one that is a symbolic link leading out of the folder is refused (hierbayes
never writes through it). Every file then goes through `hierbayes.atomic`: complete or absent.
Used as a context manager, a folder the command created is removed again if the command fails or
is interrupted before writing anything into it.
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

from .atomic import write_via
from .errors import OutputError


class OutputFolder:
    """``--out``: made and probed on creation; `file` and `write_csv` give checked targets."""

    def __init__(self, path, names: tuple[str, ...] = ()):
        self.path = Path(path)
        self._created: list[Path] = []
        self._prepare()
        for name in names:
            self.file(name)

    def file(self, name: str) -> Path:
        """``path / name``, refused when it is a symbolic link that leads out of the folder."""
        target = self.path / name
        if target.is_symlink():
            root, resolved = self.path.resolve(), target.resolve()
            if not resolved.is_relative_to(root):
                raise OutputError(
                    f"{target} is a symbolic link to {resolved}, outside the output folder "
                    f"{root}; hierbayes does not write through it. Remove the link or choose "
                    "another --out."
                )
        return target

    def write_csv(self, name: str, frame, index: bool = False) -> Path:
        return write_via(self.file(name), lambda tmp: frame.to_csv(tmp, index=index))

    def __enter__(self) -> OutputFolder:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is not None:
            self._discard()

    def _discard(self) -> None:
        """Remove the folders this run created, deepest first, as long as they are empty."""
        for folder in reversed(self._created):
            with contextlib.suppress(OSError):
                folder.rmdir()

    def _prepare(self) -> None:
        path = self.path
        if path.exists() and not path.is_dir():
            raise OutputError(f"The output folder {str(path)!r} is a file; give a folder.")
        missing = [p for p in (path, *path.parents) if not p.exists()]
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise OutputError(
                f"The output folder {str(path)!r} cannot be created: {err.strerror or err}."
            ) from None
        self._created = list(reversed(missing))
        try:
            with tempfile.TemporaryFile(dir=path):
                pass
        except OSError as err:  # tried rather than os.access: root passes every mode check
            self._discard()
            raise OutputError(
                f"The output folder {str(path)!r} is not writable: {err.strerror or err}."
            ) from None
