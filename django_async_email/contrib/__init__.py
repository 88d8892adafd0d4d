"""Optional helpers that are not part of the email path itself."""
