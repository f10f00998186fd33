"""Records that hold up (art. 30): the audit chain — events for every server-side change and access,
a sealer that hash-links them, signed checkpoints, and the verification anyone holding the chain
can run."""
