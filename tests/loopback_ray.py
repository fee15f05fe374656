"""`ray start` (same arguments) whose node keeps the node IP 127.0.0.1 it was given.

On Linux `ray start --node-ip-address 127.0.0.1` swaps the loopback address for the machine's
network address; Ray's single-machine switch that keeps it (RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0)
also refuses worker nodes. The tests' multi-node clusters stay on the loopback address, so this
CLI keeps the address as given; everything else is Ray's own `ray start`.

    python -m tests.loopback_ray start --head --node-ip-address 127.0.0.1 ...
"""
from __future__ import annotations

import sys

from ray._private import services
from ray.scripts.scripts import main

LOOPBACK = "127.0.0.1"


def keep_loopback(host: str) -> str:
    return host


def loopback_node_ip(address: str | None = None) -> str:
    return LOOPBACK


if __name__ == "__main__":
    services.resolve_ip_for_localhost = keep_loopback
    services.get_node_ip_address = loopback_node_ip
    sys.exit(main())
