"""Tests for the file loaders of lightning_dataprops.data."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from lightning_dataprops.data import (
    LoadedData,
    load_digits_data,
    load_fashion_mnist,
    load_image_folder,
    load_npz,
    load_source,
)

DATA_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data"
FASHION_ROOT = Path("/usr/share/datasets/fashion-mnist")


def _check_loaded(data: LoadedData, shape: tuple[int, ...]) -> None:
    assert isinstance(data, LoadedData)
    assert tuple(data.inputs.shape) == shape
    assert data.inputs.dtype == torch.float32 and data.targets.dtype == torch.int64
    assert data.targets.shape == (shape[0],)
    assert float(data.inputs.min()) >= 0.0 and float(data.inputs.max()) <= 1.0
    assert data.description and data.source


# --------------------------------------------------------------------------------------------------
# digits
# --------------------------------------------------------------------------------------------------


def test_digits_shape_and_range() -> None:
    pytest.importorskip("sklearn")
    data = load_digits_data()
    _check_loaded(data, (1797, 1, 8, 8))
    assert float(data.inputs.max()) == 1.0
    assert sorted(torch.unique(data.targets).tolist()) == list(range(10))
    assert "1797" in data.description
    assert load_source(None).inputs.shape == data.inputs.shape


# --------------------------------------------------------------------------------------------------
# npz
# --------------------------------------------------------------------------------------------------


def test_npz_medmnist_layout(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    path = tmp_path / "fake.npz"
    train = rng.integers(0, 256, size=(12, 5, 6), dtype=np.uint8)
    test = rng.integers(0, 256, size=(4, 5, 6), dtype=np.uint8)
    np.savez(
        path,
        train_images=train,
        train_labels=(np.arange(12) % 2)[:, None].astype(np.uint8),
        test_images=test,
        test_labels=np.array([[1], [0], [1], [1]], dtype=np.uint8),
    )
    data = load_npz(path)
    _check_loaded(data, (12, 1, 5, 6))
    assert torch.equal(data.inputs[:, 0], torch.from_numpy(train).float() / 255.0)
    assert data.targets.tolist() == [0, 1] * 6
    test_data = load_source(str(path), split="test")
    assert test_data.targets.tolist() == [1, 0, 1, 1]
    with pytest.raises(ValueError, match="splits present: test, train"):
        load_npz(path, split="val")


def test_npz_plain_layout_rgb_and_xy(tmp_path: Path) -> None:
    images = np.zeros((3, 4, 5, 3), dtype=np.uint8)
    images[:, :, :, 1] = 255
    path = tmp_path / "plain.npz"
    np.savez(path, images=images, labels=np.array([2, 0, 1]))
    data = load_npz(path)
    _check_loaded(data, (3, 3, 4, 5))
    assert data.inputs[:, 1].min() == 1.0 and data.inputs[:, 0].max() == 0.0
    with pytest.raises(ValueError, match="single split"):
        load_npz(path, split="test")

    xy = tmp_path / "xy.npz"
    np.savez(xy, x=np.full((2, 3, 3), 0.5, dtype=np.float32), y=np.array([1.0, 0.0]))
    data_xy = load_npz(xy, target_type="class")  # float labels are class ids only when said
    _check_loaded(data_xy, (2, 1, 3, 3))
    assert data_xy.targets.tolist() == [1, 0]
    by_default = load_npz(xy)  # the one rule: float labels are regression values
    assert by_default.targets.dtype == torch.float64 and by_default.targets.tolist() == [1.0, 0.0]


def test_npz_errors(tmp_path: Path) -> None:
    path = tmp_path / "weird.npz"
    np.savez(path, foo=np.zeros(3), bar=np.ones(2))
    with pytest.raises(ValueError, match=r"keys found: foo, bar|keys found: bar, foo"):
        load_npz(path)
    multi = tmp_path / "multi.npz"
    np.savez(multi, images=np.zeros((2, 3, 3), np.uint8), labels=np.zeros((2, 4)))
    with pytest.raises(ValueError, match="multi-label"):
        load_npz(multi, target_type="class")
    assert load_npz(multi).targets.shape == (2, 4)  # float rows: regression vectors by the rule
    big = tmp_path / "big.npz"
    np.savez(big, images=np.full((2, 3, 3), 7.0), labels=np.zeros(2))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        load_npz(big)


# --------------------------------------------------------------------------------------------------
# image folder
# --------------------------------------------------------------------------------------------------


def _write_folder(root: Path, size: tuple[int, int] = (7, 5)) -> None:
    image_module = pytest.importorskip("PIL.Image")
    for class_name, value, count in (("zebra", 255, 2), ("ant", 0, 3)):
        (root / class_name).mkdir(parents=True)
        for i in range(count):
            image_module.new("L", size, value).save(root / class_name / f"{i}.png")


def test_image_folder(tmp_path: Path) -> None:
    _write_folder(tmp_path / "imgs")
    (tmp_path / "imgs" / "ant" / "notes.txt").write_text("not an image")
    data = load_image_folder(tmp_path / "imgs")
    _check_loaded(data, (5, 1, 5, 7))
    assert data.targets.tolist() == [0, 0, 0, 1, 1]  # sorted classes: ant=0, zebra=1
    assert data.inputs[:3].max() == 0.0 and data.inputs[3:].min() == 1.0
    assert "ant" in data.description and "zebra" in data.description
    assert torch.equal(load_source(str(tmp_path / "imgs")).targets, data.targets)


def test_image_folder_rgb_mixed_and_split_folders(tmp_path: Path) -> None:
    image_module = pytest.importorskip("PIL.Image")
    root = tmp_path / "data"
    for split in ("train", "test"):
        for name in ("a", "b"):
            (root / split / name).mkdir(parents=True)
        image_module.new("RGB", (4, 4), (255, 0, 0)).save(root / split / "a" / "0.png")
        image_module.new("L", (4, 4), 128).save(root / split / "b" / "0.png")
    data = load_source(str(root), split="test")
    _check_loaded(data, (2, 3, 4, 4))
    assert data.inputs[0, :, 0, 0].tolist() == [1.0, 0.0, 0.0]
    assert torch.allclose(data.inputs[1, :, 0, 0], torch.full((3,), 128 / 255))


def test_image_folder_size_mismatch_names_files(tmp_path: Path) -> None:
    image_module = pytest.importorskip("PIL.Image")
    _write_folder(tmp_path / "imgs")
    image_module.new("L", (9, 9)).save(tmp_path / "imgs" / "zebra" / "odd.png")
    with pytest.raises(ValueError, match=r"0\.png is 7x5 but .*odd\.png is 9x9"):
        load_image_folder(tmp_path / "imgs")


def test_image_folder_without_classes(tmp_path: Path) -> None:
    pytest.importorskip("PIL.Image")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no class subfolders"):
        load_image_folder(tmp_path / "empty")


# --------------------------------------------------------------------------------------------------
# Fashion-MNIST IDX
# --------------------------------------------------------------------------------------------------


def _write_idx(path: Path, array: np.ndarray, magic: int | None = None) -> None:
    ndim = array.ndim
    header = struct.pack(">I", 0x800 + ndim if magic is None else magic)
    header += struct.pack(f">{ndim}I", *array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


def test_fashion_mnist_idx_parsing(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(6, 28, 28), dtype=np.uint8)
    labels = np.array([9, 0, 3, 3, 1, 0], dtype=np.uint8)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", labels)
    data = load_fashion_mnist(tmp_path, split="test")
    _check_loaded(data, (6, 1, 28, 28))
    assert torch.equal(data.inputs[:, 0], torch.from_numpy(images).float() / 255.0)
    assert data.targets.tolist() == labels.tolist()
    via_source = load_source(str(tmp_path), split="test")
    assert torch.equal(via_source.targets, data.targets)
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_fashion_mnist(tmp_path, split="train")
    with pytest.raises(ValueError, match="choose 'train' or 'test'"):
        load_fashion_mnist(tmp_path, split="val")


def test_fashion_mnist_bad_headers(tmp_path: Path) -> None:
    _write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.zeros((2, 3, 3)), magic=0x0801)
    _write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(2))
    with pytest.raises(ValueError, match="bad IDX magic number 0x00000801"):
        load_fashion_mnist(tmp_path)
    _write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.zeros((3, 3, 3)))
    with pytest.raises(ValueError, match=r"3 images but .* 2 labels"):
        load_fashion_mnist(tmp_path)
    with gzip.open(tmp_path / "train-images-idx3-ubyte.gz", "wb") as handle:
        handle.write(struct.pack(">IIII", 0x803, 5, 3, 3) + bytes(10))
    with pytest.raises(ValueError, match="announces"):
        load_fashion_mnist(tmp_path)


def test_fashion_mnist_real_files() -> None:
    if not (FASHION_ROOT / "t10k-images-idx3-ubyte.gz").exists():
        pytest.skip(f"{FASHION_ROOT} absent (apt-get install dataset-fashion-mnist)")
    data = load_fashion_mnist(split="test")
    _check_loaded(data, (10000, 1, 28, 28))
    assert torch.bincount(data.targets).tolist() == [1000] * 10


# --------------------------------------------------------------------------------------------------
# load_source dispatch and real data
# --------------------------------------------------------------------------------------------------


def test_load_source_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="Data source not found"):
        load_source(str(tmp_path / "missing.npz"))
    other = tmp_path / "table.csv"
    other.write_text("a,b\n")
    with pytest.raises(ValueError, match=r"Unsupported data source file table\.csv"):
        load_source(str(other))


def test_real_pneumoniamnist() -> None:
    path = DATA_DIR / "medmnist" / "pneumoniamnist.npz"
    if not path.exists():
        pytest.skip(f"real data not found at {path} (../shared/data is absent in a fresh clone)")
    data = load_source(str(path))
    _check_loaded(data, (3882, 1, 28, 28))
    assert torch.bincount(data.targets).tolist() == [388, 3494]
    assert load_npz(path, split="test").inputs.shape[0] == 624


def test_real_mnist5k_plain_layout() -> None:
    path = DATA_DIR / "mnist5k.npz"
    if not path.exists():
        pytest.skip(f"real data not found at {path} (../shared/data is absent in a fresh clone)")
    data = load_npz(path)
    _check_loaded(data, (5000, 1, 28, 28))
    assert torch.bincount(data.targets).tolist() == [500] * 10
