"""Amounts and dates as printed, read for the schema's normalisation, the offline rules
and the evidence check alike."""
