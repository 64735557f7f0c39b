"""Shared test settings: one torch thread (the machine has 2 cores, and notebooks run beside tests)."""

import os
import sys
from pathlib import Path

import matplotlib
import pytest
import torch

matplotlib.use("Agg")
sys.path.insert(0, str(Path(__file__).parent))  # helpers such as pg_server
os.environ.setdefault("ARFLOW_FAST", "1")
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


@pytest.fixture(scope="session")
def postgres_server():
    """A real PostgreSQL server on loopback for the session (skipped where the binaries are absent)."""
    from pg_server import PostgresServer, find_binaries

    bindir = find_binaries()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl, postgres) not found: "
                    "install PostgreSQL 15 to run the gradebook-on-PostgreSQL tests")
    server = PostgresServer(bindir)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_broker():
    """A real Redis server on loopback for the session, as a broker URL (skipped where redis-server is absent)."""
    from redis_server import RedisServer, find_binary

    binary = find_binary()
    if binary is None:
        pytest.skip("redis-server not found: run `make system-deps` (Debian's redis-server) to run the tests "
                    "of the Celery executor")
    server = RedisServer(binary)
    url = server.start()
    yield url
    server.stop()
