"""Vector indexes of reference sets: FAISS build, search, atomic save and load."""
