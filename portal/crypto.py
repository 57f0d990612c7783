"""Encryption of secrets at rest (cluster tokens, kubeconfig content) with Fernet.

The key comes from GANTRY_ENCRYPTION_KEY (a Fernet key, or any passphrase, which is stretched);
without it, a key is derived from SECRET_KEY, so rotating SECRET_KEY then needs re-entering secrets.
"""
import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings


def _fernet():
    material = settings.GANTRY_ENCRYPTION_KEY or settings.SECRET_KEY
    try:
        if len(material) == 44:
            return Fernet(material.encode())
    except ValueError:
        pass
    key = base64.urlsafe_b64encode(hashlib.sha256(("gantry-secrets:" + material).encode()).digest())
    return Fernet(key)


def encrypt(text):
    if not text:
        return ""
    return _fernet().encrypt(text.encode()).decode()


def decrypt(token):
    if not token:
        return ""
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise ValueError(
            "cannot decrypt a stored secret: GANTRY_ENCRYPTION_KEY (or SECRET_KEY) changed since it was saved; "
            "enter the cluster's credentials again"
        ) from exc
