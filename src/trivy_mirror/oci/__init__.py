"""OCI basics: references, digests, descriptors, manifests. Parsing and validation only, no I/O."""
