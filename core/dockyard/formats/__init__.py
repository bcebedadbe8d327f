"""What users and the API write, parsed: pure functions the CLI and the daemon share.

Image references, mount requests (`-v`, `--mount`), `.dockerignore` patterns, detach
keys, registry credentials and names, list filters, and go-units sizes. Nothing here
does I/O beyond reading a file it is handed, or imports a manager, the daemon or the
CLI, so either side may import any of it.
"""
