"""Parts of the ingest benchmark (bench/ingest.py): payloads, processes, load."""
