"""A local Kubernetes-compatible API server on loopback plus simulated peer controllers."""
