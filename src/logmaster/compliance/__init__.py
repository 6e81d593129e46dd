"""Compliance: answering the questions Law 5651 asks of the records (attribution today)."""
