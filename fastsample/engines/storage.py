"""Where bytes live: local paths and URIs mapped to pyarrow filesystems, and their errors.

A location is a local path, a ``file://`` URI, or an object-storage / distributed-filesystem URI
(``s3://``, ``gs://``, ``abfs://``/``abfss://``, ``hdfs://``) read through pyarrow's own
filesystems, with the credential conventions those already follow (``AWS_ENDPOINT_URL``,
``AWS_PROFILE``, ``AWS_ACCESS_KEY_ID``, ``GOOGLE_APPLICATION_CREDENTIALS``, ...). Other schemes
go through fsspec when it is installed and knows them. ``storage_options`` are passed to the
filesystem's constructor (for S3 also under the fsspec-style names ``endpoint_url``, ``key``,
``secret`` and ``token``); S3 gets short connect and request timeouts and two attempts by
default, so an unreachable endpoint fails in seconds instead of hanging.

Local paths stay plain strings (``filesystem`` is ``None``): the engine reads them exactly as
before, so the local path costs nothing extra.
"""

from __future__ import annotations

import errno
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import unquote, urlparse

from fastsample.errors import InputError

PathLike = str | os.PathLike[str]

#: Schemes read through pyarrow's own filesystems.
SCHEMES = ("file", "s3", "gs", "gcs", "abfs", "abfss", "hdfs", "viewfs")
_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")

#: S3 defaults (seconds, attempts) unless ``storage_options`` say otherwise.
S3_CONNECT_TIMEOUT = 5.0
S3_REQUEST_TIMEOUT = 30.0
S3_ATTEMPTS = 2
#: GCS: how long the client retries (seconds) unless ``retry_time_limit`` says otherwise; its
#: own default retried for over 15 minutes without a network or credentials.
GCS_RETRY_SECONDS = 10.0

_S3_ALIASES = {
    "endpoint_url": "endpoint_override",
    "aws_endpoint_url": "endpoint_override",
    "key": "access_key",
    "aws_access_key_id": "access_key",
    "secret": "secret_key",
    "aws_secret_access_key": "secret_key",
    "token": "session_token",
    "aws_session_token": "session_token",
    "region_name": "region",
    "aws_region": "region",
}


def one_line(exc: BaseException) -> str:
    """An exception's message on one line, at most 300 characters."""
    text = " ".join(str(exc).split())
    return text[:300] if text else type(exc).__name__


def raised_by(exc: BaseException, *packages: str) -> bool:
    """Whether ``exc``'s class comes from one of ``packages`` (top-level names).

    Examples
    --------
    >>> raised_by(ValueError("x"), "polars"), raised_by(ValueError("x"), "builtins")
    (False, True)
    """
    return type(exc).__module__.split(".")[0] in packages


def scheme_of(location: PathLike) -> str | None:
    """The URI scheme of ``location`` in lower case, or ``None`` for a plain local path."""
    match = _SCHEME_RE.match(os.fspath(location))
    return match.group(1).lower() if match else None


def is_remote(location: PathLike) -> bool:
    """Whether ``location`` is a URI other than ``file://``."""
    return scheme_of(location) not in (None, "file")


@dataclass(frozen=True)
class Location:
    """A resolved location: a pyarrow filesystem (``None`` = local) and the path inside it.

    Attributes
    ----------
    uri : str
        The location as the user wrote it (used in every message).
    filesystem : pyarrow.fs.FileSystem or None
        ``None`` for local paths, which are then plain OS paths.
    path : str
        The path inside ``filesystem`` (``bucket/key`` on object storage).
    """

    uri: str
    filesystem: Any
    path: str

    def child(self, name: str) -> Location:
        """The location of ``name`` inside this one (a directory or prefix)."""
        base = self.uri.rstrip("/")
        if self.filesystem is None:
            return Location(os.path.join(self.path, name), None, os.path.join(self.path, name))
        return Location(f"{base}/{name}", self.filesystem, f"{self.path.rstrip('/')}/{name}")

    def display(self, path: str) -> str:
        """The user-facing name of a ``path`` inside this location's filesystem."""
        if self.filesystem is None:
            return path
        scheme = scheme_of(self.uri) or "file"
        return path if scheme == "file" else f"{scheme}://{path}"


def _coerce(key: str, value: Any) -> Any:
    """Command-line option values arrive as text: booleans and timeouts become typed."""
    if not isinstance(value, str):
        return value
    low = value.lower()
    if low in ("true", "false"):
        return low == "true"
    if key.endswith(("timeout", "_attempts")) or key in ("port",):
        try:
            return float(value) if "." in value or key.endswith("timeout") else int(value)
        except ValueError:
            raise InputError(f"storage option {key}={value!r} is not a number") from None
    return value


def _s3(options: Mapping[str, Any], uri: str) -> Any:
    from pyarrow import fs  # lazy: start-up time (pyarrow.fs only for URIs)

    opts = {_S3_ALIASES.get(k, k): _coerce(k, v) for k, v in options.items()}
    attempts = int(opts.pop("max_attempts", S3_ATTEMPTS))
    opts.setdefault("connect_timeout", S3_CONNECT_TIMEOUT)
    opts.setdefault("request_timeout", S3_REQUEST_TIMEOUT)
    opts.setdefault("retry_strategy", fs.AwsStandardS3RetryStrategy(max_attempts=attempts))
    # The constructor (unlike FileSystem.from_uri) ignores the SDK's endpoint variables.
    env_endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if env_endpoint and "endpoint_override" not in opts:
        opts["endpoint_override"] = env_endpoint
    endpoint = opts.get("endpoint_override")
    if isinstance(endpoint, str) and "://" in endpoint:
        # pyarrow wants host:port and the scheme apart; users copy whole URLs.
        parsed = urlparse(endpoint)
        opts["endpoint_override"] = parsed.netloc
        opts.setdefault("scheme", parsed.scheme)
    try:
        return fs.S3FileSystem(**opts)
    except (TypeError, ValueError, OSError) as exc:
        raise InputError(f"cannot set up S3 for {uri!r}: {one_line(exc)}") from None


def _gcs(options: Mapping[str, Any], uri: str) -> Any:
    from pyarrow import fs  # lazy: start-up time (pyarrow.fs only for URIs)

    opts = {k: _coerce(k, v) for k, v in options.items()}
    limit = opts.pop("retry_time_limit", GCS_RETRY_SECONDS)
    opts["retry_time_limit"] = limit if isinstance(limit, timedelta) else timedelta(seconds=limit)
    try:
        return fs.GcsFileSystem(**opts)
    except (TypeError, ValueError, OSError) as exc:
        raise InputError(f"cannot set up GCS for {uri!r}: {one_line(exc)}") from None


def _fsspec(scheme: str, options: Mapping[str, Any], uri: str) -> Any:
    try:
        import fsspec  # lazy: optional dependency (schemes pyarrow has no filesystem for)
        from pyarrow.fs import FSSpecHandler, PyFileSystem  # lazy: start-up time
    except ImportError:
        raise InputError(
            f"unsupported URI scheme {scheme!r} in {uri!r}; supported: {', '.join(SCHEMES)} "
            "(other schemes need fsspec and its backend installed)"
        ) from None
    try:
        impl = fsspec.filesystem(scheme, **dict(options))
    except (ImportError, ValueError) as exc:
        raise InputError(f"unsupported URI scheme {scheme!r} in {uri!r}: {one_line(exc)}") from None
    return PyFileSystem(FSSpecHandler(impl))


def locate(location: PathLike, storage_options: Mapping[str, Any] | None = None) -> Location:
    """Map a local path or URI to a :class:`Location`.

    Raises
    ------
    InputError
        Unsupported scheme, or a filesystem that cannot be set up (one line naming the URI).
    """
    text = os.fspath(location)
    scheme = scheme_of(text)
    opts = dict(storage_options or {})
    if scheme is None:
        return Location(text, None, text)
    if scheme == "file":
        path = unquote(urlparse(text).path)
        return Location(path, None, path)
    parsed = urlparse(text)
    if scheme == "s3":
        path = f"{parsed.netloc}{parsed.path}"
        return Location(text, _s3(opts, text), path)
    if scheme in ("gs", "gcs"):
        return Location(text, _gcs(opts, text), f"{parsed.netloc}{parsed.path}")
    if scheme in SCHEMES:
        from pyarrow import fs  # lazy: start-up time (pyarrow.fs only for URIs)

        try:
            filesystem, path = fs.FileSystem.from_uri(text)
            if opts:
                filesystem = type(filesystem)(**{k: _coerce(k, v) for k, v in opts.items()})
        except (TypeError, ValueError, OSError) as exc:
            raise InputError(f"cannot open {text!r}: {reason(exc)}") from None
        return Location(text, filesystem, path)
    path = f"{parsed.netloc}{parsed.path}"
    return Location(text, _fsspec(scheme, opts, text), path)


def open_pilot(
    pilot: Any, *, storage_options: Mapping[str, Any] | None = None, trusted: bool = False
) -> Any:
    """A pilot named by a URI, read through its filesystem; anything else as given.

    ``s3://...`` (or any URI :func:`locate` maps) is downloaded to a temporary file and read by
    :meth:`fastsample.core.pilot.Pilot.load` (``trusted`` as there); a ``file://`` URI becomes
    its local path; local paths, ``Pilot`` objects and classifiers pass through unchanged for
    :func:`fastsample.core.pilot.as_pilot`. Errors name the URI. Write one with
    :func:`fastsample.engines.publish.save_pilot`.

    Examples
    --------
    >>> open_pilot("pilot.npz"), open_pilot("file:///tmp/pilot.npz")
    ('pilot.npz', '/tmp/pilot.npz')
    """
    if not isinstance(pilot, (str, os.PathLike)) or scheme_of(pilot) is None:
        return pilot
    loc = locate(pilot, storage_options)
    if loc.filesystem is None:
        return loc.path
    from pyarrow import ArrowException, fs  # lazy: start-up time (pyarrow.fs only for URIs)

    try:
        if loc.filesystem.get_file_info(loc.path).type != fs.FileType.File:
            raise InputError(f"pilot file {loc.uri!r} does not exist")
        with tempfile.TemporaryDirectory() as tmp:
            local = os.path.join(tmp, "pilot.npz")
            fs.copy_files(loc.path, local, source_filesystem=loc.filesystem)
            return _load_pilot(local, loc.uri, trusted)
    except (OSError, ArrowException) as exc:
        raise InputError(f"cannot read pilot {loc.uri!r}: {reason(exc)}") from None


def _load_pilot(path: str, name: str, trusted: bool) -> Any:
    from fastsample.core.pilot import (
        Pilot,  # lazy: start-up time (the pilot loads the Numba kernels)
    )

    try:
        return Pilot.load(path, trusted=trusted)
    except InputError as exc:
        # Messages name the file the user gave, not the download's temporary copy.
        raise InputError(str(exc).replace(path, name)) from None


# --------------------------------------------------------------------------- errors

_REASONS = (
    (
        ("NO_SUCH_BUCKET", "NoSuchBucket", "bucket does not exist", "Bucket '"),
        "the bucket does not exist",
    ),
    (
        (
            "ACCESS_DENIED",
            "AccessDenied",
            "INVALID_ACCESS_KEY_ID",
            "InvalidAccessKeyId",
            "SIGNATURE_DOES_NOT_MATCH",
            "SignatureDoesNotMatch",
            "Forbidden",
        ),
        "access denied (check the credentials)",
    ),
    (
        (
            "Could not create a OAuth2 access token",
            "Failed to get token",
            "AuthenticationException",
            "NoCredentialProviders",
        ),
        "no usable credentials (set them up as the storage's own tools expect)",
    ),
    (
        (
            "NETWORK_CONNECTION",
            "curlCode: 7",
            "curlCode: 28",
            "curlCode: 6",
            "Couldn't connect",
            "Could not connect",
            "Timeout was reached",
            "Connection refused",
            "Could not resolve host",
        ),
        "the endpoint is unreachable",
    ),
    (("Unable to load libjvm", "libhdfs"), "HDFS needs Java and libhdfs (JAVA_HOME, HADOOP_HOME)"),
    (("No space left", "ENOSPC", "Errno 28"), "no space left on the device"),
    (("Read-only file system", "EROFS", "Errno 30"), "read-only file system"),
    (("Permission denied", "EACCES", "Errno 13"), "permission denied"),
    (("Disk quota exceeded", "EDQUOT", "Errno 122"), "disk quota exceeded"),
    (("File too large", "EFBIG", "Errno 27"), "file too large for the file system"),
)


def reason(exc: BaseException) -> str:
    """A short, stable phrase for a storage failure (the library's own line when unknown)."""
    text = str(exc)
    for needles, phrase in _REASONS:
        if any(n in text for n in needles):
            return phrase
    return one_line(exc)


def is_environment_error(exc: BaseException) -> bool:
    """Whether ``exc`` is a failure of the storage rather than of fastsample (disk full, ...)."""
    if isinstance(exc, OSError) and exc.errno is not None:
        return exc.errno in {
            errno.ENOSPC,
            errno.EACCES,
            errno.EPERM,
            errno.EROFS,
            errno.EDQUOT,
            errno.EFBIG,
            errno.EIO,
            errno.ENOENT,
            errno.ENOTDIR,
        }
    return isinstance(exc, OSError) and reason(exc) != one_line(exc)
