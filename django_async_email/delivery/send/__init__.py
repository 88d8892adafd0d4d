"""Send step: the connection, the SMTP fast path, the sender and the classification of errors."""
