"""Signing bundles with Ed25519: who may change a bundle, checked by whoever loads it.

A bundle's ``takeoff.json`` records its ``digest`` (sha256 of its canonical JSON, which lists
every other file's sha256), so one signature over the digest covers every byte of the bundle.
Ed25519 (from ``cryptography``) rather than an HMAC: the key that signs stays where bundles are
made, and the servers that check them hold only the public key, so a server that is broken
into cannot sign a bundle of its own. The signature is stored in the manifest's ``signature``
field, which the digest leaves out (signing does not change the bundle's version).

Keys are PEM files (PKCS#8 private, SubjectPublicKeyInfo public: what ``takeoff keygen`` and
``openssl genpkey -algorithm ed25519`` write), or the same text in ``TAKEOFF_SIGNING_KEY``
(private) / ``TAKEOFF_VERIFY_KEY`` (public).

Example:
    >>> from takeoff import signing
    >>> signing.generate_key("keys/release.pem")            # and keys/release.pem.pub
    >>> signing.sign("runs/credit", signing.private_key("keys/release.pem"))
    >>> signing.verify("runs/credit", signing.public_key("keys/release.pem.pub"))
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from takeoff import bundle
from takeoff.errors import BundleError, ConfigError, MissingDependencyError

ALGORITHM = "ed25519"
SIGNING_ENV = "TAKEOFF_SIGNING_KEY"
VERIFY_ENV = "TAKEOFF_VERIFY_KEY"
_CONTEXT = b"takeoff-bundle-signature-v1\n"  # what is signed: this, then the digest's text


def _crypto():
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:
        raise MissingDependencyError("cryptography", "signing and verifying bundles", extra="signing") from None
    return ed25519, serialization, InvalidSignature


@dataclass(frozen=True)
class Signature:
    """What :func:`verify` found: the bundle's digest, the signing key's id, and whether the
    signature was checked against a key (``checked``) or only read."""

    path: str
    digest: str | None  # None: a bundle written before manifests carried a digest
    key_id: str | None
    checked: bool

    @property
    def version(self) -> str | None:
        return self.digest.removeprefix("sha256:")[:12] if self.digest else None

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "digest": self.digest, "version": self.version,
                "signed": self.key_id is not None, "key_id": self.key_id, "signature_checked": self.checked}


def key_id(public) -> str:
    """16 hex digits naming a public key (sha256 of its raw bytes), shown in messages."""
    _, serialization, _ = _crypto()
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def generate_key(path: str | Path) -> tuple[Path, Path]:
    """Write a new Ed25519 private key to ``path`` (PEM, readable by its owner only) and its public
    key to ``path.pub``; refuses to overwrite either.

    Returns:
        (private key file, public key file).
    """
    ed25519, serialization, _ = _crypto()
    path = Path(path)
    public_path = path.with_name(path.name + ".pub")
    for file in (path, public_path):
        if file.exists():
            raise ConfigError(f"{file} already exists; a key is never overwritten. Fix: choose another path.")
    key = ed25519.Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(private_pem)
    public_path.write_bytes(public_pem)
    return path, public_path


def _key_text(key_file: str | Path | None, env: str, what: str) -> tuple[bytes, str]:
    if key_file is not None:
        file = Path(key_file)
        if not file.is_file():
            raise ConfigError(f"{what} file {file} does not exist. Fix: pass the PEM file `takeoff keygen` wrote.")
        return file.read_bytes(), str(file)
    text = os.environ.get(env)
    if not text:
        raise ConfigError(f"no {what} given. Fix: pass --key-file FILE, or put the PEM text in ${env}.")
    if not text.lstrip().startswith("-----") and Path(text).is_file():  # the variable names a file
        return Path(text).read_bytes(), text
    return text.encode(), f"${env}"


def private_key(key_file: str | Path | None = None):
    """The Ed25519 private key in ``key_file``, else in ``$TAKEOFF_SIGNING_KEY`` (PEM text).

    Raises:
        ConfigError: no key given, or not an unencrypted Ed25519 private key.
    """
    ed25519, serialization, _ = _crypto()
    data, source = _key_text(key_file, SIGNING_ENV, "signing key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as error:
        raise ConfigError(f"{source} is not an unencrypted PEM private key ({error}). "
                          "Fix: create one with `takeoff keygen KEY`.") from None
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise ConfigError(f"{source} is a {type(key).__name__}, not an Ed25519 key. Fix: create one with `takeoff keygen KEY`.")
    return key


def public_key(key_file: str | Path | None = None):
    """The Ed25519 public key in ``key_file``, else in ``$TAKEOFF_VERIFY_KEY`` (PEM text); a
    private key is accepted too (its public half is used).

    Raises:
        ConfigError: no key given, or not an Ed25519 key.
    """
    ed25519, serialization, _ = _crypto()
    data, source = _key_text(key_file, VERIFY_ENV, "verification (public) key")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError):
        try:
            key = serialization.load_pem_private_key(data, password=None).public_key()
        except (ValueError, TypeError) as error:
            raise ConfigError(f"{source} is not a PEM public key ({error}). Fix: pass the .pub file `takeoff keygen` wrote.") from None
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise ConfigError(f"{source} is a {type(key).__name__}, not an Ed25519 key. Fix: pass the .pub file `takeoff keygen` wrote.")
    return key


def sign(path: str | Path, key) -> Signature:
    """Sign the bundle at ``path`` with ``key`` (an Ed25519 private key): its files and manifest
    are checked first, then the signature of its digest is written into ``takeoff.json``
    (atomically). A bundle written before manifests carried a digest gets one now.

    Raises:
        BundleError: the bundle is not intact (a file or the manifest changed since it was written).
    """
    path = Path(path)
    manifest = bundle.read_manifest(path)
    document = bundle.with_digest(manifest)
    digest = document["digest"]
    document["signature"] = {
        "algorithm": ALGORITHM,
        "key_id": key_id(key.public_key()),
        "value": base64.b64encode(key.sign(_CONTEXT + digest.encode())).decode(),
    }
    bundle.write_json(path / bundle.MANIFEST, document)
    return Signature(str(path), digest, document["signature"]["key_id"], True)


def verify(path: str | Path, key=None) -> Signature:
    """Check the bundle at ``path``: its files, its manifest's digest, and, with ``key`` (an
    Ed25519 public key), its signature.

    Raises:
        BundleError: not intact; or, with ``key``, unsigned or signed by another key.
    """
    path = Path(path)
    manifest = bundle.read_manifest(path)
    digest = manifest.get("digest")
    signature = manifest.get("signature")
    if key is None:
        return Signature(str(path), digest, signature["key_id"] if signature else None, False)
    expected_id = key_id(key)
    if signature is None or digest is None:
        raise BundleError(str(path), f"is not signed (a signature by key {expected_id} is required)",
                          f"sign it where it was made: `takeoff sign {path} --key-file KEY`")
    _, _, invalid = _crypto()
    try:
        key.verify(base64.b64decode(signature["value"], validate=True), _CONTEXT + digest.encode())
    except (invalid, ValueError):
        if signature["key_id"] != expected_id:
            raise BundleError(str(path), f"is signed by another key (key {signature['key_id']}; the key given is "
                              f"{expected_id})", "sign it with the key this side trusts, or pass that key's .pub file") from None
        raise BundleError(str(path), f"has a signature by key {expected_id} that does not match its content: it was "
                          "changed after it was signed", "re-copy the bundle from its source and sign it again") from None
    return Signature(str(path), digest, signature["key_id"], True)


def require_signed(source: str | Path, key_file: str | Path | None = None) -> list[Signature]:
    """Check that the bundle at ``source``, or every bundle in the directory ``source`` (as
    ``takeoff serve`` finds them), is signed by the public key in ``key_file`` (else
    ``$TAKEOFF_VERIFY_KEY``): what ``takeoff serve --require-signed`` runs before it starts.

    Raises:
        ConfigError: no key given. BundleError: a bundle is unsigned, wrongly signed or not intact.
    """
    key = public_key(key_file)
    source = Path(source)
    if (source / bundle.MANIFEST).exists() or not source.is_dir():
        paths = [source]
    else:
        paths = sorted(p for p in source.iterdir() if p.is_dir() and (p / bundle.MANIFEST).exists()) or [source]
    return [verify(path, key) for path in paths]
