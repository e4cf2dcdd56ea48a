"""One module per command of `python -m naapdb`: each has `add_arguments(parser)`
and `run(args) -> int`, a plain function returning the exit code."""
