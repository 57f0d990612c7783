"""Filling a manifest template's placeholders without letting a value change its structure.

Text substitution into YAML lets a value carry YAML: a release version of
``2"`` + newline + ``---`` + a Service document added an object nobody approved. Here the
template is parsed first, with each placeholder standing in as an opaque token, and values
are put into the parsed scalars; the result is then written out by the YAML emitter, which
quotes whatever needs quoting. A value is therefore always exactly one scalar, whatever it
holds. As a last guard, the rendered text is parsed again and must hold the same documents,
kinds and names as the template.

For ordinary values (all that the release formats allow) the plain text substitution gives the
very same objects; then that text is returned, so the author's layout, comments and line
numbers survive in previews, diffs and error messages. Whenever the two differ, the value was
trying to be YAML, and the structure-safe rendering is the one returned.

A plain (unquoted) scalar whose type YAML decided (``replicas: ${replicas}``) is typed again
after filling, as text substitution would have done, so ``1`` stays a number; quoted scalars
and scalars with an explicit tag stay as written.
"""
import re
import string

import yaml

from portal import safe_yaml

_TOKEN = "GaNtRyPh{}HpYrTnAg"
_TOKEN_PATTERN = re.compile(_TOKEN.format("([a-z]+)"))
_STR, _MERGE, _VALUE = "tag:yaml.org,2002:str", "tag:yaml.org,2002:merge", "tag:yaml.org,2002:value"


class RenderError(ValueError):
    """The template cannot be rendered (a syntax error, a broken limit, or a changed structure)."""

    def __init__(self, message, line=None, column=None):
        self.message, self.line, self.column = message, line, column
        super().__init__(message)


def _tokenize(text, names):
    """Template text with each ``${name}``/``$name`` replaced by a plain-safe token and ``$$`` by ``$``."""
    if _TOKEN_PATTERN.search(text):
        raise RenderError("the manifest contains Gantry's internal placeholder marker; remove it")

    def replace(match):
        if match.group("escaped") is not None:
            return "$"
        name = match.group("named") or match.group("braced")
        if name is None or name not in names:
            line = text.count("\n", 0, match.start()) + 1
            raise RenderError(f"unknown or malformed placeholder {match.group()!r}", line)
        return _TOKEN.format(name)

    return string.Template.pattern.sub(replace, text)


def _fill(value, values):
    return _TOKEN_PATTERN.sub(lambda m: values[m.group(1)], value)


def _fill_node(node, values, resolver):
    if isinstance(node, yaml.ScalarNode):
        if _TOKEN_PATTERN.search(node.value):
            implicit = not node.style and node.tag == resolver.resolve(yaml.ScalarNode, node.value, (True, False))
            node.value = _fill(node.value, values)
            if implicit:
                tag = resolver.resolve(yaml.ScalarNode, node.value, (True, False))
                node.tag = _STR if tag in (_MERGE, _VALUE) else tag
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _fill_node(item, values, resolver)
    elif isinstance(node, yaml.MappingNode):
        for key, item in node.value:
            _fill_node(key, values, resolver)
            _fill_node(item, values, resolver)


def _compose_all(text):
    """The node trees of every document of `text`, within safe_yaml's limits."""
    try:
        safe_yaml.check_limits(text)
        loader = safe_yaml.Loader(text)
        try:
            nodes = []
            while loader.check_node():
                nodes.append(loader.get_node())
            return nodes
        finally:
            loader.dispose()
    except safe_yaml.YamlLimitError as exc:
        raise RenderError(exc.message, exc.line, exc.column) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise RenderError(f"not valid YAML: {safe_yaml.error_message(exc)}",
                          mark.line + 1 if mark else None, mark.column + 1 if mark else None) from None


def _identities(documents):
    """(kind, metadata.name) of each non-empty document."""
    found = []
    for doc in documents:
        if doc is None:
            continue
        if isinstance(doc, dict):
            metadata = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
            found.append((doc.get("kind"), metadata.get("name")))
        else:
            found.append((type(doc).__name__, None))
    return found


def template_nodes(text, names):
    """The node trees of the template's documents (placeholders as tokens): lines and columns are the
    template's own, so problems found in the rendered result can point at the author's text."""
    return _compose_all(_tokenize(text, set(names)))


class _Dumper(yaml.SafeDumper):
    """Indents a list under its key, as Kubernetes manifests are usually written."""

    def increase_indent(self, flow=False, indentless=False):
        return super().increase_indent(flow, False)


def _substituted_text(text, values):
    try:
        return string.Template(text).substitute(values)
    except (KeyError, ValueError):
        return None


def _documents_of(text):
    """The documents of `text`, or None when it is not YAML or breaks a limit."""
    try:
        safe_yaml.check_limits(text)
        return list(yaml.load_all(text, Loader=safe_yaml.Loader))  # safe_yaml.Loader: the safe loader
    except (ValueError, yaml.YAMLError):
        return None


def render(text, values):
    """The template `text` with its placeholders filled from `values` ({name: value}), as YAML text."""
    values = {name: str(value) for name, value in values.items()}
    nodes = _compose_all(_tokenize(text, set(values)))
    resolver = yaml.resolver.Resolver()
    for node in nodes:
        _fill_node(node, values, resolver)
    expected = [yaml.SafeLoader("").construct_document(node) for node in nodes]
    substituted = _substituted_text(text, values)
    if substituted is not None and _documents_of(substituted) == expected:
        return substituted
    rendered = yaml.serialize_all(nodes, Dumper=_Dumper, explicit_start=True, allow_unicode=True, width=100000)
    try:
        documents = list(yaml.load_all(rendered, Loader=safe_yaml.Loader))  # safe_yaml.Loader: the safe loader
    except yaml.YAMLError as exc:  # the emitter wrote something it cannot read back: never apply it
        raise RenderError(f"the rendered manifest is not valid YAML ({exc})") from None
    if _identities(documents) != _identities(expected) or documents != expected:
        raise RenderError("filling in the placeholders changed the manifest's documents, kinds or names; "
                          "check the release's version and image")
    return rendered
