"""The durable runner: claims due operations, runs one step at a time, commits transition + journal."""
