"""The Kubernetes edge: the only importer of the kubernetes client."""
