"""The store's wheelhouse: every file ever installed, addressed by its sha256.

``<root>/<sha256>/<filename>``: the same file name with other bytes (a local project rebuilt
without a version bump) never overwrites an earlier file, and a path says which bytes it holds.
Files arrive through a temporary name and ``os.replace``, verified against the hash the resolver
announced; a file already present is hashed again before every use, so a file changed on disk is
refused (uv would trust its cache instead: it does not read a wheel again whose hash it knows).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from typing import TYPE_CHECKING

from isolator._errors import HashMismatchError, ResolutionError
from isolator.store._disk import remove, tree_size
from isolator.store._resolve import sha256_file

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from pathlib import Path

    from isolator.store._resolve import Artifact

_BLOCK = 1 << 20
_MAX_FILE_BYTES = 2 << 30
_DOWNLOAD_TIMEOUT = 60.0
_PARALLEL_DOWNLOADS = 4


class Wheelhouse:
    """Content-addressed wheel (and sdist) files under one directory."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, artifact: Artifact) -> Path:
        """Where *artifact*'s bytes live (or would)."""
        return self.root / artifact.sha256 / artifact.filename

    def verified(self, artifact: Artifact) -> Path:
        """The stored file, hashed again now; raises if it is missing or was changed."""
        path = self.path(artifact)
        try:
            actual = sha256_file(path)
        except FileNotFoundError:
            raise ResolutionError(
                artifact.filename, f"not in the store's wheelhouse ({path} is missing)"
            ) from None
        if actual != artifact.sha256:
            raise HashMismatchError(str(path), artifact.sha256, actual)
        return path

    def ensure(self, artifact: Artifact, progress: Callable[[str], None] | None = None) -> Path:
        """The verified stored file, copied or downloaded first when it is not there yet."""
        path = self.path(artifact)
        if path.exists():
            return self.verified(artifact)
        local = artifact.local_path
        if local is not None:
            if progress:
                progress(f"copying {artifact.filename}")
            try:
                source = open(local, "rb")  # noqa: SIM115 - closed by _store_stream
            except OSError as exc:
                raise ResolutionError(str(local), f"cannot read: {exc.strerror}") from None
            with source:
                return self._store_stream(artifact, source.read, str(local))
        if progress:
            progress(f"downloading {artifact.filename}")
        return self._download(artifact)

    def ensure_all(
        self, artifacts: Sequence[Artifact], progress: Callable[[str], None] | None = None
    ) -> list[Path]:
        """:meth:`ensure` for each, remote downloads in parallel; paths in the given order."""
        if sum(1 for a in artifacts if a.local_path is None) <= 1:
            return [self.ensure(artifact, progress) for artifact in artifacts]
        from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415 - only for downloads

        with ThreadPoolExecutor(max_workers=_PARALLEL_DOWNLOADS) as pool:
            futures = [pool.submit(self.ensure, artifact, progress) for artifact in artifacts]
            return [future.result() for future in futures]

    def _download(self, artifact: Artifact) -> Path:
        # Imported here: most installs are offline and these modules cost 20 ms to import.
        import ssl  # noqa: PLC0415
        import urllib.error  # noqa: PLC0415
        import urllib.request  # noqa: PLC0415

        # The default context trusts the system store and honours SSL_CERT_FILE/SSL_CERT_DIR;
        # urllib honours the proxy variables.
        context = ssl.create_default_context()
        request = urllib.request.Request(
            artifact.url, headers={"User-Agent": "isolator"}
        )
        if not artifact.url.startswith(("https://", "http://")):
            raise ResolutionError(artifact.url, "only http(s) and file URLs can be fetched")
        last: Exception | None = None
        for _attempt in range(2):
            try:
                with urllib.request.urlopen(
                    request, timeout=_DOWNLOAD_TIMEOUT, context=context
                ) as response:
                    return self._store_stream(artifact, response.read, artifact.url)
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                last = exc
        reason = getattr(last, "reason", last)
        raise ResolutionError(artifact.url, f"download failed: {reason}")

    def _store_stream(self, artifact: Artifact, read: Callable[[int], bytes], origin: str) -> Path:
        target = self.path(artifact)
        target.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        fd, tmp = tempfile.mkstemp(prefix=".incoming-", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                while block := read(_BLOCK):
                    size += len(block)
                    if size > _MAX_FILE_BYTES:
                        raise ResolutionError(origin, f"larger than {_MAX_FILE_BYTES} bytes")
                    digest.update(block)
                    out.write(block)
                out.flush()
                os.fsync(out.fileno())
            actual = digest.hexdigest()
            if actual != artifact.sha256:
                raise HashMismatchError(origin, artifact.sha256, actual)
            os.chmod(tmp, 0o444)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return target

    def remove_unreferenced(self, keep: set[str]) -> tuple[int, int]:
        """Delete every entry whose name (a sha256) is not in *keep*, and anything else left
        there; return (entries removed, bytes freed). The caller holds the lock that keeps
        installs out."""
        removed = freed = 0
        if not self.root.is_dir():
            return 0, 0
        for entry in list(self.root.iterdir()):
            if entry.name not in keep:
                freed += tree_size(entry)
                remove(entry)
                removed += 1
        return removed, freed
