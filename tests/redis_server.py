"""A throwaway Redis server on loopback and Celery grading workers for the tests of ``--executor celery``
(the code lives in :mod:`autograder.local_cluster`, which the bench uses too). Where ``redis-server``
is absent, :func:`find_binary` returns None and the fixtures skip with a clear message."""

from autograder.local_cluster import CeleryWorkers, RedisServer, find_binary

__all__ = ["CeleryWorkers", "RedisServer", "find_binary"]
