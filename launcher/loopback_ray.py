"""`ray start` (same arguments) whose node keeps the node IP 127.0.0.1 it was given: a whole
cluster on one machine, every Ray service on the loopback address (the README's worked example,
and the test suite's clusters).

On Linux `ray start --node-ip-address 127.0.0.1` swaps the loopback address for the machine's
network address; Ray's single-machine switch that keeps it (RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0)
also refuses worker nodes. This CLI keeps the address as given; everything else is Ray's own
`ray start` (on real machines use `ray start` itself, with their addresses).

    python -m launcher.loopback_ray start --head --node-ip-address 127.0.0.1 ...
"""
from __future__ import annotations

import sys

from launcher.local_ray import LOOPBACK


def main() -> int:
    from ray.scripts.scripts import main as ray_cli

    from trainlib.compat import pin_ray_node_ip

    pin_ray_node_ip(LOOPBACK)
    return ray_cli()


if __name__ == "__main__":
    sys.exit(main())
