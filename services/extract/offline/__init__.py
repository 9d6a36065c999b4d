"""The offline extractor and its rules: labels, company names, addresses, layout, OCR slips."""
