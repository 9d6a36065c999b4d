"""Generated from protos/; regenerate with `make proto`."""
