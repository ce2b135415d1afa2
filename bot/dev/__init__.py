"""Development tools, not on the product's runtime path: the local Bot API stand-in and terminal play.

Left out of the Docker image (see .dockerignore)."""
