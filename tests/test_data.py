"""Datasets: real MNIST from the shared folder, tiny CIFAR-10 / STL-10 files in their real
formats, splits, roots and the messages for missing or corrupt data."""

from __future__ import annotations

import copy
import gzip
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from hebbkit.config.recipe import validate_recipe
from hebbkit.data import ImageSet, to_float
from hebbkit.engine.splits import load_splits, split
from hebbkit.errors import DataError, RecipeError
from hebbkit.registry import Registry
from hebbkit.runs.run import data_root, offline
from tests.conftest import TINY_RECIPE
from tests.data_files import cifar_image, stl_image, write_cifar, write_mnist, write_stl


def data_config(registry: Registry, **data: Any) -> Any:
    recipe = copy.deepcopy(TINY_RECIPE)
    recipe["data"] = {"dataset": "mnist", **data}
    return validate_recipe(recipe, registry).data


def source(registry: Registry, name: str, **params: Any) -> Any:
    component = registry.get("dataset", name)
    return component.build(component.params(**params))


# --- MNIST from ../shared/datasets ---------------------------------------------------------


def test_mnist_reads_gzipped_idx(registry: Registry, shared_data: Path) -> None:
    mnist = source(registry, "mnist")
    train = mnist.load(shared_data, train=True, download=False)
    test = mnist.load(shared_data, train=False, download=False)
    assert train.images.shape == (60_000, 1, 28, 28) and train.images.dtype == torch.uint8
    assert test.images.shape == (10_000, 1, 28, 28)
    assert train.labels.dtype == torch.int64
    # well-known first labels of MNIST: 5 0 4 1 9 (train), 7 2 1 0 4 (test)
    assert train.labels[:5].tolist() == [5, 0, 4, 1, 9]
    assert test.labels[:5].tolist() == [7, 2, 1, 0, 4]
    assert torch.bincount(train.labels).tolist()[1] == 6742  # the number of ones
    assert int(train.images.max()) == 255 and int(train.images[:, :, 0, 0].max()) == 0
    assert train.classes == [str(d) for d in range(10)]


def test_mnist_splits_from_shared_data(registry: Registry, shared_data: Path) -> None:
    config = data_config(registry, train_subset=1000, test_subset=500, validation=0.1)
    splits = load_splits(config, registry, shared_data, download=False)
    assert len(splits.train) == 1000 and len(splits.test) == 500
    assert splits.validation is not None and len(splits.validation) == 6000
    assert splits.unlabeled is None and splits.hebbian_images.shape == (1000, 1, 28, 28)
    # no image of the validation split is in the training subset
    train = {bytes(image.numpy()) for image in splits.train.images}
    assert not any(bytes(image.numpy()) in train for image in splits.validation.images)
    # every class is present in a 1000-image subset
    assert torch.bincount(splits.train.labels, minlength=10).min() > 50


def test_offline_missing_mnist_names_folder_and_files(registry: Registry, tmp_path: Path) -> None:
    with pytest.raises(DataError) as caught:
        source(registry, "mnist").load(tmp_path, train=True, download=False)
    message = str(caught.value)
    assert str(tmp_path / "MNIST" / "raw") in message
    assert "train-images-idx3-ubyte" in message and "train-labels-idx1-ubyte" in message
    assert "--offline" in message and "download=True" in message


def test_missing_root_offline(registry: Registry, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_splits(data_config(registry), registry, tmp_path / "nowhere", download=False)


# --- IDX in general ------------------------------------------------------------------------


@pytest.mark.parametrize("compress", [True, False])
@pytest.mark.parametrize(
    ("name", "folder"), [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")]
)
def test_idx_layout_gzipped_or_not(
    registry: Registry, tmp_path: Path, compress: bool, name: str, folder: str
) -> None:
    write_mnist(tmp_path, folder, compress)
    images = source(registry, name).load(tmp_path, train=True, download=False)
    assert images.images.shape == (6, 1, 28, 28)
    for i in range(6):
        assert images.images[i, 0, i, 27 - i] == 200 + i
        assert int(images.images[i].sum()) == 200 + i
    assert images.labels.tolist() == list(range(6))


def test_corrupt_idx_files(registry: Registry, tmp_path: Path) -> None:
    write_mnist(tmp_path)
    raw = tmp_path / "MNIST" / "raw"
    mnist = source(registry, "mnist")
    target = raw / "train-images-idx3-ubyte.gz"
    good = gzip.decompress(target.read_bytes())
    with gzip.open(target, "wb") as stream:  # truncated payload
        stream.write(good[:-10])
    with pytest.raises(DataError, match="truncated or corrupt"):
        mnist.load(tmp_path, train=True, download=False)
    with gzip.open(target, "wb") as stream:  # bad magic number
        stream.write(b"\x01\x02" + good[2:])
    with pytest.raises(DataError, match="bad magic"):
        mnist.load(tmp_path, train=True, download=False)
    target.write_bytes(b"this is not gzip")
    with pytest.raises(DataError, match=str(target)):
        mnist.load(tmp_path, train=True, download=False)


# --- CIFAR-10 ------------------------------------------------------------------------------


def test_cifar10_real_format(registry: Registry, tmp_path: Path) -> None:
    write_cifar(tmp_path)
    cifar = source(registry, "cifar10")
    train = cifar.load(tmp_path, train=True, download=False)
    test = cifar.load(tmp_path, train=False, download=False)
    assert train.images.shape == (10, 3, 32, 32) and test.images.shape == (2, 3, 32, 32)
    assert train.labels.tolist() == list(range(10)) and test.labels.tolist() == [0, 1]
    # a known pixel: image 3, green channel, row 5, column 17
    assert int(train.images[3, 1, 5, 17]) == (3 * 37 + 80 + 15 + 17) % 256
    # in the flat file, that pixel is at offset c·1024 + row·32 + col
    flat = train.images[3].flatten()
    assert int(flat[1 * 1024 + 5 * 32 + 17]) == int(train.images[3, 1, 5, 17])
    for i in range(10):
        assert np.array_equal(train.images[i].numpy(), cifar_image(i))
    assert np.array_equal(test.images[1].numpy(), cifar_image(11))
    assert train.classes[0] == "airplane" and len(train.classes) == 10


def test_cifar10_split_and_missing(registry: Registry, tmp_path: Path) -> None:
    write_cifar(tmp_path, per_batch=4)
    config = copy.deepcopy(TINY_RECIPE)
    config["data"] = {"dataset": "cifar10", "validation": 5, "train_subset": 10}
    data = validate_recipe(config, registry).data
    splits = load_splits(data, registry, tmp_path, download=False)
    assert len(splits.train) == 10 and len(splits.validation) == 5 and len(splits.test) == 4
    (tmp_path / "cifar-10-batches-py" / "data_batch_4").unlink()
    with pytest.raises(DataError) as caught:
        source(registry, "cifar10").load(tmp_path, train=True, download=False)
    assert str(tmp_path / "cifar-10-batches-py") in str(caught.value)
    assert "data_batch_4" in str(caught.value)


def test_cifar10_corrupt_batch(registry: Registry, tmp_path: Path) -> None:
    write_cifar(tmp_path)
    folder = tmp_path / "cifar-10-batches-py"
    (folder / "data_batch_2").write_bytes(b"\x80\x02garbage")
    with pytest.raises(DataError, match="data_batch_2"):
        source(registry, "cifar10").load(tmp_path, train=True, download=False)
    with (folder / "data_batch_2").open("wb") as stream:
        pickle.dump({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, stream)
    with pytest.raises(DataError, match="3072"):
        source(registry, "cifar10").load(tmp_path, train=True, download=False)


# --- STL-10 --------------------------------------------------------------------------------


def test_stl10_real_format(registry: Registry, tmp_path: Path) -> None:
    write_stl(tmp_path)
    stl = source(registry, "stl10")
    train = stl.load(tmp_path, train=True, download=False)
    test = stl.load(tmp_path, train=False, download=False)
    assert train.images.shape == (3, 3, 96, 96) and test.images.shape == (2, 3, 96, 96)
    assert train.labels.tolist() == [0, 9, 3] and test.labels.tolist() == [1, 2]
    # a known pixel, away from the diagonal so a transposition would show: (c=2, row=5, col=40)
    assert int(train.images[1, 2, 5, 40]) == (11 + 100 + 35 + 40) % 256
    assert int(train.images[1, 2, 40, 5]) == (11 + 100 + 280 + 5) % 256
    for i in range(3):
        assert np.array_equal(train.images[i].numpy(), stl_image(i))
    assert train.images.is_contiguous()
    assert stl.unlabeled(tmp_path, download=False) is None  # off by default


def test_stl10_unlabeled_joins_the_hebbian_phase(registry: Registry, tmp_path: Path) -> None:
    write_stl(tmp_path)
    recipe = copy.deepcopy(TINY_RECIPE)
    recipe["data"] = {"dataset": {"name": "stl10", "unlabeled": True}}
    splits = load_splits(validate_recipe(recipe, registry).data, registry, tmp_path, download=False)
    assert splits.unlabeled is not None and splits.unlabeled.shape == (4, 3, 96, 96)
    assert np.array_equal(splits.unlabeled[2].numpy(), stl_image(22))
    assert splits.hebbian_images.shape[0] == 3 + 4
    assert len(splits.train) == 3  # labelled images only for the read-out


def test_stl10_corrupt_and_missing(registry: Registry, tmp_path: Path) -> None:
    folder = write_stl(tmp_path)
    stl = source(registry, "stl10")
    (folder / "train_y.bin").write_bytes(bytes([1, 2]))
    with pytest.raises(DataError, match=r"train_X\.bin holds 3 images but .*train_y\.bin holds 2"):
        stl.load(tmp_path, train=True, download=False)
    (folder / "train_X.bin").write_bytes(b"\x00" * 1000)
    with pytest.raises(DataError, match="3×96×96"):
        stl.load(tmp_path, train=True, download=False)
    (folder / "test_X.bin").unlink()
    with pytest.raises(DataError) as caught:
        stl.load(tmp_path, train=False, download=False)
    assert str(folder) in str(caught.value) and "test_X.bin" in str(caught.value)


# --- splits, roots, conversion -------------------------------------------------------------


def indexed_set(n: int) -> ImageSet:
    """Images whose first pixel and label are their index (n ≤ 256)."""
    images = torch.zeros(n, 1, 2, 2, dtype=torch.uint8)
    images[:, 0, 0, 0] = torch.arange(n, dtype=torch.uint8)
    return ImageSet(images, torch.arange(n), [str(i) for i in range(n)])


def test_split_sizes_disjoint_and_seed_independent(registry: Registry) -> None:
    train, test = indexed_set(200), indexed_set(50)
    splits = split(train, test, data_config(registry, validation=0.25, train_subset=100))
    validation = set(splits.validation.labels.tolist())
    training = set(splits.train.labels.tolist())
    assert len(validation) == 50 and len(training) == 100
    assert not validation & training
    assert splits.train.labels.tolist() == sorted(training)  # kept in file order
    assert torch.equal(splits.train.images[:, 0, 0, 0].long(), splits.train.labels)
    # the same split every time (it does not depend on the run's seed)
    again = split(train, test, data_config(registry, validation=0.25, train_subset=100))
    assert torch.equal(again.validation.labels, splits.validation.labels)
    # a bigger subset extends the smaller one; the validation split stays put
    bigger = split(train, test, data_config(registry, validation=0.25, train_subset=150))
    assert training <= set(bigger.train.labels.tolist())
    assert torch.equal(bigger.validation.labels, splits.validation.labels)


def test_split_validation_count_and_errors(registry: Registry) -> None:
    train, test = indexed_set(100), indexed_set(10)
    assert len(split(train, test, data_config(registry, validation=30)).validation) == 30
    assert split(train, test, data_config(registry)).validation is None
    with pytest.raises(RecipeError, match=r"data.validation = 2.5: give a fraction"):
        data_config(registry, validation=2.5)  # refused by the recipe model itself
    with pytest.raises(DataError, match="leaves no training images"):
        split(train, test, data_config(registry, validation=100))
    with pytest.raises(DataError, match=r"data.train_subset = 95 but only 90"):
        split(train, test, data_config(registry, validation=10, train_subset=95))
    # a test subset larger than the set keeps everything
    assert len(split(train, test, data_config(registry, test_subset=50)).test) == 10


def test_image_set_checks() -> None:
    images = torch.zeros(2, 1, 3, 3, dtype=torch.uint8)
    with pytest.raises(DataError, match="uint8"):
        ImageSet(torch.zeros(2, 1, 3, 3), torch.zeros(2, dtype=torch.long), ["a", "b"])
    with pytest.raises(DataError, match=r"uint8 tensor \(N, C, H, W\)"):
        ImageSet(torch.zeros(2, 3, 3, dtype=torch.uint8), torch.zeros(2), ["a", "b"])
    with pytest.raises(DataError, match="3 labels for 2 images"):
        ImageSet(images, torch.zeros(3), [])
    with pytest.raises(DataError, match=r"labels of dtype torch\.float32"):
        ImageSet(images, torch.zeros(2), ["a", "b"])
    with pytest.raises(DataError, match="labels from 0 to 2 but 2 class names"):
        ImageSet(images, torch.tensor([0, 2]), ["a", "b"])
    with pytest.raises(DataError, match="labels from -1"):
        ImageSet(images, torch.tensor([-1, 0]), ["a", "b"])
    with pytest.raises(DataError, match="expected a list of class names"):
        ImageSet(images, torch.tensor([0, 1]), "ab")
    with pytest.raises(DataError, match="no class names"):
        ImageSet(images, torch.tensor([0, 0]), [])
    # any integer dtype and a tuple of names are fine; stored as int64 and a list of str
    ok = ImageSet(images, torch.tensor([1, 0], dtype=torch.uint8), ("a", "b"))
    assert ok.labels.dtype == torch.int64 and ok.classes == ["a", "b"]


def test_data_root_and_offline_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("HEBBKIT_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    assert data_root() == tmp_path / "data"
    monkeypatch.setenv("HEBBKIT_DATA", str(tmp_path / "env"))
    assert data_root() == tmp_path / "env"
    assert data_root(tmp_path / "flag") == tmp_path / "flag"
    monkeypatch.delenv("HEBBKIT_OFFLINE", raising=False)
    assert not offline() and offline(True)
    monkeypatch.setenv("HEBBKIT_OFFLINE", "1")
    assert offline()
    monkeypatch.setenv("HEBBKIT_OFFLINE", "0")
    assert not offline()


def test_to_float_scales_to_unit_range() -> None:
    images = torch.tensor([[[[0, 51, 255]]]], dtype=torch.uint8)
    torch.testing.assert_close(to_float(images), torch.tensor([[[[0.0, 0.2, 1.0]]]]))
