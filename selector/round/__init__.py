"""One selection round as a library call: pool, embeddings, scoring, suspects, the round record."""
