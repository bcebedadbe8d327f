"""BuildKit's messages and gRPC stubs, generated at build time from ../proto by setup.py
(grpcio-tools). Nothing here is written by hand; the buildkit package imports it."""
