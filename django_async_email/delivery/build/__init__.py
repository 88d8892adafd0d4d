"""Build step: turn a claimed row into a ready message (message classes, rendering, links, tokens)."""
