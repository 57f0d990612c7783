"""YAML written by users (manifests, kubeconfigs), parsed within limits.

PyYAML's safe loader builds no Python objects, but it still expands aliases (a 500-byte
"billion laughs" takes gigabytes), recurses once per nesting level (RecursionError past a few
hundred) and happily reads tens of thousands of documents. Before anything is composed, the
event stream is scanned once (libyaml when present: milliseconds for the largest text allowed)
and the text is refused when it holds an alias, too many documents, too deep a nesting or too
many bytes. Anchors alone are harmless and allowed; nothing can refer to them.
"""
import yaml

from portal.validation import unsafe_character

MAX_BYTES = 512 * 1024
MAX_DOCUMENTS = 100
MAX_DEPTH = 40

Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class YamlLimitError(ValueError):
    """The text breaks one of the limits; `line`/`column` (1-based) point at it when known."""

    def __init__(self, message, line=None, column=None):
        self.message, self.line, self.column = message, line, column
        super().__init__(message if line is None else f"line {line}, column {column}: {message}")


def _where(event):
    mark = getattr(event, "start_mark", None)
    return (mark.line + 1, mark.column + 1) if mark is not None else (None, None)


def check_limits(text, *, max_bytes=MAX_BYTES, max_documents=MAX_DOCUMENTS, max_depth=MAX_DEPTH):
    """Raise YamlLimitError when `text` breaks a limit, yaml.YAMLError when it is not YAML at all."""
    if not isinstance(text, str):
        raise YamlLimitError("YAML must be text")
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise YamlLimitError(f"{size} bytes of YAML is more than the {max_bytes} allowed")
    bad = unsafe_character(text, allow_newlines=True)
    if bad:
        raise YamlLimitError(f"{bad} is not allowed in YAML")
    depth = documents = 0
    for event in yaml.parse(text, Loader=Loader):
        if isinstance(event, yaml.AliasEvent):
            line, column = _where(event)
            raise YamlLimitError(f"YAML aliases (*{event.anchor}) are not allowed; write the value out in full",
                                 line, column)
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > max_depth:
                line, column = _where(event)
                raise YamlLimitError(f"nesting deeper than {max_depth} levels is not allowed", line, column)
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1
        elif isinstance(event, yaml.DocumentStartEvent):
            documents += 1
            if documents > max_documents:
                line, column = _where(event)
                raise YamlLimitError(f"more than {max_documents} YAML documents are not allowed", line, column)


def safe_load(text, **limits):
    """One document, like yaml.safe_load, after check_limits."""
    check_limits(text, **limits)
    # Loader is the safe loader (CSafeLoader or SafeLoader); bandit cannot see it through the name.
    return yaml.load(text, Loader=Loader)  # nosec B506


def error_message(exc):
    """A sentence for a YAMLError or YamlLimitError, with line and column when known."""
    if isinstance(exc, YamlLimitError):
        return str(exc)
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"{where}{problem}"
