"""Names vulture (the dead-code check, tests/test_dead_code.py) cannot see being used.

Each is used by something outside our code: a library that calls it by name, a field a schema
reads, a module attribute a library reads. Add a name here only with such a reason.
"""
# Ray Tune calls its Callback hooks by name, with these keyword arguments
setup, on_step_end, on_trial_start, on_trial_complete, on_trial_error, on_trial_recover, on_trial_result, on_experiment_end  # noqa
iteration  # noqa
# Ray Train calls a Backend's on_start and on_shutdown by name and reads share_cuda_visible_devices
on_start, on_shutdown, share_cuda_visible_devices  # noqa
# pydantic reads model_config and the schemas' fields (finetune.default_lr, the sweep file's distributions and schedulers)
model_config, default_lr  # noqa
normal, qnormal, fifo, asha, hyperband, median, pbt  # noqa
# a family's shared config parameters are read from the signature (trainlib.registry)
warmup_epochs  # noqa
# every registry exposes list_*() (DEVELOPERS.md: the family's public API; the tests call each)
list_inits, list_losses, list_models, list_optimizers, list_schedulers, list_transforms, list_visuals  # noqa
# the sweep's trials table: fields written to trials.csv / trials.json with dataclasses.asdict
node_ip, gpu_ids  # noqa
# module attributes read by torch and Ray (set in trainlib.precision and trainlib.compat)
allow_tf32, benchmark, ENABLE_RAY_CLUSTER, resolve_ip_for_localhost  # noqa
# called by name from the preflight's probe process (launcher.cluster.reachability.PROBE)
ray_alive_node_ips  # noqa
# a signal handler's signature
frame  # noqa
