"""The `launch` commands, one click command per module (`launcher/cli.py` adds them; `launch sweep`
lives in `launcher/sweep/cmd.py`). Each validates at the edge and imports the heavy parts lazily."""
