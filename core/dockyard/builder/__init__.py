"""Image builds: the Dockerfile parser, variable expansion, .dockerignore and the build context."""
