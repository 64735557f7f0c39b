"""Data of the course, all generated in code or shipped in the package (nothing is downloaded).

- :mod:`arflow.data.digits`: MNIST (the embedded subset, full MNIST when present); its public
  API is re-exported here: ``mnist``, ``to_float``, ``to_uint8``, ``binarize``, ``make_loader``...
- :mod:`arflow.data.signals`: the synthetic melody and mu-law quantization (WaveNet).
- :mod:`arflow.data.text_corpus`: byte tokens of standard-library source (the GPT).
- :mod:`arflow.data.toy2d`: 2-D toy densities (two moons, a ring of Gaussians).
- :mod:`arflow.data.windows`: windows of a 1-D sequence (training batches of sequence models).
- :mod:`arflow.data.idx`: the IDX file format of MNIST and a checked download.
"""

from arflow.data.digits import (
    DEFAULT_MIRROR,
    EMBEDDED_PATH,
    ENV_DIR,
    MNIST_FILES,
    SOURCES,
    SPLITS,
    binarize,
    download_mnist,
    make_loader,
    mnist,
    mnist_provenance,
    to_float,
    to_uint8,
)
from arflow.data.idx import DataError, md5sum, read_idx, verify_checksum, write_idx

__all__ = ["DEFAULT_MIRROR", "EMBEDDED_PATH", "ENV_DIR", "MNIST_FILES", "SOURCES", "SPLITS", "DataError",
           "binarize", "download_mnist", "make_loader", "md5sum", "mnist", "mnist_provenance", "read_idx",
           "to_float", "to_uint8", "verify_checksum", "write_idx"]
