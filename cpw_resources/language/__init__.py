"""Language: glossaries (sidecars, TMDB names, cultural terms) and text matching."""
