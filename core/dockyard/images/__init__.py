"""Images: the content store (blobs by digest), the layer store (chain ids over the
storage driver), the image store (records and names), and the manager that ties them.

The image manager owns every image record; registries, the builder and containers
reach images only through it. Only the engine, the API and those managers import
this package.
"""
