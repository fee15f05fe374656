"""The doctor (`launch diagnose`), after training: the report, the probes (short experiments on the
run's config) and the verdict. The checks that run during training live in `trainlib.live_checks`."""
