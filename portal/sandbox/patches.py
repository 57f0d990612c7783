"""Object arithmetic the sandbox API server needs: patches, apply merges, label selectors.

Everything here works on plain JSON-like values (dicts, lists, scalars) and never mutates
its arguments, so the store can keep its objects private and hand out copies.
"""

from __future__ import annotations

import copy
import json
import re

from .errors import bad_request, invalid

# Lists Kubernetes merges item by item (strategic merge patch, server-side apply) rather than
# replacing whole. The value is the key that identifies an item; "ports" depends on the parent
# (containers key their ports by containerPort, services by port), so it is worked out per list.
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "imagePullSecrets": "name",
    "conditions": "type",
    "ports": None,
}


def _merge_key(field, items):
    if field not in MERGE_KEYS:
        return None
    key = MERGE_KEYS[field]
    if key is None:  # ports
        key = "containerPort" if any("containerPort" in i for i in items) else "port"
    if items and all(isinstance(i, dict) and key in i for i in items):
        return key
    return None


# --- JSON merge patch (RFC 7386) and strategic merge patch -------------------------------


def merge_patch(target, patch, strategic=False, field=None):
    """Apply a JSON merge patch; with ``strategic``, keyed lists merge item by item.

    The strategic variant is the part of Kubernetes' strategic merge patch that matters in
    practice: containers, env, ports, volumes merge by their key, and an item carrying
    ``"$patch": "delete"`` is removed. Other lists are replaced, as in a plain merge patch.
    """
    if isinstance(patch, list) and strategic and isinstance(target, list):
        key = _merge_key(field, target + patch)
        if key:
            return _merge_keyed_list(target, patch, key, strategic=True)
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for name, value in patch.items():
        if strategic and name.startswith("$"):
            continue  # directives such as $retainKeys are accepted and ignored
        if value is None:
            result.pop(name, None)
        else:
            result[name] = merge_patch(result.get(name), value, strategic, field=name)
    return result


def _merge_keyed_list(target, patch, key, strategic):
    result = [copy.deepcopy(item) for item in target]
    for item in patch:
        position = next((i for i, old in enumerate(result) if old.get(key) == item.get(key)), None)
        if strategic and item.get("$patch") == "delete":
            if position is not None:
                result.pop(position)
        elif position is None:
            result.append(merge_patch({}, item, strategic))
        else:
            result[position] = merge_patch(result[position], item, strategic)
    return result


# --- JSON patch (RFC 6902) ------------------------------------------------------------------


def _pointer(path):
    if path == "":
        return []
    if not path.startswith("/"):
        raise bad_request(f"invalid JSON pointer {path!r}")
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def _container(document, parts, op):
    node = document
    for part in parts[:-1]:
        try:
            node = node[int(part)] if isinstance(node, list) else node[part]
        except (KeyError, IndexError, ValueError, TypeError):
            raise invalid(f"json patch {op} operation does not apply: doc is missing path: /{'/'.join(parts)}") from None
    return node


def _index(node, part, op, allow_end=False):
    if allow_end and part == "-":
        return len(node)
    try:
        index = int(part)
    except ValueError:
        raise invalid(f"json patch {op} operation: invalid array index {part!r}") from None
    if not 0 <= index <= len(node) - (0 if allow_end else 1):
        raise invalid(f"json patch {op} operation: array index {index} out of bounds")
    return index


def _read(document, parts, op):
    if not parts:
        return document
    node = _container(document, parts, op)
    try:
        if isinstance(node, list):
            return node[_index(node, parts[-1], op)]
        return node[parts[-1]]
    except (KeyError, TypeError):
        raise invalid(f"json patch {op} operation does not apply: doc is missing key: /{'/'.join(parts)}") from None


def _remove(document, parts, op):
    node = _container(document, parts, op)
    if isinstance(node, list):
        return node.pop(_index(node, parts[-1], op))
    if not isinstance(node, dict) or parts[-1] not in node:
        raise invalid(f"json patch {op} operation does not apply: doc is missing key: /{'/'.join(parts)}")
    return node.pop(parts[-1])


def _add(document, parts, value):
    if not parts:
        return value
    node = _container(document, parts, "add")
    if isinstance(node, list):
        node.insert(_index(node, parts[-1], "add", allow_end=True), value)
    elif isinstance(node, dict):
        node[parts[-1]] = value
    else:
        raise invalid(f"json patch add operation does not apply: /{'/'.join(parts)} has no parent object")
    return document


def json_patch(document, operations):
    """Apply an RFC 6902 JSON patch (add, remove, replace, move, copy, test)."""
    if not isinstance(operations, list):
        raise bad_request("a json patch must be a list of operations")
    document = copy.deepcopy(document)
    for operation in operations:
        if not isinstance(operation, dict) or "op" not in operation or "path" not in operation:
            raise bad_request(f"invalid json patch operation: {operation!r}")
        op, parts = operation["op"], _pointer(operation["path"])
        if op == "add":
            document = _add(document, parts, copy.deepcopy(operation.get("value")))
        elif op == "remove":
            _remove(document, parts, op)
        elif op == "replace":
            _read(document, parts, op)
            if parts:
                node = _container(document, parts, op)
                if isinstance(node, list):
                    node[_index(node, parts[-1], op)] = copy.deepcopy(operation.get("value"))
                else:
                    node[parts[-1]] = copy.deepcopy(operation.get("value"))
            else:
                document = copy.deepcopy(operation.get("value"))
        elif op in ("move", "copy"):
            source = _pointer(operation.get("from", ""))
            value = _remove(document, source, op) if op == "move" else copy.deepcopy(_read(document, source, op))
            document = _add(document, parts, value)
        elif op == "test":
            if _read(document, parts, op) != operation.get("value"):
                raise invalid(f"json patch test operation failed at {operation['path']}")
        else:
            raise bad_request(f"unknown json patch operation {op!r}")
    return document


# --- server-side apply ----------------------------------------------------------------------

# Fields the apply merge never takes away from an object, whoever stopped applying them.
_IDENTITY = {("apiVersion",), ("kind",), ("metadata",), ("metadata", "name"), ("metadata", "namespace")}


def field_paths(value, prefix=(), field=None):
    """The set of field paths an applied configuration sets, in the style of managedFields.

    Keyed list items appear as ``("k", key, value)`` path elements; other lists are atomic.
    """
    paths = set()
    if isinstance(value, dict):
        for name, child in value.items():
            if child is None:
                continue
            paths.add(prefix + (name,))
            paths |= field_paths(child, prefix + (name,), field=name)
    elif isinstance(value, list):
        key = _merge_key(field, value)
        if key:
            for item in value:
                element = prefix + (("k", key, item[key]),)
                paths.add(element)
                paths |= field_paths(item, element)
    return paths


def fields_v1(paths):
    """Render field paths as the ``fieldsV1`` tree of a managedFields entry."""
    tree = {}
    for path in sorted(paths, key=lambda p: (len(p), json.dumps(p))):
        node = tree
        for element in path:
            if isinstance(element, tuple):
                label = "k:" + json.dumps({element[1]: element[2]}, separators=(",", ":"))
            else:
                label = "f:" + element
            node = node.setdefault(label, {})
    return tree


def _drop_path(document, path):
    node = document
    for element in path[:-1]:
        if isinstance(element, tuple):
            node = next((i for i in node if isinstance(i, dict) and i.get(element[1]) == element[2]), None)
        else:
            node = node.get(element) if isinstance(node, dict) else None
        if node is None:
            return
    last = path[-1]
    if isinstance(last, tuple) and isinstance(node, list):
        node[:] = [i for i in node if not (isinstance(i, dict) and i.get(last[1]) == last[2])]
    elif isinstance(node, dict):
        node.pop(last, None)


def apply_merge(live, applied, previously_applied):
    """Merge an applied configuration into the live object the way server-side apply does.

    Fields this manager applied last time but left out now are removed (only the topmost such
    field; the sandbox assumes one manager owns what it applied, which ``force=true`` ensures).
    Everything else merges like a strategic merge patch without directives.
    """
    result = copy.deepcopy(live) if live else {}
    if previously_applied:
        gone = field_paths(previously_applied) - field_paths(applied) - _IDENTITY
        for path in sorted(gone, key=len):
            if path[:-1] not in gone:
                _drop_path(result, path)
    return merge_patch(result, _without_nulls(applied), strategic=True)


def _without_nulls(value):
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


# --- label selectors ----------------------------------------------------------------------

_SET_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9._/-]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")
_EQUALITY_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9._/-]+)\s*(==|=|!=)\s*([A-Za-z0-9._-]*)\s*$")
_EXISTS_REQUIREMENT = re.compile(r"^\s*(!?)\s*([A-Za-z0-9._/-]+)\s*$")


def _split_requirements(text):
    parts, depth, current = [], 0, []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p for p in parts if p.strip()]


def parse_label_selector(text):
    """Parse ``a=b,c!=d,e,!f,g in (x,y),h notin (z)`` into a list of predicates on labels."""
    predicates = []
    for requirement in _split_requirements(text or ""):
        if match := _SET_REQUIREMENT.match(requirement):
            key, op, values = match.group(1), match.group(2), {v.strip() for v in match.group(3).split(",") if v.strip()}
            if op == "in":
                predicates.append(lambda labels, k=key, vs=values: labels.get(k) in vs)
            else:
                predicates.append(lambda labels, k=key, vs=values: labels.get(k) not in vs)
        elif match := _EQUALITY_REQUIREMENT.match(requirement):
            key, op, value = match.groups()
            if op == "!=":
                predicates.append(lambda labels, k=key, v=value: labels.get(k) != v)
            else:
                predicates.append(lambda labels, k=key, v=value: k in labels and labels[k] == v)
        elif match := _EXISTS_REQUIREMENT.match(requirement):
            negated, key = match.groups()
            if negated:
                predicates.append(lambda labels, k=key: k not in labels)
            else:
                predicates.append(lambda labels, k=key: k in labels)
        else:
            raise bad_request(f"unable to parse requirement: {requirement.strip()!r} in label selector {text!r}")
    return predicates


def selector_matches(predicates, labels):
    labels = labels or {}
    return all(predicate(labels) for predicate in predicates)


def parse_field_selector(text):
    """Field selectors: only ``metadata.name`` and ``metadata.namespace`` (= / == / !=)."""
    predicates = []
    for requirement in _split_requirements(text or ""):
        match = re.match(r"^\s*(metadata\.name|metadata\.namespace)\s*(==|=|!=)\s*(\S*)\s*$", requirement)
        if not match:
            raise bad_request(f"field selector {requirement.strip()!r} is not supported by the sandbox")
        field, op, value = match.groups()
        attribute = field.split(".")[1]
        if op == "!=":
            predicates.append(lambda obj, a=attribute, v=value: obj["metadata"].get(a) != v)
        else:
            predicates.append(lambda obj, a=attribute, v=value: obj["metadata"].get(a) == v)
    return predicates


def match_labels_selector(selector):
    """Turn a LabelSelector object (matchLabels/matchExpressions) into predicates."""
    selector = selector or {}
    predicates = [lambda labels, k=k, v=v: labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items()]
    for expression in selector.get("matchExpressions") or []:
        key, op, values = expression.get("key"), expression.get("operator"), set(expression.get("values") or [])
        if op == "In":
            predicates.append(lambda labels, k=key, vs=values: labels.get(k) in vs)
        elif op == "NotIn":
            predicates.append(lambda labels, k=key, vs=values: labels.get(k) not in vs)
        elif op == "Exists":
            predicates.append(lambda labels, k=key: k in labels)
        elif op == "DoesNotExist":
            predicates.append(lambda labels, k=key: k not in labels)
    return predicates
