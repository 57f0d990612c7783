"""No product module grows past 450 lines: one that does is doing more than one job and is split
into modules named for each (docs/architecture.md). Migrations and tests do not count."""
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ("portal", "deployments", "environments")
MAX_LINES = 450


def product_modules():
    for package in PRODUCT:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" not in path.parts:
                yield path


def line_count(path):
    with path.open(encoding="utf-8") as handle:
        return sum(1 for _ in handle)


def test_the_check_reads_the_product_code():
    modules = {str(path.relative_to(ROOT)) for path in product_modules()}
    assert {"portal/kube/objects.py", "deployments/actions.py", "environments/lifecycle.py"} <= modules
    assert not any("/migrations/" in module for module in modules)


def test_no_product_module_is_over_450_lines():
    too_long = []
    for path in product_modules():
        name = str(path.relative_to(ROOT))
        lines = line_count(path)
        if lines > MAX_LINES:
            too_long.append(f"{name}: {lines} lines")
    assert not too_long, (f"split these into modules of at most {MAX_LINES} lines, each named for one job: "
                          + "; ".join(too_long))
