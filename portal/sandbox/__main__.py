"""``python -m portal.sandbox --port 8001 [--token T]``: a sandbox cluster without Django."""

import argparse
import sys

from .server import main

parser = argparse.ArgumentParser(prog="python -m portal.sandbox", description=__doc__)
parser.add_argument("--port", type=int, default=0)
parser.add_argument("--token", default=None)
parser.add_argument("--rollout-delay", type=float, default=0.2)
arguments = parser.parse_args()
sys.exit(main(arguments.port, arguments.token, arguments.rollout_delay, announce=lambda line: print(line, flush=True)))
