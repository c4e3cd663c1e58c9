"""Where the Great Expectations Data Docs are built and served, and how a site built elsewhere is published.

GX builds its Data Docs in a file context: a local folder (:func:`~sage_sync.quality.gx_runner.write_data_docs`
locks it, as the entity tasks of a run may build at the same time). The API server's plugin serves the site from
the shared location's ``data_docs`` folder (:mod:`sage_sync.settings`):

- that folder on a local disk (a plain folder, or ``file://`` on a mount every host shares): GX builds right there;
- in an object store: GX builds in the private ``<home>/data_docs``, and each build publishes the site's files
  whose content changed (``gx/uncommitted/data_docs/local_site/**``) to the same relative paths under the shared
  folder. ``.published.json`` in the build folder remembers what was sent (size, modification time and digest of
  each file), so the static assets GX rewrites unchanged at each build are not sent again.

A published site's index lists the validations the publishing worker's own context holds: with several workers,
each build rewrites it with its own list; the validation pages every worker published all stay served.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from sage_sync.location import Location, local_path, write_bytes_atomic

#: The site of a GX file context, relative to its folder; the plugin serves it at the same relative paths.
SITE = "gx/uncommitted/data_docs/local_site"
INDEX = f"{SITE}/index.html"
#: What the build folder last published (relative path -> size, modification time, SHA-256).
MANIFEST = ".published.json"


@dataclass(frozen=True)
class DataDocsSite:
    """The Data Docs folder the plugin serves (``served``) and the local folder GX builds in (``build``)."""

    served: Location
    build: Path

    @classmethod
    def local(cls, folder: Path) -> DataDocsSite:
        """A site built and served in the same local folder."""
        return cls(folder, folder)

    @classmethod
    def for_location(cls, served: Location, work: Path) -> DataDocsSite:
        """A site served from ``served``: built there when it is on a local disk, else in ``work`` and published."""
        local = local_path(served)
        return cls(served, local if local is not None else work)

    @property
    def published(self) -> bool:
        """True when GX builds away from the served folder, so each build publishes its pages."""
        return local_path(self.served) is None

    def index(self) -> str | None:
        """The site's served index.html (a local path, or the store's URL when published), or None if not built."""
        index = self.served / INDEX if self.published else self.build / INDEX
        return str(index) if index.exists() else None


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _manifest(build: Path) -> dict[str, dict[str, int | str]]:
    try:
        found = json.loads((build / MANIFEST).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def publish(site: DataDocsSite) -> list[str]:
    """Send the built site's files whose content differs from what this build folder last sent; return them.

    The paths returned are relative to the Data Docs folder (``gx/uncommitted/data_docs/local_site/...``). The
    record of what was sent is written once every file is: a failed publish is sent again by the next build.
    """
    known = _manifest(site.build)
    now: dict[str, dict[str, int | str]] = {}
    sent: list[str] = []
    for file in sorted(p for p in (site.build / SITE).rglob("*") if p.is_file()):
        name = file.relative_to(site.build).as_posix()
        stat = file.stat()
        before = known.get(name) or {}
        if before.get("size") == stat.st_size and before.get("mtime_ns") == stat.st_mtime_ns:
            now[name] = before
            continue
        data = file.read_bytes()
        digest = _digest(data)
        if before.get("sha256") != digest:
            write_bytes_atomic(site.served / name, data)
            sent.append(name)
        now[name] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": digest}
    write_bytes_atomic(site.build / MANIFEST, json.dumps(now, sort_keys=True).encode("utf-8"))
    return sent
