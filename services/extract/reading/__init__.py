"""Reading a document's text: PDF text layers and OCR, page by page, and the readings kept
per stored file."""
