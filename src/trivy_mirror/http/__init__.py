"""HTTP for every remote side: the transport (sessions, TLS per side, retries, rate limits, deadlines) and the
translation of failed responses and connection errors into the package's errors.

It is neutral: the registry client, the VEX fetcher and parent mirrors all build on it, and it knows nothing of
OCI beyond the plain-HTTP rule for loopback and private hosts.
"""
