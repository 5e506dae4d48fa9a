"""The alert hub: Alertmanager's webhook in, current alerts kept in SQLite, pushed to browsers."""
