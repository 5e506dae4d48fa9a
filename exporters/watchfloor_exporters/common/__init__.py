"""What both exporters share: batch ingestion, its limits and errors, the HTTP app, the CLI."""
