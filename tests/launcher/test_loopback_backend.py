"""The single-machine DDP backend: what Ray Train's controller loads of it imports no torch, and its
workers' steps form a process group through a store on 127.0.0.1."""
from __future__ import annotations

import pickle
import subprocess
import sys

from launcher.cluster import loopback_backend
from launcher.cluster.loopback_backend import LoopbackTorchConfig, join_group, serve_store

CONTROLLER_SIDE = """
import pickle, sys
config = pickle.loads(bytes.fromhex(sys.argv[1]))
backend = config.backend_cls()
print(config.backend, config.framework.value, backend.has_replica_groups, backend.share_cuda_visible_devices,
      "torch" in sys.modules)
"""


def test_what_the_controller_unpickles_and_uses_imports_no_torch():
    """Ray's TorchConfig module imports torch: ~1.4 s of the controller's start before it started the workers."""
    config = LoopbackTorchConfig(backend="gloo", timeout_s=60)
    done = subprocess.run([sys.executable, "-c", CONTROLLER_SIDE, pickle.dumps(config).hex()], capture_output=True,
                          text=True, timeout=60, check=True)
    assert done.stdout.split() == ["gloo", "torch", "False", "True", "False"]
    assert config.to_dict() == {"backend": "gloo", "init_method": "env", "timeout_s": 60}


def test_one_rank_forms_its_group_through_a_store_on_the_loopback_address(monkeypatch):
    import torch
    import torch.distributed as dist

    for name in ("MASTER_ADDR", "MASTER_PORT", "GLOO_SOCKET_IFNAME", "NCCL_SOCKET_IFNAME"):
        monkeypatch.setenv(name, "")  # a worker's own environment: removed again after the test
    port = serve_store(1, 30)
    join_group("gloo", 0, 1, port, 30)
    try:
        assert dist.get_world_size() == 1 and dist.get_backend() == "gloo"
        summed = torch.ones(3)
        dist.all_reduce(summed)
        assert summed.tolist() == [1.0, 1.0, 1.0]
        listening = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True).stdout
        assert listening.split()[3] == f"127.0.0.1:{port}"
    finally:
        dist.destroy_process_group()
        loopback_backend._served_store.clear()
