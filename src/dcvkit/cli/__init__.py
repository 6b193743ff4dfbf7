"""The ``dcv`` command line: argument parsing only; every subcommand calls one library function."""
