"""Run a command, printing a step title and each output line with the elapsed time, and keep its exit code.

    python3 tools/timed.py "Installing packages" -- pip install -r requirements.lock

`make demo` uses it so the first install (about 80 s) shows what it is doing instead of sitting silent.
Standard library only: it runs before the virtualenv exists.
"""
import subprocess
import sys
import time


def main(argv):
    if "--" not in argv:
        print("usage: timed.py TITLE -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    split = argv.index("--")
    title, command = " ".join(argv[:split]), argv[split + 1:]
    start = time.monotonic()
    print(f"[{0:6.1f}s] {title}…", flush=True)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    for line in process.stdout:
        print(f"[{time.monotonic() - start:6.1f}s]   {line.rstrip()}", flush=True)
    code = process.wait()
    verdict = "done" if code == 0 else f"FAILED (exit {code})"
    print(f"[{time.monotonic() - start:6.1f}s] {title}: {verdict}", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
