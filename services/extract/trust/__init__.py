"""The platform's check of every extraction: quotes located in the text, calibrated confidence."""
