"""The extract service: AI extraction workers (Gemini or offline) and the Preview RPC."""
