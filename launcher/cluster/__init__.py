"""Ray plumbing: a local or loopback Ray (`local_ray`, also `python -m launcher.cluster.local_ray start`),
DDP jobs on Ray Train (`ddp`, `ddp_trainer`, `epoch_relay`, `job_failure`), Ray's logs and leftover
processes (`ray_logs`, `ray_reaper`) and the checks before anything starts (`reachability`)."""
