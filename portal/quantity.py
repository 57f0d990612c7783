"""Kubernetes resource quantities ("250m", "512Mi", "1.5", "2Gi") as exact numbers, and back.

Used by the self-service guardrails (bounds of a requested quota) and by the sandbox cluster
(ResourceQuota accounting, LimitRange defaults), so both read "500m" the way a real API
server does. Numbers are ``fractions.Fraction`` so that "0.1" + "0.2" is exactly "300m".
"""
from __future__ import annotations

import re
from fractions import Fraction

_SUFFIXES = {
    "": Fraction(1),
    "m": Fraction(1, 1000),
    "k": Fraction(10**3), "M": Fraction(10**6), "G": Fraction(10**9), "T": Fraction(10**12), "P": Fraction(10**15),
    "E": Fraction(10**18),
    "Ki": Fraction(2**10), "Mi": Fraction(2**20), "Gi": Fraction(2**30), "Ti": Fraction(2**40), "Pi": Fraction(2**50),
    "Ei": Fraction(2**60),
}
_QUANTITY = re.compile(r"^([+]?[0-9]+(?:\.[0-9]*)?|[+]?\.[0-9]+)([eE][-+]?[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")


class QuantityError(ValueError):
    pass


def parse(value):
    """'500m' -> Fraction(1, 2); '1Gi' -> 1073741824. Raises QuantityError for anything else."""
    if isinstance(value, bool):
        raise QuantityError(f"'{value}' is not a quantity")
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
        return Fraction(str(value))
    text = str(value or "").strip()
    match = _QUANTITY.match(text)
    if not match:
        raise QuantityError(f"'{text}' is not a Kubernetes quantity (e.g. 500m, 2, 512Mi, 4Gi)")
    number, exponent, suffix = match.groups()
    result = Fraction(number) * _SUFFIXES[suffix or ""]
    if exponent:
        result *= Fraction(10) ** int(exponent[1:])
    return result


def is_quantity(value):
    try:
        parse(value)
        return True
    except QuantityError:
        return False


def format_cpu(amount):
    """CPU as the API shows it: whole cores as '2', otherwise millicores '250m'."""
    amount = Fraction(amount)
    if amount.denominator == 1:
        return str(amount.numerator)
    millis = amount * 1000
    return f"{-(-millis.numerator // millis.denominator)}m"  # rounded up, as the API rounds requests


def format_bytes(amount):
    """Memory in the largest binary unit that keeps it whole: '512Mi', '8Gi', else bytes."""
    amount = Fraction(amount)
    for suffix in ("Ei", "Pi", "Ti", "Gi", "Mi", "Ki"):
        unit = _SUFFIXES[suffix]
        if amount and (amount / unit).denominator == 1:
            return f"{amount / unit}{suffix}"
    return str(-(-amount.numerator // amount.denominator))


def format_like(key, amount):
    """A total for a quota key ('requests.memory', 'limits.cpu', 'pods') in the usual notation."""
    if key.endswith("memory") or key.endswith("storage"):
        return format_bytes(amount)
    if key.endswith("cpu"):
        return format_cpu(amount)
    amount = Fraction(amount)
    return str(amount.numerator) if amount.denominator == 1 else format_cpu(amount)
