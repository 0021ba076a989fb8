"""``python -m lightning_dataprops``: the ``dataprops`` command line."""

from lightning_dataprops.cli import main

raise SystemExit(main())
