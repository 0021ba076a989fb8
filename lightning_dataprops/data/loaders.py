"""Loaders for the image data used by the command line and the examples.

Every loader returns a :class:`LoadedData`: float32 inputs ``(n, C, H, W)`` scaled to ``[0, 1]``,
int64 class ids ``(n,)``, a one-line description and the source it came from.

* :func:`load_digits_data`: scikit-learn's bundled 8x8 digits (no download).
* :func:`load_npz`: MedMNIST ``.npz`` files (``train_images``, ``train_labels``, ...) or plain
  ``images`` / ``labels`` (or ``x`` / ``y``) archives.
* :func:`load_image_folder`: one subfolder per class, read with Pillow.
* :func:`load_fashion_mnist`: the IDX files of Fashion-MNIST (Debian ``dataset-fashion-mnist``).
* :func:`load_source`: picks one of the above from a path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from lightning_dataprops.data._idx import idx_file, read_idx
from lightning_dataprops.functional.targets import class_ids_from_names, normalize_targets

__all__ = [
    "LoadedData",
    "load_digits_data",
    "load_fashion_mnist",
    "load_image_folder",
    "load_npz",
    "load_source",
]

DEFAULT_FASHION_MNIST_ROOT = "/usr/share/datasets/fashion-mnist"
IMAGE_EXTENSIONS: tuple[str, ...] = (
    ".png",
    ".jpg",
    ".jpeg",
    ".bmp",
    ".gif",
    ".tif",
    ".tiff",
    ".webp",
    ".ppm",
    ".pgm",
)
_SPLIT_FOLDERS = ("train", "val", "valid", "validation", "test")
_CLASS_NAME_KEYS = ("class_names", "label_names", "classes")
FASHION_MNIST_CLASSES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
"""Fashion-MNIST's class names, by class id (Xiao et al. 2017)."""


@dataclass(frozen=True)
class LoadedData:
    """Images and labels loaded from a data source.

    Attributes:
        inputs: ``(n, C, H, W)`` float32 images scaled to ``[0, 1]``.
        targets: ``(n,)`` int64 class ids, or float regression values (``.npz`` files read with
            ``target_type="regression"``).
        description: one human-readable line (name, split, count, shape, classes).
        source: where the data came from (a path, or ``"sklearn:digits"``).
        class_names: the name of each class id, when the source says (an image folder's
            subfolders, Fashion-MNIST's classes, an ``.npz`` key ``class_names``,
            ``label_names`` or ``classes``); ``None`` otherwise.
    """

    inputs: Tensor
    targets: Tensor
    description: str
    source: str
    class_names: tuple[str, ...] | None = None


def _describe(name: str, inputs: Tensor, targets: Tensor, split: str | None = None) -> str:
    n, c, h, w = (int(s) for s in inputs.shape)
    where = f" [{split}]" if split else ""
    if targets.is_floating_point():
        return f"{name}{where}: {n} images {c}x{h}x{w}, regression targets"
    n_classes = int(torch.unique(targets).numel()) if targets.numel() else 0
    return (
        f"{name}{where}: {n} images {c}x{h}x{w}, {n_classes} class{'es' if n_classes != 1 else ''}"
    )


def _to_unit_nchw(images: np.ndarray, what: str) -> Tensor:
    """``(n, H, W)`` / ``(n, H, W, C)`` / ``(n, C, H, W)`` array -> float32 NCHW in ``[0, 1]``."""
    if images.dtype == object or images.dtype.kind not in "uifb":
        raise ValueError(f"{what}: images must be numeric, got dtype {images.dtype}.")
    if images.ndim == 3:
        images = images[:, None]
    elif images.ndim == 4:
        last, second = images.shape[3], images.shape[1]
        channels_last = last in (1, 3, 4)
        if channels_last and second in (1, 3, 4):
            # Ambiguous (e.g. (n, 4, 4, 3) or (n, 3, 4, 4)): prefer the larger spatial size.
            channels_last = min(images.shape[1:3]) >= min(images.shape[2:4])
        if channels_last:
            images = images.transpose(0, 3, 1, 2)
        elif second not in (1, 3, 4):
            raise ValueError(
                f"{what}: cannot tell the channel axis of images of shape {images.shape}; "
                "expected (n, H, W), (n, H, W, C) or (n, C, H, W) with C in 1, 3, 4."
            )
    else:
        raise ValueError(
            f"{what}: images have shape {images.shape}; expected (n, H, W), (n, H, W, C) or "
            "(n, C, H, W)."
        )
    if images.dtype == np.uint8:
        scaled = images.astype(np.float32) / 255.0
    elif images.dtype.kind == "b":
        scaled = images.astype(np.float32)
    elif images.dtype.kind in "ui":
        low, high = (int(images.min()), int(images.max())) if images.size else (0, 0)
        if low < 0:
            raise ValueError(f"{what}: integer images have negative values (min {low}).")
        if high <= 255:
            scaled = images.astype(np.float32) / 255.0
        elif images.dtype == np.uint16:
            scaled = images.astype(np.float32) / 65535.0
        else:
            raise ValueError(
                f"{what}: integer images of dtype {images.dtype} reach {high}; convert them to "
                "uint8 or to floats in [0, 1] first."
            )
    else:
        scaled = images.astype(np.float32)
        if scaled.size and (float(scaled.min()) < 0.0 or float(scaled.max()) > 1.0):
            raise ValueError(
                f"{what}: float images span [{float(scaled.min()):g}, {float(scaled.max()):g}]; "
                "expected uint8 or floats in [0, 1]. Rescale them first."
            )
    return torch.from_numpy(np.ascontiguousarray(scaled))


def _to_targets(labels: np.ndarray, n: int, what: str, target_type: str = "auto") -> Tensor:
    """File labels as targets, by the package's one rule (``"auto"``: integer labels are class
    ids, float labels regression values); ``"class"``/``"regression"`` say it explicitly."""
    if target_type not in ("auto", "class", "regression"):
        raise ValueError(
            f"target_type must be 'auto', 'class' or 'regression', got {target_type!r}."
        )
    if labels.ndim == 2 and labels.shape[1] > 1 and target_type == "class":
        raise ValueError(
            f"{what}: labels have shape {labels.shape}; expected (n,) or (n, 1) class ids "
            "(multi-label targets are not supported)."
        )
    try:
        return normalize_targets(labels, n, target_type, name=f"{what}: labels").values
    except ValueError as error:
        raise ValueError(f"{error} (labels must be integer class ids)") from None


def load_digits_data() -> LoadedData:
    """scikit-learn's bundled digits: 1797 images ``(1, 8, 8)`` in ``[0, 1]``, 10 classes.

    Raises:
        ImportError: scikit-learn is not installed.

    Example:
        >>> data = load_digits_data()
        >>> tuple(data.inputs.shape), data.targets.dtype, float(data.inputs.max())
        ((1797, 1, 8, 8), torch.int64, 1.0)
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError as error:
        raise ImportError(
            "The built-in digits data needs scikit-learn: pip install scikit-learn"
        ) from error
    bunch: Any = load_digits()
    images = np.asarray(bunch.images, dtype=np.float32) / 16.0
    inputs = torch.from_numpy(images[:, None].copy())
    targets = torch.from_numpy(np.asarray(bunch.target, dtype=np.int64))
    return LoadedData(
        inputs, targets, _describe("scikit-learn digits", inputs, targets), "sklearn:digits"
    )


def load_npz(
    path: str | os.PathLike[str], split: str = "train", target_type: str = "auto"
) -> LoadedData:
    """Load images and labels from an ``.npz`` archive.

    Two layouts are read: MedMNIST's (``{split}_images`` and ``{split}_labels``, labels of shape
    ``(n, 1)`` ravelled) and a plain one (``images`` / ``labels``, or ``x`` / ``y``), which holds a
    single split: ``split`` must then be ``"train"`` (the default). uint8 images are divided by 255;
    ``(n, H, W)`` becomes ``(n, 1, H, W)`` and ``(n, H, W, 3)`` becomes ``(n, 3, H, W)``.

    Args:
        path: the ``.npz`` file.
        split: which split to read (``train``, ``val``, ``test``...).
        target_type: ``"auto"`` (the package's one rule: integer labels are class ids, float
            labels regression values), ``"class"`` (class ids: whole-number floats become int64)
            or ``"regression"`` (float values, e.g. ages).

    Raises:
        ValueError: unknown split (the message lists those present), no recognisable keys,
            labels that are not class ids (with ``target_type="class"``) or hold NaN.

    Example:
        >>> import tempfile, numpy as np
        >>> f = tempfile.NamedTemporaryFile(suffix=".npz", delete=False).name
        >>> np.savez(f, images=np.zeros((5, 4, 4), np.uint8), labels=np.arange(5))
        >>> data = load_npz(f)
        >>> tuple(data.inputs.shape), data.targets.tolist()
        ((5, 1, 4, 4), [0, 1, 2, 3, 4])
    """
    path = Path(path)
    with np.load(path, allow_pickle=False) as archive:
        keys = list(archive.files)
        splits = sorted(k[: -len("_images")] for k in keys if k.endswith("_images"))
        if splits:
            if split not in splits:
                raise ValueError(
                    f"{path.name} has no split {split!r}; splits present: {', '.join(splits)}."
                )
            label_key = f"{split}_labels"
            if label_key not in keys:
                raise ValueError(
                    f"{path.name} has {split}_images but no {label_key}; keys found: "
                    f"{', '.join(keys)}."
                )
            images, labels = archive[f"{split}_images"], archive[label_key]
            name = f"{path.stem}"
            shown_split: str | None = split
        else:
            image_key = next((k for k in ("images", "x", "X") if k in keys), None)
            label_key_plain = next((k for k in ("labels", "y", "Y") if k in keys), None)
            if image_key is None or label_key_plain is None:
                raise ValueError(
                    f"{path.name} has no recognisable image / label arrays; keys found: "
                    f"{', '.join(keys) or '(none)'}. Expected {{split}}_images and "
                    "{split}_labels (MedMNIST layout), or images and labels (or x and y)."
                )
            if split != "train":
                raise ValueError(
                    f"{path.name} holds a single split (keys {', '.join(keys)}), so split "
                    f"{split!r} does not exist; use split='train'."
                )
            images, labels = archive[image_key], archive[label_key_plain]
            name, shown_split = path.stem, None
        names_key = next((k for k in _CLASS_NAME_KEYS if k in keys), None)
        class_names = (
            None
            if names_key is None
            else tuple(str(v) for v in np.asarray(archive[names_key]).ravel().tolist())
        )
    what = f"{path.name} ({split})"
    inputs = _to_unit_nchw(images, what)
    targets = _to_targets(labels, int(inputs.shape[0]), what, target_type)
    return LoadedData(
        inputs, targets, _describe(name, inputs, targets, shown_split), str(path), class_names
    )


def _import_pil() -> Any:
    try:
        from PIL import Image
    except ImportError as error:
        raise ImportError(
            "Reading an image folder needs Pillow: pip install lightning-dataprops[images]"
        ) from error
    return Image


def load_image_folder(path: str | os.PathLike[str]) -> LoadedData:
    """Load an image folder with one subfolder per class (class ids follow sorted folder names).

    Images are read with Pillow (``pip install lightning-dataprops[images]``). Modes ``L`` and
    ``RGB`` are kept (``1``/``LA`` become ``L``, palette/alpha/CMYK images become ``RGB``); when
    grayscale and colour images are mixed, the grayscale ones are repeated over 3 channels. All
    images must have the same size.

    Args:
        path: the root folder.

    Raises:
        ImportError: Pillow is not installed.
        ValueError: no class folders, an empty class folder, images of different sizes (the
            message names two offending files) or an unsupported image mode.

    Example:
        >>> import tempfile, pathlib
        >>> from PIL import Image
        >>> root = pathlib.Path(tempfile.mkdtemp())
        >>> for name in ("cat", "dog"):
        ...     (root / name).mkdir()
        ...     Image.new("L", (6, 4), 255).save(root / name / "a.png")
        >>> data = load_image_folder(root)
        >>> tuple(data.inputs.shape), data.targets.tolist(), float(data.inputs.max())
        ((2, 1, 4, 6), [0, 1], 1.0)
    """
    image_module = _import_pil()
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"Image folder not found: {root}")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise ValueError(
            f"{root} has no class subfolders; expected one subfolder per class holding its images."
        )
    arrays: list[np.ndarray] = []
    labels: list[str] = []
    first: tuple[Path, tuple[int, int]] | None = None
    for class_name in classes:
        files = sorted(
            p
            for p in (root / class_name).iterdir()
            if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
        )
        if not files:
            raise ValueError(
                f"Class folder {root / class_name} holds no images ({', '.join(IMAGE_EXTENSIONS)})."
            )
        for file in files:
            with image_module.open(file) as image:
                size = tuple(image.size)
                if first is None:
                    first = (file, size)
                elif size != first[1]:
                    raise ValueError(
                        f"Images have different sizes: {first[0]} is {first[1][0]}x{first[1][1]} "
                        f"but {file} is {size[0]}x{size[1]} (width x height); resize them to one "
                        "size first."
                    )
                mode = image.mode
                if mode in ("1", "LA", "L"):
                    converted = image.convert("L") if mode != "L" else image
                elif mode in ("I", "I;16", "I;16B", "I;16L", "F"):
                    raise ValueError(
                        f"{file} has mode {mode} (16/32-bit); convert the images to 8-bit L or "
                        "RGB first."
                    )
                else:
                    converted = image.convert("RGB") if mode != "RGB" else image
                arrays.append(np.asarray(converted, dtype=np.uint8).copy())
            labels.append(class_name)
    if any(a.ndim == 3 for a in arrays):
        arrays = [np.repeat(a[:, :, None], 3, axis=2) if a.ndim == 2 else a for a in arrays]
    images = np.stack(arrays)
    inputs = _to_unit_nchw(images, str(root))
    # Class ids in sorted folder-name order: the numbering of string labels everywhere.
    targets, _ = class_ids_from_names(labels)
    description = _describe(f"image folder {root.name}", inputs, targets)
    return LoadedData(
        inputs, targets, f"{description} ({', '.join(classes)})", str(root), tuple(classes)
    )


def load_fashion_mnist(
    root: str | os.PathLike[str] = DEFAULT_FASHION_MNIST_ROOT, split: str = "train"
) -> LoadedData:
    """Load Fashion-MNIST (or MNIST) from its IDX files: ``(n, 1, 28, 28)`` in ``[0, 1]``.

    Reads ``{train,t10k}-images-idx3-ubyte.gz`` and ``{train,t10k}-labels-idx1-ubyte.gz``
    (uncompressed files are accepted too), checking the magic numbers (0x803 for images, 0x801 for
    labels) and the sizes announced by the headers.

    Args:
        root: folder holding the files (Debian: ``apt-get install dataset-fashion-mnist``).
        split: ``train`` or ``test`` (``t10k`` is accepted as an alias of ``test``).

    Raises:
        FileNotFoundError: the files are missing.
        ValueError: unknown split, malformed files, or image and label counts differ.

    Example:
        >>> import os
        >>> if os.path.isdir(DEFAULT_FASHION_MNIST_ROOT):
        ...     data = load_fashion_mnist(split="test")
        ...     assert tuple(data.inputs.shape) == (10000, 1, 28, 28)
    """
    prefixes = {"train": "train", "test": "t10k", "t10k": "t10k"}
    if split not in prefixes:
        raise ValueError(f"Unknown Fashion-MNIST split {split!r}; choose 'train' or 'test'.")
    folder = Path(root)
    prefix = prefixes[split]
    image_name, label_name = f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"
    image_file, label_file = idx_file(folder, image_name), idx_file(folder, label_name)
    if image_file is None or label_file is None:
        missing = image_name if image_file is None else label_name
        raise FileNotFoundError(
            f"Fashion-MNIST file {missing}.gz not found in {folder}; install it with "
            "`apt-get install dataset-fashion-mnist` (files in "
            f"{DEFAULT_FASHION_MNIST_ROOT}) or pass the folder holding the IDX files."
        )
    images = read_idx(image_file, 3)
    labels = read_idx(label_file, 1)
    if images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"{image_file.name} holds {images.shape[0]} images but {label_file.name} holds "
            f"{labels.shape[0]} labels."
        )
    inputs = _to_unit_nchw(images, image_file.name)
    targets = torch.from_numpy(labels.astype(np.int64))
    fashion = "fashion" in str(folder).lower()
    name = "Fashion-MNIST" if fashion else f"IDX data {folder.name}"
    return LoadedData(
        inputs,
        targets,
        _describe(name, inputs, targets, split),
        str(folder),
        FASHION_MNIST_CLASSES if fashion else None,
    )


def load_source(
    source: str | os.PathLike[str] | None, split: str = "train", target_type: str = "auto"
) -> LoadedData:
    """Load a data source named on the command line.

    * ``None`` (or ``"digits"`` when no such path exists): scikit-learn's digits;
    * a ``.npz`` file: :func:`load_npz`;
    * a folder holding ``*-idx3-ubyte.gz`` files: :func:`load_fashion_mnist`;
    * any other folder: :func:`load_image_folder` (when its subfolders are split names such as
      ``train`` / ``test``, the ``split`` subfolder is read).

    Args:
        source: a path, or ``None``.
        split: the split to read where the source has several.
        target_type: how ``.npz`` labels are read (see :func:`load_npz`); folders and IDX files
            always hold class ids.

    Raises:
        FileNotFoundError: the path does not exist.
        ValueError: the file type is not supported.

    Example:
        >>> load_source(None).inputs.shape
        torch.Size([1797, 1, 8, 8])
    """
    if source is None:
        return load_digits_data()
    path = Path(source)
    if not path.exists():
        if str(source) == "digits":
            return load_digits_data()
        raise FileNotFoundError(f"Data source not found: {path}")
    if path.is_file():
        if path.suffix.lower() == ".npz":
            return load_npz(path, split=split, target_type=target_type)
        raise ValueError(
            f"Unsupported data source file {path.name}: pass a .npz file, a folder of IDX files "
            "(*-idx3-ubyte.gz) or an image folder with one subfolder per class."
        )
    if any(path.glob("*-idx3-ubyte.gz")) or any(path.glob("*-idx3-ubyte")):
        return load_fashion_mnist(path, split=split)
    subfolders = [p.name for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")]
    if subfolders and all(name in _SPLIT_FOLDERS for name in subfolders):
        if split not in subfolders:
            raise ValueError(
                f"{path} has split folders {', '.join(sorted(subfolders))} but no {split!r}."
            )
        return load_image_folder(path / split)
    return load_image_folder(path)
