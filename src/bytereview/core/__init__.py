"""Library code shared by every ByteReview process: settings, storage, streams, auth, gRPC."""
