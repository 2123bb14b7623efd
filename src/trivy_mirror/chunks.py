"""The one size every stream of the package reads and writes in: files, archives, HTTP bodies, hashes.

1 MiB keeps the per-chunk overhead (an event-loop round trip, a thread hop, a hash update) small against the
bytes moved, while a few chunks in flight per transfer keep memory flat whatever the blob size.
"""

CHUNK_SIZE = 1024 * 1024
