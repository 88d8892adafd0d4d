"""The benchmark's host app: a user model with user types, and the competitors' tasks."""
