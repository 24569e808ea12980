"""Atomic file publication: content appears at its target in one rename, or not at all."""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator

from fastsample.errors import InputError


def _open_anonymous(directory: str) -> int | None:
    flag = getattr(os, "O_TMPFILE", None)
    if flag is None:
        return None
    try:
        return os.open(directory, flag | os.O_WRONLY, 0o666)
    except OSError:
        return None


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str], *, overwrite: bool = False) -> Iterator[str]:
    """Yield a path to write ``target``'s content to; publish it only on success.

    The yielded path may be opened (and re-opened) for writing by any library. When the
    ``with`` block exits normally the content appears at ``target`` in one rename; when it
    raises (``KeyboardInterrupt`` included) ``target`` is untouched and nothing is left behind.
    """
    out = os.path.abspath(os.fspath(target))
    directory = os.path.dirname(out)
    fd = _open_anonymous(directory)
    if fd is not None:
        try:
            yield f"/proc/self/fd/{fd}"
            _publish_anonymous(fd, out, overwrite=overwrite)
        finally:
            os.close(fd)
        return
    handle, tmp = tempfile.mkstemp(
        prefix=f".{os.path.basename(out)}.", suffix=".tmp", dir=directory
    )
    os.close(handle)
    try:
        yield tmp
        if not overwrite and os.path.lexists(out):
            raise InputError(f"output {out!r} appeared while writing; not overwritten")
        os.replace(tmp, out)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _publish_anonymous(fd: int, out: str, *, overwrite: bool) -> None:
    directory, name = os.path.split(out)
    dfd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
        if not overwrite:
            # linkat refuses an existing name: a no-clobber publish in one system call.
            try:
                os.link(
                    f"/proc/self/fd/{fd}",
                    name,
                    src_dir_fd=dfd,
                    dst_dir_fd=dfd,
                    follow_symlinks=True,
                )
            except FileExistsError:
                raise InputError(
                    f"output {out!r} appeared while writing; not overwritten"
                ) from None
            return
        tmp_name = f".{name}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
        os.link(
            f"/proc/self/fd/{fd}", tmp_name, src_dir_fd=dfd, dst_dir_fd=dfd, follow_symlinks=True
        )
        try:
            os.replace(tmp_name, name, src_dir_fd=dfd, dst_dir_fd=dfd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name, dir_fd=dfd)
            raise
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise InputError(f"cannot write {out!r}: {exc.strerror}") from None
        raise
    finally:
        os.close(dfd)
