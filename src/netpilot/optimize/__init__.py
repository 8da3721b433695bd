"""Decisions: traffic engineering now; RAN slicing and edge-inference placement join it here."""
