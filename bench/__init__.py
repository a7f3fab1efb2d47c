"""scoter's benchmark suite against its peers: `python -m bench` (see bench/README.md)."""
