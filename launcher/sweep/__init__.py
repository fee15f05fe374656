"""`launch sweep`: Ray Tune sweeps of trainlib runs, tracked as MLflow parent/child runs.

Modules: yaml_lines (YAML with line numbers), schema (the sweep file, validated before Ray
starts), space (distributions -> Tune / Optuna), schedulers (trial schedulers), trainable
(one trial = one `trainlib.run`), tracking (the MLflow parent run, summaries), console,
engine (Ray and the Tuner), cmd (the click command). Only cmd is imported by the CLI;
ray, mlflow and torch are imported inside functions.
"""
