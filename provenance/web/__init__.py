"""The web layer: REST API and reviewer pages (`provenance serve`)."""
