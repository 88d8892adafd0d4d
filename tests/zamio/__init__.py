"""A host unlike the package's own test project, shaped like the platform the package replaces:
a custom user model whose manager does not take the user type, JWT auth, a custom DRF
exception handler, and front ends that verify and reset by code. Its settings and URLs
follow docs/migration.md step by step; ``test_switching_over.py`` runs them against a real
worker. Run it as the ``adopter`` stage of scripts/test.sh
(``python -m pytest --ds tests.zamio.settings tests/zamio``)."""
