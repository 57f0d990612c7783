"""Small validators shared by services: each returns the clean value or appends a message."""
import re
import zoneinfo

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
RESERVED_NAMES = {"new", "edit", "delete", "export", "request"}  # words the pages use in their URLs


def check_dns_label(value, field, errors, max_length=63):
    if not isinstance(value, str) or not value:
        errors.append(f"{field}: required")
        return None
    if len(value) > max_length or not DNS_LABEL.match(value):
        errors.append(
            f"{field}: '{value}' is not valid; use lowercase letters, digits and '-', starting and ending "
            f"with a letter or digit, at most {max_length} characters (e.g. 'team-a-dev')"
        )
        return None
    if value in RESERVED_NAMES:
        errors.append(f"{field}: '{value}' is reserved; choose another name")
        return None
    return value


def check_text(value, field, errors, *, required=True, max_length=200):
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            errors.append(f"{field}: required")
        return ""
    if not isinstance(value, str):
        errors.append(f"{field}: must be text")
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
