"""The archive: per-device daily append-only files, hash-chained, the legal record.

``line`` formats one received message as an archive line, ``chain`` holds the hash chain and its
sidecar file, ``writer`` appends lines in batches and recovers after a crash, ``verify``
recomputes the chains.
"""
