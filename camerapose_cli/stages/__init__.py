"""Batch stages on the one stage skeleton (base): extract, refine, lift."""
