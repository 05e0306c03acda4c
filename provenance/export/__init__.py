"""Records as documents: versioned JSON now; evidence packs later."""
