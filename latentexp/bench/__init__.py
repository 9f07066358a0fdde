"""`latentexp bench`: the machine's limit (roofline) and each backbone's training step against it."""
