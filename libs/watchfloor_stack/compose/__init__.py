"""The Compose stack's helpers behind `make up`: .env generation, pre-flight checks, URLs."""
