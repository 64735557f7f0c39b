"""IDX files (the format of MNIST: http://yann.lecun.com/exdb/mnist/): reading, writing, and a
checked download."""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import struct
import tempfile
import urllib.request
from pathlib import Path

import numpy as np

# IDX type codes (http://yann.lecun.com/exdb/mnist/, "THE IDX FILE FORMAT").
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class DataError(ValueError):
    """A data file is corrupted, truncated, or not what was expected."""


# --------------------------------------------------------------------------- IDX files
def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Parse an IDX file (optionally gzip-compressed) into a numpy array.

    Raises :class:`DataError` naming the file when the magic number, the header or the
    payload length is wrong (corrupted or truncated files).
    """
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise DataError(f"{path}: corrupted gzip stream ({err}); expected a gzip-compressed IDX file") from err
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DataError(f"{path}: not an IDX file (magic {raw[:4].hex()!r}; expected 0x0000 then a type code)")
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    ndim = raw[3]
    header_end = 4 + 4 * ndim
    if len(raw) < header_end:
        raise DataError(f"{path}: truncated header (expected {ndim} dimension sizes)")
    shape = struct.unpack(f">{ndim}I", raw[4:header_end])
    expected = int(np.prod(shape)) * dtype.itemsize
    payload = len(raw) - header_end
    if payload != expected:
        raise DataError(f"{path}: {payload} data bytes, expected {expected} for shape {shape} of {dtype}"
                        + (" (truncated file)" if payload < expected else " (trailing garbage)"))
    return np.frombuffer(raw, dtype=dtype, offset=header_end).reshape(shape).astype(dtype.newbyteorder("="))


def write_idx(path: str | os.PathLike, array: np.ndarray, compress: bool | None = None) -> Path:
    """Write ``array`` as an IDX file (gzip when ``compress`` or the name ends in .gz). For tests and tools."""
    path = Path(path)
    codes = {np.dtype(v).newbyteorder("=").str: k for k, v in _IDX_DTYPES.items()}
    big = array.astype(np.dtype(array.dtype).newbyteorder(">"))
    code = codes.get(np.dtype(array.dtype).newbyteorder("=").str)
    if code is None:
        raise ValueError(f"dtype {array.dtype} cannot be stored in IDX")
    data = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + big.tobytes()
    if compress or (compress is None and path.suffix == ".gz"):
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


def md5sum(path: str | os.PathLike) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_checksum(path: Path, expected_md5: str) -> None:
    actual = md5sum(path)
    if actual != expected_md5:
        raise DataError(f"{path}: checksum mismatch: md5 {actual}, expected {expected_md5} "
                        "(corrupted or incomplete download; delete the file and try again)")


def download_files(root: str | os.PathLike, mirror: str, files: dict, timeout: float = 10.0) -> Path:
    """Download ``files`` ({key: (file name, md5)}) from ``mirror`` into ``root`` and check their MD5 sums.

    Files already present with the right checksum are kept. A file is first written to a
    temporary name and moved into place only once its checksum is right, so an interrupted or
    corrupted download never leaves a bad file behind. Raises :class:`DataError` on a wrong
    checksum and ``OSError`` (``urllib.error.URLError``) when the mirror cannot be reached.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for name, md5 in files.values():
        target = root / name
        if target.exists() and md5sum(target) == md5:
            continue
        url = mirror.rstrip("/") + "/" + name
        with tempfile.NamedTemporaryFile(dir=root, delete=False, suffix=".part") as tmp:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as response:
                    shutil.copyfileobj(response, tmp)
            except BaseException:
                tmp.close()
                os.unlink(tmp.name)
                raise
        try:
            verify_checksum(Path(tmp.name), md5)
        except DataError as err:
            os.unlink(tmp.name)
            raise DataError(f"{url}: checksum mismatch ({err}); expected md5 {md5}") from None
        os.replace(tmp.name, target)
    return root
