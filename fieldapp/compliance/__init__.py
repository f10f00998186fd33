"""The compliance engine: checks of synced records against the regulation and the laws it rests
on, each finding citing its article (the findings themselves are data in the rules catalogue)."""
