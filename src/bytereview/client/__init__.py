"""The command-line REST client of the gateway."""
