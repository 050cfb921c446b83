"""User accounts: create, read, list, change and delete; the first admin at start-up."""
