"""Stage 2: resolve to pins with hashes, fetch the chosen files into the wheelhouse (verified),
build the sdists the operator allowed; and the same for a lock's or a record's files."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from packaging.utils import canonicalize_name

from isolator._errors import CommandError, ResolutionError
from isolator._redact import redact_url
from isolator.policy._policy import check_distributions
from isolator.sources._sources import url_credentials
from isolator.store._disk import checkpoint, say
from isolator.store._records import ResolvedDistribution, redacted
from isolator.store._resolve import Artifact, interpreter_tags, select_wheel, sha256_file

if TYPE_CHECKING:
    import os
    from collections.abc import Callable, Sequence

    from isolator.sources._sources import PluginSource
    from isolator.store._context import StoreContext
    from isolator.store._interpreters import Interpreter
    from isolator.store._pipeline._prepare import Prepared
    from isolator.store._resolve import Pin
    from isolator.store._wheelhouse import Wheelhouse


def resolve(
    ctx: StoreContext,
    src: PluginSource,
    prepared: Prepared,
    interpreter: Interpreter,
    op: Path,
    *,
    allow_build: bool,
    progress: Callable[[str], None] | None,
    timeout: float | None,
) -> list[Pin]:
    """Pins for *prepared*'s requirement, every index and distribution checked by the policy
    before any file is fetched."""
    assert prepared.requirement is not None and prepared.root_name is not None
    what = prepared.requirement if src.kind == "pypi" else prepared.root_name
    say(progress, f"resolving {what}")
    workdir = op / "resolve"
    workdir.mkdir()
    try:
        pins = ctx.backend.resolve(
            [prepared.requirement], interpreter, workdir, index_url=src.index_url,
            find_links=list(src.find_links), no_index=src.no_index,
            allow_build=allow_build, progress=progress, timeout=timeout,
        )
    except CommandError as exc:
        raise ResolutionError(src.source, f"cannot be resolved: {exc.summary}") \
            from exc
    checkpoint("resolved")
    # Every index and distribution of the resolution, before any file is fetched.
    check_distributions(ctx.policy, redacted(src),
                        canonicalize_name(prepared.root_name),
                        [(pin.name, pin.version, redact_url(_pin_url(pin)))
                         for pin in pins])
    return pins


def fetch_pins(
    ctx: StoreContext,
    src: PluginSource,
    pins: list[Pin],
    interpreter: Interpreter,
    op: Path,
    *,
    allow_build: bool,
    progress: Callable[[str], None] | None,
    timeout: float | None,
) -> list[ResolvedDistribution]:
    """The wheel of each pin in the wheelhouse (an allowed sdist built into one)."""
    tags = interpreter_tags(interpreter.path)
    wheels: list[tuple[Pin, Artifact]] = []
    sdists: list[tuple[Pin, Artifact]] = []
    for pin in pins:
        wheel = select_wheel(pin, tags)
        if wheel is not None:
            wheels.append((pin, wheel))
        elif pin.sdist is not None and allow_build:
            sdists.append((pin, pin.sdist))
        else:
            offered = ", ".join(w.filename for w in pin.wheels) or "none"
            hint = "" if allow_build else " (building from source needs --allow-build)"
            raise ResolutionError(
                f"{pin.name}=={pin.version}",
                f"no wheel fits Python {interpreter.version_str} ({tags[0]}); wheels "
                f"offered: {offered}{hint}",
            )
    say(progress, f"fetching {len(wheels) + len(sdists)} files")
    ensure_files(ctx.wheelhouse, src, [w for _, w in wheels], progress)
    dists = [ResolvedDistribution(pin.name, pin.version, w.filename, w.sha256,
                                  redact_url(w.url))
             for pin, w in wheels]
    for pin, sdist in sdists:
        ensure_files(ctx.wheelhouse, src, [sdist], progress)
        stored = ctx.wheelhouse.ensure(sdist, progress)
        say(progress, f"building {sdist.filename}")
        built = ctx.backend.build_wheel(stored, op / "built-sdists", interpreter,
                                        allow_build=True, progress=progress,
                                        timeout=timeout)
        artifact = Artifact(url=built.as_uri(), sha256=sha256_file(built), filename=built.name)
        ctx.wheelhouse.ensure(artifact)
        dists.append(ResolvedDistribution(pin.name, pin.version, built.name,
                                          artifact.sha256, artifact.url,
                                          built_from={**sdist.to_dict(),
                                                      "url": redact_url(sdist.url)}))
    return dists


def ensure_files(wheelhouse: Wheelhouse, src: PluginSource, artifacts: Sequence[Artifact],
                 progress: Callable[[str], None] | None) -> None:
    """The files in the wheelhouse; a file of an index or find-links URL given with
    credentials is downloaded with them (uv's resolution leaves them out of its URLs)."""
    creds = {found[0]: found[1:] for url in (src.index_url, *src.find_links)
             if url and (found := url_credentials(url)) is not None}
    plain = []
    for artifact in artifacts:
        parts = urlsplit(artifact.url)
        origin = f"{parts.scheme.lower()}://{parts.netloc.rpartition('@')[2].lower()}"
        if origin in creds and not wheelhouse.path(artifact).exists():
            say(progress, f"downloading {artifact.filename}")
            _download_with_credentials(wheelhouse, artifact, *creds[origin])
        else:
            plain.append(artifact)
    wheelhouse.ensure_all(plain, progress)


def refetch(wheelhouse: Wheelhouse, artifact: Artifact,
            progress: Callable[[str], None] | None) -> Path:
    """A recorded file from the wheelhouse, hashed again; one missing there is downloaded
    again only from a remote URL (and checked against the recorded hash)."""
    if wheelhouse.path(artifact).exists() or artifact.local_path is not None:
        return wheelhouse.verified(artifact)
    return wheelhouse.ensure(artifact, progress)


def fetch_locked(wheelhouse: Wheelhouse, dist: ResolvedDistribution,
                 find_links: Sequence[str | os.PathLike[str]],
                 progress: Callable[[str], None] | None) -> Path:
    """A locked file in the wheelhouse, hashed now: from the wheelhouse, the lock's
    ``file:`` URL, a *find_links* directory, or a download; the lock's sha256 decides."""
    artifact = dist.artifact()
    if wheelhouse.path(artifact).exists():
        return wheelhouse.verified(artifact)
    local = artifact.local_path
    candidates = [local] if local is not None else []
    candidates += [Path(link) / dist.filename for link in find_links]
    for candidate in candidates:
        if candidate.is_file():
            return wheelhouse.ensure(
                Artifact(candidate.absolute().as_uri(), dist.sha256, dist.filename),
                progress)
    if local is None:
        return wheelhouse.ensure(artifact, progress)
    hint = "" if find_links else " (find_links, --find-links DIR, names a directory to " \
        "look in)"
    raise ResolutionError(dist.filename, f"not in the store's wheelhouse, not at {local}, "
                          f"and not in a find-links directory{hint}")


def _download_with_credentials(wheelhouse: Wheelhouse, artifact: Artifact, user: str,
                               password: str) -> Path:
    """Download *artifact* into *wheelhouse* with HTTP basic auth (hash checked there)."""
    import base64  # noqa: PLC0415 - only for private indexes
    import ssl  # noqa: PLC0415
    import urllib.error  # noqa: PLC0415
    import urllib.request  # noqa: PLC0415

    url = redact_url(artifact.url)
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    request = urllib.request.Request(url, headers={"User-Agent": "isolator",
                                                   "Authorization": f"Basic {token}"})
    try:
        with urllib.request.urlopen(request, timeout=120,
                                    context=ssl.create_default_context()) as response:
            return wheelhouse._store_stream(artifact, response.read, url)
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        raise ResolutionError(url, f"download failed: {getattr(exc, 'reason', exc)}") \
            from None


def _pin_url(pin: Pin) -> str:
    """The URL of a file a pin may install from (they come from one index)."""
    files = [*pin.wheels, *([pin.sdist] if pin.sdist is not None else [])]
    return files[0].url if files else ""

