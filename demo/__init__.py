"""`argosy demo`: Argosy on this machine alone, with no outside server.

A round trip of a file and a folder through an S3 server in this process (`roundtrip`),
then Argo example workflows run by a small local engine (`workflows`, `engine`, `spec`)
whose steps are real `argosy init`, `emissary` and `wait` processes in a sandbox of their
own (`pod`, `sandbox`), and one pass of the GC controller over them (`gc`). None of it
is used by the sidecar, the GC or the commands; it sits on top of them.
"""
