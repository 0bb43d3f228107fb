"""HTTPS: the server's TLS context, built once from certificate and key files.

The files are read in the process that starts serving, before any worker is forked: the
workers inherit the loaded context, so a bad file stops the start with one clear message (a
``TLSError``) instead of killing every worker in turn. Choices, all in ``server_context``:

* TLS 1.2 at least; the ciphers and options are Python's defaults for a server (no
  compression), plus no renegotiation (a client could make the server redo handshakes).
* ALPN offers ``http/1.1`` only, the one protocol served.
* With ``ca_certs``, clients must present a certificate issued by one of those authorities
  (mutual TLS); the handshake fails otherwise. Without it, no client certificate is asked for.
* The handshake must finish within the request-head timeout (serve.py passes it to the loop);
  a client that fails it, or speaks plain HTTP to the TLS port, has its connection closed (the
  event loop drops it quietly; with asyncio's debug mode it logs it at debug level).
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path

# Read when no password is given: a password on the command line shows in the process list.
PASSWORD_ENV = "CELLO_SSL_KEYFILE_PASSWORD"


class TLSError(ValueError):
    """A certificate, key or CA file that cannot be used; the message is one line for the user."""


class _PasswordMissing(Exception):
    pass


def server_context(
    certfile: str,
    keyfile: str | None = None,
    password: str | None = None,
    ca_certs: str | None = None,
) -> ssl.SSLContext:
    """The server's TLS context; ``keyfile`` None: the key is in ``certfile`` too.
    ``password`` None reads ``$CELLO_SSL_KEYFILE_PASSWORD``. Raises TLSError."""
    if password is None:
        password = os.environ.get(PASSWORD_ENV)
    _readable(certfile, "certificate")
    key_path = keyfile or certfile
    if keyfile is not None:
        _readable(keyfile, "key")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_RENEGOTIATION
    context.set_alpn_protocols(["http/1.1"])

    def give_password() -> str:
        # Without this callback OpenSSL would prompt for the password on the terminal.
        if password is None:
            raise _PasswordMissing
        return password

    try:
        context.load_cert_chain(certfile, keyfile, password=give_password)
    except _PasswordMissing:
        raise TLSError(
            f"the private key in {key_path} is encrypted: give its password with --ssl-keyfile-password "
            f"(ssl_keyfile_password=... in app.run) or ${PASSWORD_ENV}"
        ) from None
    except ssl.SSLError as exc:
        raise TLSError(_explain(exc, certfile, key_path, password is not None)) from None
    if ca_certs is not None:
        _readable(ca_certs, "CA certificates")
        try:
            context.load_verify_locations(cafile=ca_certs)
        except ssl.SSLError as exc:
            raise TLSError(f"no usable CA certificate in {ca_certs} ({_reason(exc)})") from None
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def _readable(path: str, what: str) -> None:
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise TLSError(f"cannot read the {what} file {path}: {reason.lower()}") from None


def _explain(exc: ssl.SSLError, certfile: str, key_path: str, with_password: bool) -> str:
    """Why load_cert_chain failed, in the user's terms (OpenSSL says "PEM lib" for most)."""
    if exc.reason == "KEY_VALUES_MISMATCH":
        return f"the private key in {key_path} does not match the certificate in {certfile}"
    if b"-----BEGIN CERTIFICATE-----" not in _head(certfile):
        return f"no PEM certificate in {certfile}"
    key = _head(key_path)
    if b"PRIVATE KEY-----" not in key:
        return f"no PEM private key in {key_path}"
    if with_password and (b"ENCRYPTED" in key):
        return f"cannot decrypt the private key in {key_path}: wrong password"
    return f"cannot load the certificate {certfile} with the key {key_path} ({_reason(exc)})"


def _head(path: str) -> bytes:
    # PEM files are small; a large file is not one, and its first megabyte says so.
    try:
        with Path(path).open("rb") as file:
            return file.read(1 << 20)
    except OSError:
        return b""


def _reason(exc: ssl.SSLError) -> str:
    return str(exc.reason or exc.strerror or exc).lower().replace("_", " ")
