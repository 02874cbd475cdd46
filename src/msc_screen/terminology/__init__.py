"""Code systems: canonical names for the many spellings of a system URI, code normalisation,
check digits and value-set expansion."""
