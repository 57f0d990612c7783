"""Service manifests: YAML parsing with line/column errors, placeholders, rendering.

Placeholders use Python's string.Template (`${image}`; `$$` is a literal `$`). An unknown
placeholder is an error. Schema validation against Kubernetes comes with the deploy job.
"""
import string

import yaml

PLACEHOLDERS = ("image", "version", "service", "environment", "namespace", "replicas", "color")


class ManifestError(ValueError):
    def __init__(self, problems):
        self.problems = problems  # list of {"document": n or None, "path": str, "line": n or None, "message": str}
        super().__init__("; ".join(format_problem(p) for p in problems))


def format_problem(problem):
    where = []
    if problem.get("document") is not None:
        where.append(f"document {problem['document']}")
    if problem.get("line") is not None:
        where.append(f"line {problem['line']}" + (f", column {problem['column']}" if problem.get("column") else ""))
    if problem.get("path"):
        where.append(problem["path"])
    prefix = f"{', '.join(where)}: " if where else ""
    return prefix + problem["message"]


def placeholder_problems(text):
    problems = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        for match in string.Template.pattern.finditer(line):
            name = match.group("named") or match.group("braced")
            if match.group("invalid") is not None:
                problems.append({"line": lineno, "column": match.start() + 1,
                                 "message": "a lone '$' is not a placeholder; write '$$' for a literal dollar sign"})
            elif name and name not in PLACEHOLDERS:
                problems.append({"line": lineno, "column": match.start() + 1,
                                 "message": f"unknown placeholder ${{{name}}}; known: "
                                            + ", ".join(f"${{{p}}}" for p in PLACEHOLDERS)})
    return problems


SAMPLE_VALUES = {"image": "registry.example.com/app@sha256:" + "0" * 64, "version": "1.0.0", "service": "svc",
                 "environment": "env", "namespace": "ns", "replicas": "1", "color": "blue"}


def render(text, values):
    return string.Template(text).substitute({k: str(v) for k, v in values.items()})


def parse_documents(text):
    """Parse YAML text into a list of mappings; raise ManifestError with line and column."""
    try:
        documents = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        context = getattr(exc, "context", None)
        message = f"not valid YAML: {problem}" + (f" ({context})" if context else "")
        raise ManifestError([{
            "line": mark.line + 1 if mark else None,
            "column": mark.column + 1 if mark else None,
            "message": message,
        }])
    return documents


def validate_manifest(text):
    """Return the parsed documents of a manifest with sample values, or raise ManifestError."""
    if not isinstance(text, str) or not text.strip():
        raise ManifestError([{"message": "manifest: required (YAML text with one or more Kubernetes objects)"}])
    problems = placeholder_problems(text)
    if problems:
        raise ManifestError(problems)
    documents = parse_documents(render(text, SAMPLE_VALUES))
    if not documents:
        raise ManifestError([{"message": "the manifest holds no Kubernetes object"}])
    for index, doc in enumerate(documents, start=1):
        if not isinstance(doc, dict):
            problems.append({"document": index, "message": "each document must be a mapping (a Kubernetes object)"})
            continue
        for key in ("apiVersion", "kind"):
            if not isinstance(doc.get(key), str) or not doc.get(key):
                problems.append({"document": index, "path": key, "message": f"{key} is required"})
        metadata = doc.get("metadata")
        if not isinstance(metadata, dict) or not metadata.get("name"):
            problems.append({"document": index, "path": "metadata.name", "message": "metadata.name is required"})
        if doc.get("kind") == "Secret" and (doc.get("data") or doc.get("stringData")):
            problems.append({"document": index, "path": "data",
                             "message": "Secret values do not belong in a manifest; reference an existing Secret instead"})
    if problems:
        raise ManifestError(problems)
    return documents
