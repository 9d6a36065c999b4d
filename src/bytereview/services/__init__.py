"""The gRPC services; each folder under services/ is mapped here by a symlink."""
