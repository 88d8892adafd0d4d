"""Plain Django pages: the link pages behind the emails' links and the staff-only previews."""
