"""Local mock GPU cloud for tests and `make demo`: a fake `upctl` and the helpers around it."""
