"""Index credentials never reach disk (or output) in clear, where a worker could read them.

attack                                          what stops it
----------------------------------------------  -----------------------------------------------
a plugin reads its generation's metadata.json   every URL the store writes or prints goes
  (0644), the lock file, progress or error        through ``redact_url``: userinfo dropped,
  output for ``https://user:token@host/simple``   secret-looking query values masked
the audit log                                   ``Policy.audit`` redacts every string field
a reinstall / upgrade needs them again          reinstall is offline (wheelhouse); upgrade and
                                                  sync take them again (``index_url=`` given
                                                  again, or uv's netrc)
"""

from __future__ import annotations

import base64
import http.server
import secrets
import shutil
import subprocess
import sys
import threading
from typing import TYPE_CHECKING

import pytest

from isolator import IsolatorError, PluginStore
from isolator._redact import redact_text, redact_url

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

TOKEN = f"tok-{secrets.token_hex(12)}"
USER = "deploy"


def _handler(root: Path) -> type[http.server.SimpleHTTPRequestHandler]:
    wanted = "Basic " + base64.b64encode(f"{USER}:{TOKEN}".encode()).decode()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(root), **kwargs)  # type: ignore[arg-type]

        def do_GET(self) -> None:
            if self.headers.get("Authorization") != wanted:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="index"')
                self.end_headers()
                return
            super().do_GET()

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def private_index(sec_tmp: Path, attack_wheelhouse: Path) -> Iterator[str]:
    """A PEP 503 index on 127.0.0.1 that answers only with the credentials; its base URL
    (without them)."""
    root = sec_tmp / "index"
    project = root / "simple" / "openhands-plugin-bystander"
    project.mkdir(parents=True)
    for wheel in attack_wheelhouse.glob("openhands_plugin_bystander-*.whl"):
        shutil.copy(wheel, project / wheel.name)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(root))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/simple"
    server.shutdown()
    server.server_close()


def _with_credentials(url: str) -> str:
    return url.replace("http://", f"http://{USER}:{TOKEN}@")


def _leaks(root: Path) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            try:
                data = path.read_bytes()
            except OSError:
                continue
            if TOKEN.encode() in data:
                found.append(str(path.relative_to(root)))
    return found


def test_index_credentials_are_not_kept_in_the_store(sec_tmp: Path, plugin_python: str,
                                                     private_index: str) -> None:
    store = PluginStore(sec_tmp / "store", python=plugin_python)
    url = _with_credentials(private_index)
    said: list[str] = []
    installed = store.install("pypi:openhands-plugin-bystander", index_url=url,
                              progress=said.append)
    assert installed.name == "bystander"
    lock = store.lock()
    assert TOKEN not in repr(lock), lock
    assert TOKEN not in "\n".join(said), said
    leaks = _leaks(sec_tmp / "store")  # metadata.json, audit.jsonl, uv's cache, ...
    metadata = (installed.path / "metadata.json").read_text()
    assert TOKEN not in metadata and installed.source.index_url == private_index, metadata
    assert leaks == [], leaks
    assert TOKEN not in repr(store.list_installed())

    # A reinstall is offline, from the wheelhouse: it needs no credentials.
    store.reinstall("bystander")
    # An upgrade resolves again: without the credentials the index says 401, and the error
    # does not show them; given again, they work, and are not kept either.
    with pytest.raises(IsolatorError) as info:
        store.upgrade("bystander")
    assert TOKEN not in str(info.value)
    store.upgrade("bystander", index_url=url, progress=said.append)
    assert TOKEN not in "\n".join(said)
    with pytest.raises(IsolatorError, match="another index"):
        store.upgrade("bystander", index_url="https://other.example/simple")
    assert _leaks(sec_tmp / "store") == []
    # The same from the command line: `ohp upgrade NAME --index-url URL`, nothing printed.
    out = subprocess.run([sys.executable, "-m", "hostbridge.cli", "upgrade", "bystander",
                          "--index-url", url, "--root", str(store.root)],
                         capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr
    assert TOKEN not in out.stdout + out.stderr
    assert _leaks(sec_tmp / "store") == []


def test_errors_and_progress_do_not_show_credentials(sec_tmp: Path, plugin_python: str,
                                                     private_index: str) -> None:
    store = PluginStore(sec_tmp / "store", python=plugin_python)
    said: list[str] = []
    with pytest.raises(IsolatorError) as info:  # no such project on that index
        store.install("pypi:openhands-plugin-nowhere", index_url=_with_credentials(
            private_index), progress=said.append)
    assert TOKEN not in str(info.value) and TOKEN not in repr(info.value.args)
    assert TOKEN not in "\n".join(said)
    with pytest.raises(IsolatorError) as info:  # a malformed find-links URL
        store.install("pypi:openhands-plugin-nowhere",
                      find_links=[f"ftp://{USER}:{TOKEN}@host/wheels"])
    assert TOKEN not in str(info.value)
    assert _leaks(sec_tmp / "store") == []


@pytest.mark.parametrize(("url", "redacted"), [
    ("https://user:pw@host/simple", "https://host/simple"),
    ("https://token@host:8443/simple/", "https://host:8443/simple/"),
    ("https://host/simple?token=abc&x=1", "https://host/simple?token=***&x=1"),
    ("https://host/w?X-Amz-Signature=abc&X-Amz-Credential=k", "https://host/w?X-Amz-Signature="
     "***&X-Amz-Credential=***"),
    ("git+https://u:p@github.com/a/b.git", "git+https://github.com/a/b.git"),
    ("/srv/wheels", "/srv/wheels"),
    ("file:///srv/wheels", "file:///srv/wheels"),
])
def test_redact_url(url: str, redacted: str) -> None:
    assert redact_url(url) == redacted
    assert redact_text(f"error: cannot fetch {url}: 401") == \
        f"error: cannot fetch {redacted}: 401"


@pytest.mark.parametrize("scheme", ["git+https", "https"])
def test_a_source_error_never_shows_its_credentials(scheme: str) -> None:
    source = f"{scheme}://user:{TOKEN}@git.example.org/team/repo.git"
    # Every error of isolator (SourceError, StoreError and theirs) redacts the URLs in it: a
    # git source with a token, refused for a bad ref, says so without the token.
    from isolator import PluginSource, SourceError

    with pytest.raises(SourceError) as info:
        PluginSource.parse(source, ref="bad ref with spaces")
    assert TOKEN not in str(info.value)
    assert TOKEN not in info.value.source and "git.example.org" in str(info.value)


@pytest.mark.parametrize("url", ["git+https:///o/r.git", "file:///path/to/repo",
                                 "https://h.example/simple/?a=1&b", "git+file:///srv/r#x"])
def test_a_url_without_credentials_is_left_as_written(url: str) -> None:
    assert redact_url(url) == url
    assert redact_text(f"see {url} here") == f"see {url} here"
