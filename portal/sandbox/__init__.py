"""The sandbox cluster: a Kubernetes API test double served over real HTTP.

Tests and the demo point Gantry at it exactly as they would at a real cluster; see
``SandboxCluster`` for the Python API and ``server.main`` (or ``manage.py sandbox_cluster``)
for serving it in the foreground.
"""

from .server import SandboxCluster, main
from .simulator import FAULTS

__all__ = ["FAULTS", "SandboxCluster", "main"]
