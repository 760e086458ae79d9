"""Subcommands of the ``synthsae`` command line; each module has ``add_parser`` and ``run``."""
