"""ISO 15118 / DIN 70121 vehicle communication (V2G)."""
