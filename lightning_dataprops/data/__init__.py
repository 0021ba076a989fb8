"""The data edge: a seeded, stratified :class:`Sample` of any data source, and file loaders.

- :mod:`~lightning_dataprops.data.items`: reading one item (input, target);
- :mod:`~lightning_dataprops.data.selection`: choosing the sample;
- :mod:`~lightning_dataprops.data.sampling`: dispatch on the source type (:func:`sample_dataset`);
- :mod:`~lightning_dataprops.data.loaders`: ``.npz``, image folders, Fashion-MNIST, digits;
- :mod:`~lightning_dataprops.data.class_names`: a dataset's class names, where it gives them;
- :mod:`~lightning_dataprops.data.find_normalize`: the ``Normalize(mean, std)`` a Dataset
  applies.
"""

from lightning_dataprops.data.class_names import class_names_of
from lightning_dataprops.data.find_normalize import UnknownNormalizationWarning, find_normalize
from lightning_dataprops.data.items import INPUT_KEYS, TARGET_KEYS, UnknownTargetKeyWarning
from lightning_dataprops.data.loaders import (
    LoadedData,
    load_digits_data,
    load_fashion_mnist,
    load_image_folder,
    load_npz,
    load_source,
)
from lightning_dataprops.data.sampling import (
    Sample,
    StreamTruncatedWarning,
    read_first_item,
    sample_dataset,
)

__all__ = [
    "INPUT_KEYS",
    "TARGET_KEYS",
    "LoadedData",
    "Sample",
    "StreamTruncatedWarning",
    "UnknownNormalizationWarning",
    "UnknownTargetKeyWarning",
    "class_names_of",
    "find_normalize",
    "load_digits_data",
    "load_fashion_mnist",
    "load_image_folder",
    "load_npz",
    "load_source",
    "read_first_item",
    "sample_dataset",
]
