"""trainlib: the training library behind `launch` (usable without Ray or MLflow).

The entry point is `from trainlib.run import run`; a config is checked with
`trainlib.config.validate`.
"""
