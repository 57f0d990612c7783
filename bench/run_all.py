"""Run every benchmark in this folder (`bench_*.py`), one subprocess each, one after another.

    .venv/bin/python bench/run_all.py [name ...]     # e.g. run_all.py pages approvals

Each script prints its own figures; this prints a line per script with its exit code and time,
and exits non-zero when any script failed. Scripts run in name order; they never run at once,
since they share (and wipe) the benchmark database.
"""
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def scripts(selected):
    found = sorted(HERE.glob("bench_*.py"))
    if selected:
        wanted = {name.removeprefix("bench_").removesuffix(".py") for name in selected}
        unknown = wanted - {path.stem.removeprefix("bench_") for path in found}
        if unknown:
            raise SystemExit(f"run_all: no benchmark named {', '.join(sorted(unknown))} in {HERE}")
        found = [path for path in found if path.stem.removeprefix("bench_") in wanted]
    return found


def main(argv):
    results = []
    for path in scripts(argv):
        print(f"\n==================== {path.name} ====================", flush=True)
        started = time.perf_counter()
        code = subprocess.call([sys.executable, str(path)], cwd=HERE.parent,
                               env=dict(os.environ, PYTHONUNBUFFERED="1"))  # figures and progress in order
        results.append((path.name, code, time.perf_counter() - started))
    print("\n==================== summary ====================")
    for name, code, seconds in results:
        print(f"{name:<24} {'ok' if code == 0 else f'FAILED (exit {code})':<18} {seconds:6.0f} s")
    print(f"{'total':<24} {'':<18} {sum(s for _, _, s in results):6.0f} s")
    return 1 if any(code != 0 for _, code, _ in results) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
