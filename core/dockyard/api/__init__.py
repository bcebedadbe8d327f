"""The Docker Engine API over HTTP: transport, routing and the handlers' JSON shapes.

Nothing in this package owns state or touches the kernel; handlers parse a request once
into typed values, call the engine's managers, and turn their results into Docker's JSON.
Only the daemon process imports it (`dockyard.api.app` builds the routes).
"""
