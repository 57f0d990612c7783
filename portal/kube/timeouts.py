"""How long Gantry waits for a cluster, and how many connections it keeps to one."""
import os

CONNECT_TIMEOUT = 5
READ_TIMEOUT = 30
TIMEOUT = (CONNECT_TIMEOUT, READ_TIMEOUT)
POOL_SIZE = int(os.environ.get("GANTRY_KUBE_POOL_SIZE", "64"))  # kept-alive connections per cluster
