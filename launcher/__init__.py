"""launch: the command line. It parses, validates and dispatches; heavy imports happen inside commands."""
