"""Locations: a local folder or an object store, read and written through the few operations both have.

A location is a ``pathlib.Path`` or Airflow's ``ObjectStoragePath`` (``file:///srv/shared``, ``s3://bucket/prefix``).
Both have ``/``, ``name``, ``parent``, ``open``, ``exists``, ``mkdir``, ``glob``, ``read_bytes`` and
``write_bytes``; the helpers here cover what differs:

- a write is atomic on a local disk (a temporary file, then a rename), one whole object elsewhere;
- a read or a listing on an object store first drops what the store's client cached about the folder, so a
  long-running process (the API server) sees what other hosts wrote since;
- a listing gives the files newest first from one request on an object store.

Nothing from Airflow is imported at module level: the DAG file reaches this module through the settings.
"""

from __future__ import annotations

import fnmatch
import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from collections.abc import Iterable

    from airflow.sdk import ObjectStoragePath

#: A local folder or file, or a place in an object store.
Location: TypeAlias = "Path | ObjectStoragePath"

#: ObjectStoragePath protocols whose paths are plain local paths.
LOCAL_PROTOCOLS = ("file", "local")


def as_location(text: str, conn_id: str | None = None) -> Location:
    """``text`` as a location: a URL (``scheme://...``) as an ``ObjectStoragePath``, anything else as a ``Path``.

    ``conn_id`` names the Airflow connection of the store (a URL may also carry it: ``s3://<conn_id>@bucket/...``).

    Raises:
        ValueError: the URL has a query or a fragment (neither names anything in a store).
    """
    if "://" not in text:
        return Path(text).expanduser()
    parts = urlsplit(text)
    if parts.query or parts.fragment:
        raise ValueError(
            f"{text!r}: a location URL has no query or fragment; name the connection as "
            f"{parts.scheme}://<conn_id>@{parts.netloc}{parts.path}"
        )
    from airflow.sdk import ObjectStoragePath

    return ObjectStoragePath(text, conn_id=conn_id)


def local_path(location: Location) -> Path | None:
    """The local path behind ``location``: itself for a ``Path``, its path for ``file://``; None for a store."""
    if isinstance(location, Path):
        return location
    if location.protocol in LOCAL_PROTOCOLS:
        return Path(location.path)
    return None


def _in_store(location: Location) -> ObjectStoragePath | None:
    """``location`` when it lies in an object store (not on a local disk), else None."""
    if isinstance(location, Path) or location.protocol in LOCAL_PROTOCOLS:
        return None
    return location


def _forget_cached_listing(folder: ObjectStoragePath) -> None:
    """Drop what the store's client cached about ``folder`` (object store clients cache listings for good)."""
    folder.fs.invalidate_cache(folder.path)


def write_bytes_atomic(target: Location, data: bytes) -> None:
    """Write ``data`` to ``target``: on a local disk atomically (parent folders created), elsewhere as one object.

    A reader never sees half a file. The local temporary file has a unique name, so several hosts may write the
    same file of a shared folder at once (the last rename wins).
    """
    write_chunks_atomic(target, [data])


def write_chunks_atomic(target: Location, chunks: Iterable[bytes]) -> None:
    """Write the concatenated ``chunks`` to ``target`` as :func:`write_bytes_atomic` does, never all in memory.

    On a local disk a failure midway leaves no file; an object store may keep the part written, so a file
    written this way should say how long it is (a staged plan counts its lines).
    """
    local = local_path(target)
    if local is None:
        with target.open("wb") as fh:  # an object store needs no folder
            for chunk in chunks:
                fh.write(chunk)
        return
    local.parent.mkdir(parents=True, exist_ok=True)
    tmp = local.with_name(f"{local.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        with tmp.open("wb", buffering=1 << 20) as fh:
            for chunk in chunks:
                fh.write(chunk)
        os.replace(tmp, local)
    finally:
        tmp.unlink(missing_ok=True)


def read_bytes_or_none(target: Location) -> bytes | None:
    """The bytes of the file ``target``, or None when there is no such file (a folder is no file either)."""
    stored = _in_store(target)
    if stored is not None:
        _forget_cached_listing(stored.parent)
    try:
        with target.open("rb") as fh:
            data: bytes = fh.read()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None
    return data


def newest_first(folder: Location, pattern: str) -> list[Location]:
    """The files of ``folder`` whose names match ``pattern`` (``*.json``), most recently modified first.

    Files modified at the same time (or in a store that keeps no modification time) come by name, last first.
    A folder that does not exist has no file.
    """
    stored = _in_store(folder)
    found: list[tuple[float, str]] = []
    if stored is None:
        if not folder.is_dir():
            return []
        found = [(p.stat().st_mtime, p.name) for p in folder.glob(pattern) if p.is_file()]
    else:
        from airflow.sdk.io.stat import stat_result

        _forget_cached_listing(stored)
        try:
            listed = stored.fs.ls(stored.path, detail=True)
        except FileNotFoundError:
            return []
        for info in listed:
            name = str(info["name"]).rstrip("/").rsplit("/", 1)[-1]
            if info.get("type") == "file" and fnmatch.fnmatchcase(name, pattern):
                found.append((float(stat_result(info).st_mtime or 0.0), name))
    found.sort(reverse=True)
    return [folder / name for _, name in found]


def relative_name(target: str, root: Location) -> str | None:
    """``target`` (a local path or a URL, as a report records it) relative to ``root``, as a POSIX path.

    None when ``target`` is not under ``root``.
    """
    local = local_path(root)
    if local is not None:
        if "://" in target or not Path(target).is_absolute():
            return None
        try:
            return Path(target).resolve().relative_to(local.resolve()).as_posix()
        except ValueError:
            return None
    prefix = str(root).rstrip("/") + "/"
    return target.removeprefix(prefix) if target.startswith(prefix) else None
