"""`launch sweep`: Ray Tune sweeps of trainlib runs, tracked as MLflow parent/child runs.

Modules: schema (the sweep file, read by trainlib.yaml_reader and validated before Ray
starts), loading (the base config and the space checked against the registries), space (distributions -> Tune / Optuna), schedulers (trial schedulers), trainable
(one trial = one `trainlib.run`), tracking (the MLflow parent run, summaries), console,
engine (Ray and the Tuner), cmd (the click command). Only cmd is imported by the CLI;
ray, mlflow and torch are imported inside functions.
"""
