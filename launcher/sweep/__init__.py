"""`launch sweep`: Ray Tune sweeps of trainlib runs, tracked as MLflow parent/child runs.

Modules: schema (the sweep file's schema; read by trainlib.yaml_reader), loading (the base
config and the space checked against the registries, before Ray starts), space
(distributions -> Tune / Optuna), schedulers (Tune's trial schedulers and search algorithms),
judging (the epochs at which a scheduler judges trials), trainable (one trial = one
`trainlib.run.run`, or a Ray Train job with workers > 1), callbacks (Tune callbacks: the live
console, stop reasons), tracking (the MLflow parent run, the trials read back from MLflow),
summary (trials.csv/json, HParams and the best config, on the parent run), pictures (the
comparison pictures), console (what a sweep prints), workspace (the sweep folder and its saved
state), cluster (joining or starting Ray, fitting trials to its nodes), tuner (Tune's Tuner: run
or resume), cmd (the click command). Only cmd is imported by the CLI; ray, mlflow and torch are
imported inside functions (callbacks, which subclasses Tune's Callback, is imported only once
Ray runs).
"""
