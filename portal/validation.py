"""Small validators shared by services: each returns the clean value or appends a message."""
import re
import zoneinfo
from datetime import UTC, datetime, time, timedelta

from django.utils.dateparse import parse_date, parse_datetime

DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")  # \Z: "$" would let "web\n" through
RESERVED_NAMES = {"new", "edit", "delete", "export", "request"}  # words the pages use in their URLs


def check_dns_label(value, field, errors, max_length=63):
    if not isinstance(value, str) or not value:
        errors.append(f"{field}: required")
        return None
    if len(value) > max_length or not DNS_LABEL.match(value):
        errors.append(
            f"{field}: '{shown(value)}' is not valid; use lowercase letters, digits and '-', starting and ending "
            f"with a letter or digit, at most {max_length} characters (e.g. 'team-a-dev')"
        )
        return None
    if value in RESERVED_NAMES:
        errors.append(f"{field}: '{value}' is reserved; choose another name")
        return None
    return value


def check_text(value, field, errors, *, required=True, max_length=200, multiline=None):
    """Stripped text of at most `max_length` characters, without control, bidirectional-override or
    (single-line) invisible characters. `multiline` defaults to True for texts longer than 200."""
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            errors.append(f"{field}: required")
        return ""
    if not isinstance(value, str):
        errors.append(f"{field}: must be text")
        return None
    if multiline is None:
        multiline = max_length > 200
    if check_safe_text(value, field, errors, allow_newlines=multiline) is None:
        return None
    value = value.strip()
    if len(value) > max_length:
        errors.append(f"{field}: at most {max_length} characters (got {len(value)})")
        return None
    return value


def check_timezone(value, field, errors):
    if not isinstance(value, str) or not value:
        errors.append(f"{field}: required (an IANA time zone such as 'Asia/Seoul' or 'UTC')")
        return None
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        errors.append(f"{field}: unknown time zone '{value}' (use an IANA name such as 'Asia/Seoul' or 'Europe/Berlin')")
        return None
    return value


def slugify_name(name):
    slug = re.sub(r"[^a-z0-9]+", "-", (name or "").lower()).strip("-")
    return slug[:63].strip("-")


# --- characters that never belong in what people type -------------------------------------------
# NUL and other C0/C1 controls (PostgreSQL refuses NUL outright), unpaired UTF-16 surrogates (no
# encoding can store them), bidirectional overrides/isolates ("Trojan Source": text that reads
# differently from what it is) and invisible characters (two names that look the same).
_CONTROL = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
_SURROGATE = "\ud800-\udfff"
_BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_INVISIBLE = "\u00ad\u034f\u180e\u200b-\u200d\u2060-\u2064\ufeff"
_UNSAFE_TEXT = re.compile(f"[{_CONTROL}{_SURROGATE}{_BIDI}]")
_UNSAFE_LINE = re.compile(f"[\t\n\r{_CONTROL}{_SURROGATE}{_BIDI}{_INVISIBLE}]")


def unsafe_character(value, *, allow_newlines=False):
    """A description of the first character of `value` that Gantry refuses, or None.

    With `allow_newlines` (manifests, notes, comments), tabs and line breaks pass and invisible
    characters such as a zero-width joiner (emoji) are allowed; without (names, versions,
    filters), the value must be one visible line.
    """
    if not isinstance(value, str):
        return None
    match = (_UNSAFE_TEXT if allow_newlines else _UNSAFE_LINE).search(value)
    if match is None:
        return None
    char = match.group()
    code = f"U+{ord(char):04X}"
    if char == "\x00":
        return "a NUL character (\\x00)"
    if "\ud800" <= char <= "\udfff":
        return f"an unpaired surrogate ({code})"
    if char in "\t\n\r" or ord(char) < 0x20 or 0x7f <= ord(char) <= 0x9f:
        return f"a control character ({code})" if char not in "\t\n\r" else "a tab or line break"
    if re.match(f"[{_BIDI}]", char):
        return f"a bidirectional-text control character ({code})"
    return f"an invisible character ({code})"


def check_safe_text(value, field, errors, *, allow_newlines=False):
    """Append an error and return None when `value` holds a character unsafe_character refuses."""
    bad = unsafe_character(value, allow_newlines=allow_newlines)
    if bad:
        errors.append(f"{field}: holds {bad}; remove it")
        return None
    return value


# --- release fields ---------------------------------------------------------------------------
# `\Z`, never `$`: `$` also matches before a final newline, which would let "1.0\n" through.
VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}\Z")
GIT_SHA = re.compile(r"[0-9a-f]{7,40}\Z")
# An OCI image reference: [registry[:port]/]path[:tag][@algo:digest]
IMAGE_REFERENCE = re.compile(
    r"(?:(?P<registry>(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))*"
    r"(?::[0-9]+)?)/)?"
    r"(?P<path>[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?"
    r"(?:@(?P<digest>[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}))?\Z"
)


def check_version(value, errors, field="version"):
    if not isinstance(value, str) or not value:
        errors.append(f"{field}: required (e.g. 1.4.2)")
        return None
    if not VERSION.match(value):
        errors.append(f"{field}: '{shown(value)}' is not a version: use one line of letters, digits and . _ + -, "
                      "starting with a letter or digit, at most 128 characters (e.g. 1.4.2 or 2026.11.30+build.7)")
        return None
    return value


def check_git_sha(value, errors, field="git_sha"):
    if value in (None, ""):
        return ""
    if not isinstance(value, str) or not GIT_SHA.match(value):
        errors.append(f"{field}: '{shown(value)}' must be 7 to 40 lowercase hex characters")
        return None
    return value


def check_image_reference(value, errors, field="image"):
    if not isinstance(value, str) or not value:
        errors.append(f"{field}: required (an OCI reference such as registry.example.com/web:1.4.2@sha256:...)")
        return None
    if len(value) > 512 or not IMAGE_REFERENCE.match(value):
        errors.append(f"{field}: '{shown(value)}' is not a valid OCI image reference "
                      "(expected [registry/]name[:tag][@sha256:digest], lowercase name)")
        return None
    return value


def shown(value, limit=80):
    """A refused value, safe to echo: one line, printable, short."""
    text = value if isinstance(value, str) else repr(value)
    text = _UNSAFE_LINE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    return text[:limit] + ("..." if len(text) > limit else "")


def parse_moment(name, text, *, error, default=None, end_of_day=False, naive_is_utc=False):
    """A moment a user gave (a filter, a report's period): an ISO 8601 time, or a date (its start, or
    with `end_of_day` the next day's start, UTC); `default` when blank. A time without a zone is
    refused, or read as UTC with `naive_is_utc`. Raises `error` (the caller's exception class) naming
    the field `name`."""
    text = (text or "").strip()
    if not text:
        return default
    try:
        day = parse_date(text) if len(text) == 10 else None
        moment = parse_datetime(text) if day is None else None
    except ValueError:
        raise error(f"{name}: '{text}' is not a real date") from None
    if moment is None:
        if day is None:
            raise error(f"{name}: '{text}' is not a date (2026-11-21) or an ISO 8601 time (2026-11-21T03:00:00+09:00)")
        moment = datetime.combine(day, time.min, tzinfo=UTC)
        if end_of_day:
            moment = moment + timedelta(days=1)
    if moment.tzinfo is None:
        if not naive_is_utc:
            raise error(f"{name}: give a time zone offset (e.g. +09:00 or Z)")
        moment = moment.replace(tzinfo=UTC)
    return moment


MOST_ROWS = 500


def list_limit(limit):
    """How many rows an API list gives for `?limit=`: at least 1, at most MOST_ROWS."""
    return max(1, min(limit, MOST_ROWS))
