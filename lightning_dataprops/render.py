"""Deprecated: moved to :mod:`lightning_dataprops.findings.render` (kept for one release).

``docs/loggers.md`` documented ``lightning_dataprops.render.render(finding)``; import it from
:mod:`lightning_dataprops.findings.render` instead.
"""

from __future__ import annotations

import warnings

from lightning_dataprops.findings.render import *  # noqa: F403
from lightning_dataprops.findings.render import __all__ as __all__

warnings.warn(
    "lightning_dataprops.render moved to lightning_dataprops.findings.render; the old path "
    "goes away in the next release.",
    DeprecationWarning,
    stacklevel=2,
)
