"""TMDB API v3 client: a film's cast, so the glossary knows its character and actor names, and
its directors and genres, so the context learner knows what the film is close to.

Credentials come from the ``tmdb`` resource: ``TMDB_API_KEY`` (v3 key, sent as the ``api_key``
parameter) or ``TMDB_READ_ACCESS_TOKEN`` (sent as a Bearer header); neither is ever logged,
recorded or put in an exception (the reliability layer masks them even when TMDB's reply
repeats them). Every request goes through the reliability layer (breaker ``tmdb``, retry
policies, timeouts, and the call's deadline on the request in progress). Successful
responses are kept under ``$CPW_HOME/responses/tmdb/`` keyed by request (without
credentials), so a re-run does not call TMDB again.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cpw_resources.atomic import write_json
from cpw_resources.services.reliability import MALFORMED, Reliability, ServiceError, http_client

SERVICE = "tmdb"
#: TMDB's movie genre ids (its fixed list, GET /genre/movie/list), so a search result's
#: ``genre_ids`` name the film's genres without another request.
GENRES = {28: "action", 12: "adventure", 16: "animation", 35: "comedy", 80: "crime",
          99: "documentary", 18: "drama", 10751: "family", 14: "fantasy", 36: "history",
          27: "horror", 10402: "music", 9648: "mystery", 10749: "romance",
          878: "science fiction", 10770: "tv movie", 53: "thriller", 10752: "war",
          37: "western"}
MAX_CAST = 40
_TITLE_YEAR = re.compile(r"^(?P<title>.+?)[\s._-]*[(\[]?(?P<year>(?:19|20)\d{2})[)\]]?\b")


def title_and_year(metadata: dict[str, Any], media: Path) -> tuple[str, int | None]:
    """The sidecar's title/year, else parsed from a name like ``Dil Chahta Hai (2001).mkv``."""
    if metadata.get("title"):
        year = metadata.get("year")
        return str(metadata["title"]), int(year) if year else None
    match = _TITLE_YEAR.match(media.stem)
    if match:
        return match["title"].replace(".", " ").strip(), int(match["year"])
    return media.stem.replace(".", " ").strip(), None


@dataclass(frozen=True)
class Film:
    tmdb_id: int
    cast: list[dict[str, str]]
    directors: list[str]
    genres: list[str]


class TmdbClient:
    def __init__(self, base_url: str, reliability: Reliability, *, cache_dir: Path,
                 api_key: str | None = None, read_token: str | None = None,
                 connect_timeout_s: float = 5.0, read_timeout_s: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.reliability = reliability
        self.cache_dir = cache_dir / SERVICE
        self._api_key, self._read_token = api_key, read_token
        self._timeouts = {"connect_s": connect_timeout_s, "read_s": read_timeout_s}

    def _get(self, operation: str, path: str, params: dict[str, Any]) -> dict[str, Any]:
        request_id = json.dumps([path, sorted(params.items())], default=str)
        cached = self.cache_dir / f"{hashlib.sha256(request_id.encode()).hexdigest()[:24]}.json"
        if cached.is_file():
            return json.loads(cached.read_text())

        def call() -> dict[str, Any]:
            query = dict(params)
            headers = {"accept": "application/json"}
            if self._read_token:
                headers["authorization"] = f"Bearer {self._read_token}"
            else:
                query["api_key"] = self._api_key
            import httpx  # ~0.3 s (it imports rich for its CLI): only when TMDB is asked

            with http_client(httpx, headers=headers, **self._timeouts) as client:
                response = client.get(self.base_url + path, params=query)
                response.raise_for_status()
                data = response.json()
            if not isinstance(data, dict):
                raise ServiceError(SERVICE, operation, MALFORMED, "reply is not a JSON object")
            return data

        data = self.reliability.call(SERVICE, operation, call)
        write_json(cached, data)
        return data

    def search_movie(self, title: str, year: int | None) -> dict[str, Any] | None:
        params: dict[str, Any] = {"query": title, "include_adult": "false"}
        if year:
            params["year"] = year
        results = self._get("search_movie", "/search/movie", params).get("results") or []
        return results[0] if results else None

    def credits(self, movie_id: int) -> tuple[list[dict[str, str]], list[str]]:
        """(cast, directors) of a film: one request (its cast and crew)."""
        credits = self._get("movie_credits", f"/movie/{int(movie_id)}/credits", {})
        people = []
        for member in (credits.get("cast") or [])[:MAX_CAST]:
            if isinstance(member, dict) and member.get("name"):
                people.append({"name": str(member["name"]),
                               "character": str(member.get("character") or "")})
        directors = [str(m["name"]) for m in credits.get("crew") or ()
                     if isinstance(m, dict) and m.get("job") == "Director" and m.get("name")]
        return people, list(dict.fromkeys(directors))

    def cast(self, movie_id: int) -> list[dict[str, str]]:
        return self.credits(movie_id)[0]

    def film_cast(self, title: str, year: int | None,
                  tmdb_id: int | None = None) -> tuple[int | None, list[dict[str, str]]]:
        """(TMDB id, cast) for a film; (None, []) when TMDB does not know it."""
        found = self.film(title, year, tmdb_id)
        return (found.tmdb_id, found.cast) if found is not None else (None, [])

    def film(self, title: str, year: int | None, tmdb_id: int | None = None) -> Film | None:
        """A film's TMDB id, cast, directors and genres (when found by search: its
        ``genre_ids`` named by :data:`GENRES`); None when TMDB does not know it."""
        genres: list[str] = []
        if tmdb_id is None:
            found = self.search_movie(title, year)
            if found is None or "id" not in found:
                return None
            tmdb_id = int(found["id"])
            genres = [GENRES[g] for g in found.get("genre_ids") or () if g in GENRES]
        cast, directors = self.credits(tmdb_id)
        return Film(tmdb_id, cast, directors, genres)
