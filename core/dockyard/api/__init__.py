"""The Docker Engine API over HTTP: transport, routing and the handlers' JSON shapes.

Nothing in this package owns state or touches the kernel; handlers translate HTTP into
calls on the engine's managers and their results into Docker's JSON.
"""
