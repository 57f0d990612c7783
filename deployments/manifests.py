"""Service manifests: YAML parsing with line/column errors, placeholders, rendering, validation.

Placeholders use Python's string.Template (`${image}`; `$$` is a literal `$`). An unknown
placeholder is an error. A manifest is checked when it is saved (with sample values) and again
by the deploy job (with the environment's values), each time against:

- YAML syntax, with line and column;
- the Kubernetes schema (kubernetes-validate, offline, for KUBERNETES_VERSION, strict: unknown
  fields are errors, since a real API server would silently drop them);
- Gantry's policy: kinds Gantry manages, CPU and memory requests and limits on every container,
  no Secret values in a manifest.

Every problem names its document (1-based), its path (`spec.template.spec.containers[0].resources`)
and its line when the path can be found in the YAML, so the author can go straight to it.
"""
import re
import string

import kubernetes_validate
import yaml

from portal import safe_yaml
from portal.kube import KINDS

from .manifest_render import RenderError, template_nodes
from .manifest_render import render as render_safely

PLACEHOLDERS = ("image", "version", "service", "environment", "namespace", "replicas", "color")
KUBERNETES_VERSION = "1.30"
PROTECTED_TIERS = ("staging", "production")

# Where pod specs live in the kinds that hold them.
POD_SPEC_PATHS = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
CONTAINER_LISTS = ("initContainers", "containers")
REQUIRED_RESOURCES = (("requests", "cpu"), ("requests", "memory"), ("limits", "cpu"), ("limits", "memory"))


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
    """Fill placeholders into the parsed template (manifest_render): a value never changes its structure."""

    try:
        return render_safely(text, values)
    except RenderError as exc:
        raise ManifestError([{"line": exc.line, "column": exc.column, "message": exc.message}]) from None


# --- parsing --------------------------------------------------------------------------------


def _yaml_error(exc):
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    message = f"not valid YAML: {problem}" + (f" ({context})" if context else "")
    return ManifestError([{
        "line": mark.line + 1 if mark else None,
        "column": mark.column + 1 if mark else None,
        "message": message,
    }])


def _parse_with_lines(text):
    """The non-empty documents of YAML text, each with ``{path tuple: line}`` from its node tree."""
    documents, lines = [], []
    try:
        safe_yaml.check_limits(text)
    except safe_yaml.YamlLimitError as exc:
        raise ManifestError([{"line": exc.line, "column": exc.column, "message": exc.message}]) from None
    except yaml.YAMLError as exc:
        raise _yaml_error(exc) from None
    loader = safe_yaml.Loader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            document = loader.construct_document(node)
            if document is None:
                continue
            index = {}
            _index_lines(node, (), index)
            documents.append(document)
            lines.append(index)
    except yaml.YAMLError as exc:
        raise _yaml_error(exc) from None
    finally:
        loader.dispose()
    return documents, lines


def _index_lines(node, path, index):
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue
            child = path + (key_node.value,)
            index.setdefault(child, key_node.start_mark.line + 1)
            _index_lines(value_node, child, index)
    elif isinstance(node, yaml.SequenceNode):
        for position, item in enumerate(node.value):
            child = path + (position,)
            index.setdefault(child, item.start_mark.line + 1)
            _index_lines(item, child, index)


def parse_documents(text):
    """Parse YAML text into a list of documents; raise ManifestError with line and column."""
    return _parse_with_lines(text)[0]


def format_path(path):
    """``("spec", "containers", 0, "image")`` -> ``spec.containers[0].image``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text


def _line_for(lines, path):
    """The line of the deepest part of ``path`` that the YAML holds (the document's own keys at worst)."""
    path = tuple(path)
    while path:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return None


# --- checks ---------------------------------------------------------------------------------


_UNEXPECTED = re.compile(r"\('([^']+)'(?:, '[^']+')* (?:was|were) unexpected\)")


def _schema_problem(document):
    """The first schema error of one document, as (path tuple, message), or None."""

    try:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        path = tuple(exc.path)
        message = (exc.message or "").replace(", 'null'", "")  # every optional field is nullable: noise
        unexpected = _UNEXPECTED.search(message or "")
        if unexpected and message.startswith("Additional properties"):
            path += (unexpected.group(1),)
            message = (f"unknown field {unexpected.group(1)!r} (Kubernetes {KUBERNETES_VERSION} has no such field "
                       "here; check its spelling and indentation)")
        return path, message
    except kubernetes_validate.SchemaNotFoundError:
        return ("kind",), (f"Kubernetes {KUBERNETES_VERSION} has no kind {document.get('kind')} in apiVersion "
                           f"{document.get('apiVersion')}; check apiVersion and kind")
    except kubernetes_validate.InvalidSchemaError as exc:  # a broken bundled schema: not the author's fault
        return (), f"could not check this object against the Kubernetes schema: {exc}"
    return None


def containers_of(document):
    """``(path tuple, container)`` for every container and init container of a pod-holding object."""
    spec_path = POD_SPEC_PATHS.get(document.get("kind"))
    if spec_path is None:
        return []
    spec = document
    for key in spec_path:
        spec = spec.get(key) if isinstance(spec, dict) else None
    if not isinstance(spec, dict):
        return []
    found = []
    for field in CONTAINER_LISTS:
        containers = spec.get(field)
        if isinstance(containers, list):
            found += [(spec_path + (field, i), c) for i, c in enumerate(containers) if isinstance(c, dict)]
    return found


# LimitRange keys that fill in each resources section of a container that leaves it out.
_DEFAULT_FOR = {"requests": "default_request", "limits": "default"}


def limit_range_defaults(environment):
    """The container defaults the environment's LimitRange gives (from its template), or {}."""
    return ((getattr(environment, "guardrails", None) or {}).get("limit_range") or {}) if environment else {}


def effective_resources(container, defaults):
    """{section: {name: (value, "manifest" | "LimitRange default")}} of one container's CPU and memory."""
    resources = container.get("resources") if isinstance(container.get("resources"), dict) else {}
    found = {}
    for section, name in REQUIRED_RESOURCES:
        value = (resources.get(section) or {}).get(name) if isinstance(resources.get(section), dict) else None
        if value not in (None, ""):
            found.setdefault(section, {})[name] = (str(value), "manifest")
            continue
        default = (defaults.get(_DEFAULT_FOR[section]) or {}).get(name)
        if default not in (None, ""):
            found.setdefault(section, {})[name] = (str(default), "LimitRange default")
    return found


def _resource_problems(document, defaults=None, where=""):
    """Containers that leave a CPU or memory request or limit unset and get no default for it from the
    environment's LimitRange (`defaults`: its default / default_request, each {cpu, memory})."""
    problems = []
    for path, container in containers_of(document):
        found = effective_resources(container, defaults or {})
        missing = [f"resources.{section}.{name}" for section, name in REQUIRED_RESOURCES
                   if name not in found.get(section, {})]
        if missing:
            problems.append((path + ("resources",),
                             f"container '{container.get('name', '?')}' must set {', '.join(missing)}: Gantry requires "
                             "CPU and memory requests and limits on every container" + where))
    return problems


def resource_problems(documents, environment):
    """Resource problems of rendered documents for one environment, as sentences: what the
    environment's LimitRange (from its template) fills in counts as set."""
    defaults = limit_range_defaults(environment)
    where = (f" (environment {environment.slug} has no LimitRange defaults for them; create it from a template "
             "that sets some, or set them in the manifest)")
    problems = []
    for index, doc in enumerate(documents, start=1):
        if isinstance(doc, dict):
            for path, message in _resource_problems(doc, defaults, where):
                problems.append(f"document {index} ({doc.get('kind')} {(doc.get('metadata') or {}).get('name')}), "
                                f"{format_path(path)}: {message}")
    return problems


def _managed_kinds():
    return KINDS


def document_problems(documents, lines=None):
    """Every problem of parsed documents: structure, kinds, schema, Gantry's policy."""
    problems = []
    kinds = _managed_kinds()
    for index, doc in enumerate(documents, start=1):
        line_index = lines[index - 1] if lines else {}

        def problem(path, message, index=index, line_index=line_index):
            problems.append({"document": index, "path": format_path(path), "line": _line_for(line_index, path),
                             "message": message})

        if not isinstance(doc, dict):
            problems.append({"document": index, "path": "", "line": None,
                             "message": "each document must be a mapping (a Kubernetes object)"})
            continue
        structural = False
        for key in ("apiVersion", "kind"):
            if not isinstance(doc.get(key), str) or not doc.get(key):
                problem((key,), f"{key} is required")
                structural = True
        metadata = doc.get("metadata")
        if not isinstance(metadata, dict) or not metadata.get("name"):
            problem(("metadata", "name"), "metadata.name is required")
            structural = True
        if structural:
            continue
        if (doc["apiVersion"], doc["kind"]) not in kinds:
            known = ", ".join(f"{kind} ({version})"
                              for (version, kind), (_, namespaced) in sorted(kinds.items()) if namespaced)
            problem(("kind",), f"Gantry does not deploy {doc['kind']} objects of apiVersion {doc['apiVersion']}; "
                               f"it deploys {known}")
            continue
        if not kinds[(doc["apiVersion"], doc["kind"])][1]:
            problem(("kind",), f"a service's manifest holds namespaced objects only, not a {doc['kind']}: "
                               "Gantry creates each environment's namespace itself")
            continue
        if doc["kind"] == "Secret" and (doc.get("data") or doc.get("stringData")):
            problem(("data",) if doc.get("data") else ("stringData",),
                    "Secret values do not belong in a manifest; reference an existing Secret instead")
            continue
        schema = _schema_problem(doc)
        if schema is not None:
            problem(*schema)
        # Resources are checked per environment (resource_problems): a template's LimitRange may give defaults.
    return problems


def template_lines(text):
    """``{path tuple: line}`` per non-empty document of a template, in the template's own lines."""

    try:
        nodes = template_nodes(text, PLACEHOLDERS)
    except RenderError:
        return None
    indexes = []
    for node in nodes:
        if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null":
            continue
        index = {}
        _index_lines(node, (), index)
        indexes.append(index)
    return indexes


def check_rendered(text, lines=None):
    """Parse and check rendered manifests (real or sample values): the documents, or ManifestError.
    `lines`, when given, locates problems in the template the text was rendered from."""
    documents, rendered_lines = _parse_with_lines(text)
    if lines is None or len(lines) != len(documents):
        lines = rendered_lines
    if not documents:
        raise ManifestError([{"message": "the manifest holds no Kubernetes object"}])
    problems = document_problems(documents, lines)
    if problems:
        raise ManifestError(problems)
    return documents


def validate_manifest(text):
    """Return the parsed documents of a manifest with sample values, or raise ManifestError."""
    if not isinstance(text, str) or not text.strip():
        raise ManifestError([{"message": "manifest: required (YAML text with one or more Kubernetes objects)"}])
    problems = placeholder_problems(text)
    if problems:
        raise ManifestError(problems)
    return check_rendered(render(text, SAMPLE_VALUES), lines=template_lines(text))


# --- per-environment policy -----------------------------------------------------------------


def image_tag(image):
    """``(tag, digest)`` of an image reference; either may be None."""
    reference, _, digest = image.partition("@")
    last = reference.rsplit("/", 1)[-1]
    tag = last.split(":", 1)[1] if ":" in last else None
    return tag or None, digest or None


def environment_policy_problems(rendered_documents, environment):
    """What the environment's tier forbids in rendered manifests, as sentences (empty: all fine).

    Every container has CPU and memory requests and limits, set in the manifest or by the
    environment's LimitRange defaults. Staging and production run only pinned images: a tag
    other than ``latest``, or a digest.
    """
    problems = resource_problems(rendered_documents, environment)
    if environment.tier not in PROTECTED_TIERS:
        return problems
    for index, doc in enumerate(rendered_documents, start=1):
        if not isinstance(doc, dict):
            continue
        name = f"{doc.get('kind')} {(doc.get('metadata') or {}).get('name')}"
        for path, container in containers_of(doc):
            image = container.get("image")
            if not isinstance(image, str) or not image:
                continue
            tag, digest = image_tag(image)
            if digest:
                continue
            if tag is None:
                why = "has no tag and no digest"
            elif tag == "latest":
                why = "uses the tag 'latest'"
            else:
                continue
            problems.append(f"document {index} ({name}), {format_path(path)}: image '{image}' {why}; {environment.tier} "
                            f"environments such as {environment.slug} run only pinned images: register a release with "
                            "a version tag or a digest (e.g. registry.example.com/web:1.4.2 or @sha256:...)")
    return problems


def blue_green_pair(documents):
    """The (Deployment, Service) documents of a blue-green manifest, or None unless there is exactly
    one of each (API.md: Gantry derives both colours from that one Deployment)."""
    deployments = [d for d in documents if isinstance(d, dict) and d.get("kind") == "Deployment"]
    services = [d for d in documents if isinstance(d, dict) and d.get("kind") == "Service"]
    if len(deployments) != 1 or len(services) != 1:
        return None
    return deployments[0], services[0]
