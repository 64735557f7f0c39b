"""Checks of the home assignments, written once and run two ways.

A check asks a submission questions (*probes*: build this layer, apply it to these arrays,
sample from this net) and judges the plain arrays it gets back. The same check function runs

- at home and under plain nbgrader, on :class:`arflow.checks.box.LocalBox`, which answers the
  probes by calling the notebook's own objects in the same process (convenient; it trusts the
  kernel), and
- in the course's hardened grader, on ``autograder.sandbox.Box``, which answers them from a
  jailed process that holds the student's code and nothing else (the verdict is decided
  outside the student's kernel).

``result`` holds the verdict type, ``box`` the in-process box and the protocol both boxes
speak. The assignments' own probes and visible checks live beside them (one module each);
their hidden checks and reference answers live in the grader, never here.
"""
