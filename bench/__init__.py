"""Benchmarks of Argosy against its peers on a real Ceph RGW (`python -m bench.s3`).

Not part of the installed package: run from the repository root. Imports nothing, so a
peer script started as `python -m bench.peer_X` loads only its own tool.
"""
