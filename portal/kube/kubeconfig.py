"""Kubeconfig files and texts: reading, checking (what a pasted one may not do), and the one Gantry
writes for a cluster registered by server address and token."""
from __future__ import annotations

import base64
import os

import yaml

from portal import safe_yaml

# In a kubeconfig pasted into Gantry these would run a program or read a file on Gantry's host.
HOST_REACHING_USER_KEYS = ("exec", "auth-provider", "tokenFile", "client-certificate", "client-key")
HOST_REACHING_CLUSTER_KEYS = ("certificate-authority",)


def parse_kubeconfig(text, context="", pasted=False):
    """Load kubeconfig YAML text into a dict, refusing what could not work, with the reason.

    Raises ``ValueError`` when the text is not YAML, is not a kubeconfig, names a context it
    does not define, or leaves the context to use ambiguous. A `pasted` kubeconfig (stored in
    Gantry) may not run programs or read files on Gantry's host: embed tokens and certificates
    (`token`, `client-certificate-data`, `certificate-authority-data`) instead.
    """

    try:
        data = safe_yaml.safe_load(text or "")
    except safe_yaml.YamlLimitError as error:
        raise ValueError(f"the kubeconfig is refused: {error}") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ValueError(f"the kubeconfig is not valid YAML{where}: {getattr(error, 'problem', None) or error}") from None
    if not isinstance(data, dict):
        raise ValueError("the kubeconfig is not a YAML mapping; paste the whole file, starting with 'apiVersion: v1'")
    missing = [key for key in ("clusters", "contexts", "users") if not isinstance(data.get(key), list) or not data[key]]
    if missing:
        raise ValueError(f"this is not a usable kubeconfig: it has no {', no '.join(missing)}")
    contexts = {entry.get("name"): entry.get("context") or {} for entry in data["contexts"] if isinstance(entry, dict)}
    names = [name for name in contexts if name]
    chosen = context or data.get("current-context") or (names[0] if len(names) == 1 else "")
    if not chosen:
        raise ValueError(f"the kubeconfig has no current-context; choose one of its contexts: {', '.join(names)}")
    if chosen not in contexts:
        raise ValueError(f"the kubeconfig has no context named {chosen!r}; its contexts are: {', '.join(names)}")
    for section, key in (("clusters", "cluster"), ("users", "user")):
        wanted = contexts[chosen].get(key)
        defined = {entry.get("name") for entry in data[section] if isinstance(entry, dict)}
        if wanted not in defined:
            raise ValueError(f"context {chosen!r} refers to {key} {wanted!r}, which the kubeconfig does not define under {section}")
    if pasted:
        for section, key, forbidden in (("users", "user", HOST_REACHING_USER_KEYS),
                                        ("clusters", "cluster", HOST_REACHING_CLUSTER_KEYS)):
            for entry in data[section]:
                body = (entry or {}).get(key) or {} if isinstance(entry, dict) else {}
                found = [k for k in forbidden if k in body]
                if found:
                    raise ValueError(f"{section[:-1]} {entry.get('name')!r} uses {', '.join(found)}, which would run a "
                                     "program or read a file on the Gantry host; embed the credentials instead "
                                     "(token, client-certificate-data, client-key-data, certificate-authority-data), "
                                     "or register the kubeconfig as a file path")
    return data


def read_kubeconfig_file(path):
    """The text of a kubeconfig file on Gantry's host: the one place such a file is read. Raises OSError."""
    with open(os.path.expanduser(path or ""), encoding="utf-8") as handle:
        return handle.read()


def validate_kubeconfig(text, context="", pasted=False):
    """Check kubeconfig text (see ``parse_kubeconfig``); return its context names."""
    data = parse_kubeconfig(text, context, pasted=pasted)
    return [entry["name"] for entry in data["contexts"] if isinstance(entry, dict) and entry.get("name")]


def _server_kubeconfig(cluster):
    """A kubeconfig for the "server" mode, so every mode goes through the client's own loader."""
    settings = {"server": cluster.server}
    ca_data = getattr(cluster, "ca_data", "") or ""
    if ca_data.strip():
        settings["certificate-authority-data"] = base64.b64encode(ca_data.encode()).decode()
    if getattr(cluster, "insecure", False):
        settings["insecure-skip-tls-verify"] = True
    token = cluster.get_token() or ""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "gantry", "cluster": settings}],
        "users": [{"name": "gantry", "user": {"token": token} if token else {}}],
        "contexts": [{"name": "gantry", "context": {"cluster": "gantry", "user": "gantry"}}],
        "current-context": "gantry",
    }
