"""The bifrost and bifrost-admin command-line entry points."""
