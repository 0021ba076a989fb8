"""Reproduce Konz & Mazurowski (ICLR 2024) on a CPU: ``python -m examples.reproduce_paper``.

Modules by concern: ``tasks`` (configuration and data), ``model`` (the LightningModule and its
Trainer), ``measure`` (every measurement, as Lightning callbacks), ``experiment`` (one run, the
CSV), ``stats`` and ``analysis`` (the numbers), ``figures``, ``verdicts`` and ``report`` (the
page), ``main`` (the command line).
"""
