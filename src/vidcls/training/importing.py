"""The event clips ``vidcls live --clips`` recorded, imported into a dataset folder's
``unlabelled/`` (``vidcls dataset import``, the teaching page's import): every file checked
first, then every valid one copied or none, never through a symbolic link."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import VidclsError
from .dataset import UNLABELLED, VIDEO_EXTENSIONS

MAX_NAME_BYTES = 255  # a file name, in UTF-8


@dataclass
class Imported:
    """What an import did: the clips copied, those already there (by name), and each file
    passed over with why (``path: problem``)."""

    copied: list[Path] = field(default_factory=list)
    present: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def import_events(clips_dir: str | os.PathLike, out: str | os.PathLike) -> Imported:
    """Copy the event clips under ``clips_dir`` (``<source>/<start>_<label>.mp4``, as
    ``vidcls live --clips`` writes them) into ``out/unlabelled/`` as
    ``<source>_<start>_<label>.mp4``.

    Every file is checked first: one that is not a readable video (text, empty, unreadable),
    a symbolic link leading outside ``clips_dir``, or a name too long is skipped and named in
    ``skipped``. Then the rest are copied, none through a symbolic link (``out/unlabelled``
    must be a real folder). A copy that fails takes back those made before it: either every
    valid clip is imported, or none is (VidclsError saying why). None valid: VidclsError."""
    clips_dir, target = Path(clips_dir), Path(out) / UNLABELLED
    if not clips_dir.is_dir():
        raise VidclsError("not a folder of event clips", clips_dir)
    done = Imported()
    root = clips_dir.resolve()
    found = []
    for p in _clip_files(clips_dir):
        name = "_".join(p.relative_to(clips_dir).parts)
        problem = _name_problem(name) or _clip_problem(p, root)
        if problem:
            done.skipped.append(f"{_shown(p)}: {problem}")
        else:
            found.append((p, name))
    if not found:
        if not done.skipped:
            raise VidclsError("no event clips found", clips_dir)
        more = f" (and {len(done.skipped) - 1} more)" if len(done.skipped) > 1 else ""
        raise VidclsError(f"no clip can be imported: {done.skipped[0]}{more}", clips_dir)
    _copy_all(found, target, done)
    return done


def _shown(path: Path) -> str:
    """``path`` for a line of text: a line break or control character in it escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(path))


def _clip_files(folder: Path) -> list[Path]:
    """Files named like videos under ``folder`` (not hidden, not in hidden folders); links
    to folders are not followed."""
    out = []
    for top, dirs, files in os.walk(folder, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for f in files:
            if not f.startswith(".") and os.path.splitext(f)[1].lower() in VIDEO_EXTENSIONS:
                out.append(Path(top) / f)
    return sorted(out)


def _name_problem(name: str) -> str | None:
    if len(name.encode("utf-8", "replace")) > MAX_NAME_BYTES:
        return "its name would be too long for a file"
    if any(unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp") for c in name):
        return "a line break or control character in its name"
    return None


def _clip_problem(path: Path, root: Path) -> str | None:
    """Why ``path`` cannot be imported as a clip, or None (opened without blocking, its
    link, if any, followed only inside ``root``)."""
    from ..media import VideoFile

    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError):
        return "a broken symbolic link, or a link loop"
    if path.is_symlink() and not real.is_relative_to(root):
        return "a symbolic link to outside the folder: not followed"
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except OSError as e:
        return f"cannot be read ({e.strerror or e})"
    try:
        st = os.fstat(fd)
    finally:
        os.close(fd)
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    if st.st_size == 0:
        return "empty"
    try:
        with VideoFile(real):
            pass
    except VidclsError as e:
        return e.message
    return None


def _copy_all(found: list[tuple[Path, str]], target: Path, done: Imported) -> None:
    """Copy each ``(source, name)`` into ``target``, through a handle on the folder itself
    (nothing written through a symbolic link); on a failure, the copies made are removed."""
    if target.is_symlink() or (os.path.lexists(target) and not target.is_dir()):
        raise VidclsError("is a symbolic link or not a folder: nothing imported", target)
    try:
        target.mkdir(parents=True, exist_ok=True)
        folder = os.open(target, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as e:
        raise VidclsError(f"cannot make the folder ({e.strerror or e})", target) from None
    made: list[str] = []
    try:
        for source, name in found:
            if _exists(name, folder):
                done.present.append(target / name)
                continue
            try:
                _copy_one(source, name, folder)
            except OSError as e:
                for n in made:
                    with contextlib.suppress(OSError):
                        os.unlink(n, dir_fd=folder)
                done.copied.clear()
                why = e.strerror or str(e)
                raise VidclsError(
                    f"cannot copy {source} ({why}): nothing imported", target
                ) from None
            made.append(name)
            done.copied.append(target / name)
    finally:
        os.close(folder)


def _copy_one(source: Path, name: str, folder: int) -> None:
    """``source`` copied to ``name`` in the folder open as ``folder``, under a temporary name
    then renamed; neither the source's last part nor the temporary file is followed if a
    symbolic link."""
    part = f".{name}.part"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(part, dir_fd=folder)
    src = os.open(source.resolve(), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
        dst = os.open(part, flags, 0o644, dir_fd=folder)
        try:
            with open(src, "rb", closefd=False) as r, open(dst, "wb", closefd=False) as w:
                shutil.copyfileobj(r, w, 1 << 20)
        finally:
            os.close(dst)
        os.replace(part, name, src_dir_fd=folder, dst_dir_fd=folder)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(part, dir_fd=folder)
        raise
    finally:
        os.close(src)


def _exists(name: str, folder: int) -> bool:
    try:
        os.stat(name, dir_fd=folder, follow_symlinks=False)
        return True
    except FileNotFoundError:
        return False
