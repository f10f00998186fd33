"""Media received from the phones: what the bytes are (``sniff``) and what the server derives from a
completed original (``pipeline``). Originals are evidence and are never modified."""
