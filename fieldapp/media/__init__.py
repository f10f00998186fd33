"""Media received from the phones: where the bytes live (``storage``: a local folder or S3, with
resumable uploads), what the bytes are (``sniff``) and what the server derives from a completed
original (``pipeline``). Originals are evidence and are never modified."""
