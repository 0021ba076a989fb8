"""Reproduce Konz & Mazurowski (ICLR 2024) on a CPU: ``python -m examples.reproduce_paper``.

Modules by concern: ``tasks`` (configuration and data: MNIST, Fashion-MNIST and CIFAR-10 class
pairs, PneumoniaMNIST, BreastMNIST), ``model`` (the LightningModule and its Trainer), ``measure``
(every measurement, with the product's Lightning callbacks), ``experiment`` (one run, the CSV),
``stats`` and ``analysis`` (the numbers), ``figures``, ``verdicts``, ``sections`` and ``report``
(the page), ``main`` (the command line).
"""
