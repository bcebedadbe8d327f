"""Images: content store, layer store, image store and the manager that ties them."""
