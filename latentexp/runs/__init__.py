"""The runs layer: what names and finds a run. Its spec (identity, hash, name, λ), its directory and
the formats of the files in it, the lock that lets one job train it, the user's code in its identity,
and `latentexp status`."""
