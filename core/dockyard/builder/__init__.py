"""The classic Dockerfile builder behind `POST /build`: the parser, variable expansion,
the build context, the layer cache and the builder that runs the steps.

It owns build caches and the context directories of builds in progress; images are the
image manager's, and RUN steps run through the container manager. The engine builds it
and the API calls it; `.dockerignore` matching lives in `dockyard.formats`, since the
CLI applies it too.
"""
