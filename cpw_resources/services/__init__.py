"""Outside services: the reliability layer (breakers, retries, deadlines) and TMDB."""
