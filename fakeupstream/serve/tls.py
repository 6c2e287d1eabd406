"""TLS for clients that only speak ``wss://`` and ``https://`` (the Node SDK, browsers).

:meth:`ServerCertificate.local` makes, on first use, a local certificate authority and
a server certificate it signs for ``127.0.0.1``, ``localhost`` and ``::1``, and keeps
both in a per-user cache directory (``$XDG_CACHE_HOME/fakeupstream/tls``, else
``~/.cache/fakeupstream/tls``), so a client trusts the fake once by pointing at
``ca.pem`` (``NODE_EXTRA_CA_CERTS``, ``SSL_CERT_FILE``, an ``ssl`` context). The
certificates come from ``trustme``, in the ``tls`` extra
(``pip install 'fakeupstream[tls]'``). A user's own pair needs no extra:
``ServerCertificate(cert=..., key=...)``.

The files are written under a lock and atomically, so concurrent servers (pytest-xdist
workers) never see half a CA, and the CA's private key never leaves the cache directory.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..exceptions import FakeUpstreamError
from ..storage.atomic import write_atomically

__all__ = ["LOCAL_IDENTITIES", "ServerCertificate", "tls_cache_dir"]

LOCAL_IDENTITIES = ("127.0.0.1", "localhost", "::1")
"""The names the local server certificate is valid for."""

_CA = "ca.pem"
_CA_KEY = "ca-key.pem"
_CERT = "server.pem"
_KEY = "server-key.pem"


def tls_cache_dir() -> Path:
    """Where the local CA and server certificate are kept (``XDG_CACHE_HOME`` respected)."""
    base = os.environ.get("XDG_CACHE_HOME", "").strip()
    root = Path(base) if base else Path.home() / ".cache"
    return root / "fakeupstream" / "tls"


@dataclass(frozen=True, slots=True)
class ServerCertificate:
    """A server certificate chain and its key, as PEM files.

    Attributes:
        cert: the server certificate (followed by any intermediates).
        key: its private key.
        ca: the certificate authority clients must trust, when it is the local one;
            ``None`` for a user's own pair.
    """

    cert: Path
    key: Path
    ca: Path | None = None

    @classmethod
    def local(cls, directory: Path | None = None) -> ServerCertificate:
        """The local CA's certificate for loopback, made on first use and cached.

        Args:
            directory: where to keep the files; :func:`tls_cache_dir` by default.

        Raises:
            FakeUpstreamError: ``trustme`` is not installed, or the directory is not
                writable.
        """
        directory = tls_cache_dir() if directory is None else directory
        found = cls(directory / _CERT, directory / _KEY, directory / _CA)
        if all(path.is_file() for path in (found.cert, found.key, directory / _CA_KEY)):
            return found
        try:
            import trustme
        except ImportError:
            raise FakeUpstreamError(
                "TLS with a local certificate authority needs trustme: "
                "pip install 'fakeupstream[tls]' (or pass your own --tls-cert and --tls-key)"
            ) from None
        try:
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            with _locked(directory / ".lock"):
                if all(path.is_file() for path in (found.cert, found.key, directory / _CA_KEY)):
                    return found  # another process made them while this one waited
                if (directory / _CA).is_file() and (directory / _CA_KEY).is_file():
                    ca = trustme.CA.from_pem(
                        (directory / _CA).read_bytes(), (directory / _CA_KEY).read_bytes()
                    )
                else:
                    ca = trustme.CA(organization_name="fakeupstream local CA")
                    # The key first: a ca.pem on disk always has its key next to it.
                    _write_private(directory / _CA_KEY, ca.private_key_pem.bytes())
                    write_atomically(directory / _CA, ca.cert_pem.bytes())
                leaf = ca.issue_cert(*LOCAL_IDENTITIES, common_name="fakeupstream")
                _write_private(directory / _KEY, leaf.private_key_pem.bytes())
                write_atomically(
                    directory / _CERT, b"".join(blob.bytes() for blob in leaf.cert_chain_pems)
                )
        except OSError as exc:
            raise FakeUpstreamError(
                f"cannot keep the local TLS certificate in {directory}: {exc.strerror or exc}"
                " (set XDG_CACHE_HOME to a writable directory)"
            ) from None
        return found

    def server_context(self) -> ssl.SSLContext:
        """An ``ssl`` server context with this certificate, for ``loop.create_server``.

        Raises:
            FakeUpstreamError: a file is missing or the pair does not match.
        """
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(self.cert, self.key)
        except (OSError, ssl.SSLError) as exc:
            raise FakeUpstreamError(
                f"cannot use TLS certificate {self.cert} with key {self.key}: "
                f"{getattr(exc, 'strerror', None) or exc}"
            ) from None
        # HTTP/1.1 only: the WebSocket upgrade and the REST side both need it.
        context.set_alpn_protocols(["http/1.1"])
        return context


def _write_private(path: Path, data: bytes) -> None:
    write_atomically(path, data)
    path.chmod(0o600)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
