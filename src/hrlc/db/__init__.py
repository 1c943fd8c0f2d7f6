"""Database plumbing shared by the components that keep their own tables (versioned SQL migrations)."""
