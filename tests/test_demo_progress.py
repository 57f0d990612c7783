"""`make demo` says what it is doing while it installs and starts: steps with the elapsed time."""
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_timed_prints_each_line_with_the_elapsed_time_and_keeps_the_exit_code():
    result = subprocess.run([sys.executable, "tools/timed.py", "Installing", "--", sys.executable, "-c",
                             "print('Collecting django'); raise SystemExit(3)"],
                            check=False, cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 3
    lines = result.stdout.splitlines()
    assert re.fullmatch(r"\[\s*\d+\.\ds\] Installing…", lines[0])
    assert re.fullmatch(r"\[\s*\d+\.\ds\]   Collecting django", lines[1])
    assert re.fullmatch(r"\[\s*\d+\.\ds\] Installing: FAILED \(exit 3\)", lines[-1])


def test_the_makefile_installs_without_quiet_and_through_timed():
    makefile = (ROOT / "Makefile").read_text()
    install = makefile[makefile.index("$(STAMP): requirements.lock"):makefile.index("install: $(STAMP)")]
    assert "--quiet" not in install and "tools/timed.py" in install
