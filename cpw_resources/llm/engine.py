"""The one LLM batch engine: every request any LLM task makes goes through :class:`Engine`.

A *task* (:class:`Task`: translation, enhancement) says what differs: its name, its prompt (a
versioned system-text template), the JSON schema of its reply and the reply's list field, how
to write a batch (with the lines before it) as the user message, the content that identifies
an item's answer, the text an item keeps when it gets none, and the texts an answer is
measured against (its *basis*). The engine does the rest:

1. **Cache**: an item whose (task, prompt version, provider, model, content) was answered
   before, by any title or process of the home, is served from :class:`ReplyCache` (SQLite)
   for free; identical items in one run are sent once and the copies follow the first.
2. **Batch** ``batch_size`` items per request with the ``context_lines`` before them.
   Transcript text is untrusted: it travels only as JSON data in the user message.
3. **Check** every reply strictly (:func:`parse_reply`: pydantic in strict mode, every id once,
   text a non-empty string; ``null``, a number or an object is a bad reply; line breaks are
   collapsed), and every answer for plausibility (:func:`check_answers`: within its length
   budget, no timing-like text or long number its input lacks, no run of words echoed from
   the instructions). A bad reply is asked again once, then the
   batch is split in halves down to one item, which keeps its text as ``rejected`` when it
   still fails. An item may also have a character limit (the task's optional ``limit``:
   enhancement's subtitle budget): a good reply's answers within their limits are taken, and
   the items whose answers are longer are asked again once, alone, then keep their text as
   ``over_char_budget`` (cached answers are held to the limit too).
4. **Fall back** to the next provider when one fails after its retries (``ServiceError``, an
   open breaker included); when all fail the batch keeps its text as ``failed``.
5. **Budget** (optional): before each request (an ask-again too) its worst case is checked
   against the :class:`Budget`'s room: all the input tokens its bytes can count and all of
   ``max_tokens`` (:meth:`~cpw_resources.llm.providers.Sent.worst_cost`); the providers book
   no reply above that (implausible usage is replaced by the estimate), so no reply spends
   more than the room it was checked against. A request that would pass it stops the run and
   the rest keeps its text as ``budget``.
6. **Account** requests, tokens and dollars of every reply, good or bad, in the
   :class:`Outcome`, and report progress.

Item statuses: ``done`` (answered now), ``cached``, ``kept`` (not sent), ``failed``,
``rejected``, ``over_char_budget``, ``budget``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import sqlite3
import time
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from cpw_resources.llm.pricing import Price
from cpw_resources.llm.providers import Completion, LlmProvider, Sent
from cpw_resources.services.reliability import ServiceError
from cpw_resources.subtitles.rules import TIMING_LIKE, text_chars

_SQLITE_MAX_PARAMS = 500


@dataclass(frozen=True)
class Prompt:
    """A task's fixed instructions: a system-text template and its version. The version is
    part of every cache key (and of the assets' reuse keys), so a changed prompt never gets
    the old prompt's replies."""

    version: int
    template: str

    def render(self, **values: str) -> str:
        return self.template.format(**values)


def reply_schema(list_field: str) -> dict[str, Any]:
    """The JSON schema of ``{list_field: [{"id": <int>, "text": <str>}]}`` (strict output)."""
    return {
        "type": "object",
        "properties": {list_field: {"type": "array", "items": {
            "type": "object",
            "properties": {"id": {"type": "integer"}, "text": {"type": "string"}},
            "required": ["id", "text"], "additionalProperties": False,
        }}},
        "required": [list_field], "additionalProperties": False,
    }


class Item(Protocol):
    @property
    def id(self) -> int: ...


T = TypeVar("T", bound=Item)


class Task(Protocol[T]):
    """What one kind of LLM work supplies to the engine."""

    name: str
    prompt: Prompt
    schema: dict[str, Any]
    list_field: str

    def system(self) -> str:
        """The rendered prompt (fixed text: no transcript data in it)."""

    def user(self, batch: Sequence[T], context: Sequence[T]) -> str:
        """The user message: the batch and its context lines as JSON data."""

    def cache_content(self, item: T) -> Any:
        """JSON-able content that determines the item's answer (besides provider and prompt)."""

    def original(self, item: T) -> str:
        """The text the item keeps when it gets no answer."""

    def basis(self, item: T) -> Sequence[str]:
        """The texts an answer for the item is measured against (:func:`implausible`)."""

    # Optional: ``limit(item) -> int | None``, the most characters (:func:`text_chars`) an
    # answer for the item may have; a task without it has no limit.


# --------------------------------------------------------------------------- replies


class BadReply(ValueError):
    """The model's reply is not the JSON the schema and the batch ask for."""


class _ReplyItem(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    id: int
    text: str


@lru_cache(maxsize=16)
def _reply_model(list_field: str) -> type[BaseModel]:
    return create_model(f"Reply_{list_field}",
                        __config__=ConfigDict(extra="forbid", strict=True),
                        **{list_field: (list[_ReplyItem], ...)})


def parse_reply(text: str, ids: Sequence[int], list_field: str) -> dict[int, str]:
    """The reply's text by id; BadReply unless every id of the batch is there exactly once
    with a non-empty string (whitespace runs become one space)."""
    try:
        reply = _reply_model(list_field).model_validate_json(text)
    except ValidationError as error:
        first = error.errors()[0]
        raise BadReply(f"reply is not the expected JSON ({first['type']} at "
                       f"{'.'.join(map(str, first['loc'])) or 'top'})") from error
    items: list[_ReplyItem] = getattr(reply, list_field)
    got = [item.id for item in items]
    if sorted(got) != sorted(ids) or len(set(got)) != len(got):
        raise BadReply(f"reply ids {got} are not the batch's {list(ids)} exactly once")
    texts = {item.id: " ".join(item.text.split()) for item in items}
    if any(not t for t in texts.values()):
        raise BadReply("reply has an empty text")
    return texts


#: An answer may be this many times as wide as the widest text it answers (translation: the
#: source; enhancement: the MT or the source). Subtitle translations between languages differ
#: by well under 2x in display width (Chinese → English about 1.7x once wide characters count
#: two columns) and an edit rephrases or shortens; 3x leaves room for both, while a reply that
#: pads, repeats or writes a subtitle file of its own (10x turned 7 cues into 40) is refused.
MAX_REPLY_GROWTH = 3.0
#: ... but never fewer columns than one full subtitle line: a short line may fairly grow
#: several-fold ("हाँ" → "Yes, of course, sir.").
MIN_REPLY_WIDTH = 42


def display_width(text: str) -> int:
    """Columns ``text`` takes: East Asian wide and fullwidth characters count two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


#: Words in a row an answer may share with the instructions (and not its input) before it
#: counts as an echo of them, which small models write instead of a translation.
ECHO_WORDS = 5
#: Digits in a row an answer may add that its input does not have (a year said in words is
#: rare; an invented PIN, password or phone number is what this stops).
ADDED_DIGITS = 4
_WORD = re.compile(r"\w+")


def _shingles(text: str, n: int = ECHO_WORDS) -> set[tuple[str, ...]]:
    words = _WORD.findall(text.lower())
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def implausible(text: str, basis: Sequence[str], instructions: str = "") -> str | None:
    """Why ``text`` cannot be a good answer for an item with input texts ``basis``, else None.

    Too wide: more than ``MAX_REPLY_GROWTH`` times the widest input (at least
    ``MIN_REPLY_WIDTH``). Timing-like text (``-->``, ``00:01:02.500``) that no input has: a
    model writing subtitle timings is not translating the line, so the answer is refused and
    asked again rather than cleaned into the subtitles. (Line breaks are only layout, which the
    cue builder owns: :func:`parse_reply` collapses them.)
    """
    limit = max(MIN_REPLY_WIDTH,
                math.ceil(MAX_REPLY_GROWTH * max(map(display_width, basis), default=0)))
    width = display_width(text)
    if width > limit:
        return f"is {width} columns wide where at most {limit} are plausible"
    known = {found for source in basis for found in TIMING_LIKE.findall(source)}
    added = sorted(set(TIMING_LIKE.findall(text)) - known)
    if added:
        return f"adds timing-like text {added[0]!r}"
    digits = {run for source in basis for run in re.findall(r"\d+", source)}
    invented = [run for run in re.findall(rf"\d{{{ADDED_DIGITS},}}", text) if run not in digits]
    if invented:
        return f"adds the number {invented[0]}, which its input does not have"
    if instructions:
        echoed = _shingles(text) & _shingles(instructions)
        echoed -= {s for source in basis for s in _shingles(source)}
        if echoed:
            return f"echoes the instructions ({' '.join(sorted(echoed)[0])!r} …)"
    return None


def over_limit(text: str, limit: int | None) -> str | None:
    """Why ``text`` is longer than an item's character ``limit`` allows, else None."""
    if limit is None or (chars := text_chars(text)) <= limit:
        return None
    return f"is {chars} characters long where its budget is {limit} (over_char_budget)"


def check_answers(texts: Mapping[int, str], basis: Mapping[int, Sequence[str]],
                  instructions: str = "") -> None:
    """BadReply naming the first answer that is :func:`implausible` for its item."""
    for item_id, text in texts.items():
        reason = implausible(text, basis[item_id], instructions)
        if reason is not None:
            raise BadReply(f"the answer for id {item_id} {reason}")


# --------------------------------------------------------------------------- cache, budget


class ReplyCache:
    """Answers by content key, shared by every task, title and process of a home (SQLite)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        with self._connect() as db:
            db.execute("create table if not exists replies (key text primary key, "
                       "text text not null, by text not null, created real not null)")

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30)
        db.execute("pragma journal_mode=wal")
        return db

    @staticmethod
    def key(task: str, prompt_version: int, service: str, model: str, content: str) -> str:
        parts = [task, prompt_version, service, model, content]
        return hashlib.sha256(json.dumps(parts, ensure_ascii=False).encode()).hexdigest()

    def get_many(self, keys: Sequence[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        with self._connect() as db:
            for start in range(0, len(keys), _SQLITE_MAX_PARAMS):
                chunk = list(keys[start:start + _SQLITE_MAX_PARAMS])
                marks = ",".join("?" * len(chunk))
                found.update(db.execute(f"select key, text from replies where key in ({marks})",
                                        chunk).fetchall())
        return found

    def put_many(self, rows: Sequence[tuple[str, str, str]]) -> None:
        """(key, text, provider label) rows."""
        with self._connect() as db:
            db.executemany("insert or replace into replies values (?, ?, ?, ?)",
                           [(k, t, by, time.time()) for k, t, by in rows])


@dataclass
class Budget:
    """Dollars already spent on this title and today, and the limits; optionally seconds too
    (a local model costs no dollars but time: ``seconds_limit`` of requests per run)."""

    title_limit: float
    day_limit: float
    title_spent: float = 0.0
    day_spent: float = 0.0
    seconds_limit: float | None = None

    def room(self) -> float:
        """Dollars left under both limits; a negative total (a bad record) counts as none."""
        return min(self.title_limit - max(0.0, self.title_spent),
                   self.day_limit - max(0.0, self.day_spent))

    def spend(self, dollars: float) -> None:
        self.title_spent += dollars
        self.day_spent += dollars


# --------------------------------------------------------------------------- the engine


@dataclass
class Outcome:
    """Per item (by id): text, status and the ``service:model`` that answered; and totals."""

    text: dict[int, str]
    status: dict[int, str]
    by: dict[int, str] = field(default_factory=dict)
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    cache_hits: int = 0
    errors: list[str] = field(default_factory=list)
    budget_stopped: bool = False

    def count(self, status: str) -> int:
        return sum(1 for s in self.status.values() if s == status)


@dataclass
class Engine:
    """Sends a task's items through ``providers`` (primary first, then the fallbacks)."""

    providers: Sequence[tuple[LlmProvider, Price | None]]
    cache: ReplyCache | None = None
    budget: Budget | None = None  # None: no cap
    batch_size: int = 20
    context_lines: int = 0
    max_tokens: int = 4096
    on_cache_hits: Callable[[str, str, int], None] | None = None  # service, model, items
    progress: Callable[[float], None] | None = None

    def run(self, task: Task[T], items: Sequence[T],
            timeline: Sequence[T] | None = None) -> Outcome:
        """Answer ``items``; context lines come from ``timeline`` (default: ``items``)."""
        return _Run(self, task, items, items if timeline is None else timeline).go()


def _label(provider: LlmProvider) -> str:
    return f"{provider.service}:{provider.model}"


class _Run(Generic[T]):
    """One :meth:`Engine.run`: its items, its outcome and its progress."""

    def __init__(self, engine: Engine, task: Task[T], items: Sequence[T],
                 timeline: Sequence[T]) -> None:
        self.engine, self.task, self.items = engine, task, list(items)
        self.timeline = list(timeline)
        self.position = {item.id: i for i, item in enumerate(self.timeline)}
        self.content = {item.id: json.dumps(task.cache_content(item), ensure_ascii=False,
                                            sort_keys=True) for item in self.items}
        self.system = task.system()
        self.seconds = 0.0  # spent waiting for providers' replies
        self.out = Outcome({item.id: task.original(item) for item in self.items},
                           {item.id: "kept" for item in self.items})
        self.done = 0

    def go(self) -> Outcome:
        todo = self._from_cache(self.items)
        # Identical items are sent once; the copies follow the first.
        first: dict[str, T] = {}
        copies: list[tuple[T, T]] = []
        for item in todo:
            original = first.setdefault(self.content[item.id], item)
            if original is not item:
                copies.append((original, item))
        unique = list(first.values())
        size = max(1, self.engine.batch_size)
        for start in range(0, len(unique), size):
            if self.out.budget_stopped:
                break
            self._send(unique[start:start + size])
        if self.out.budget_stopped:
            for item in unique:
                if self.out.status[item.id] == "kept":
                    self.out.status[item.id] = "budget"
        self._follow(copies)
        return self.out

    def _key(self, item: T, provider: LlmProvider) -> str:
        return ReplyCache.key(self.task.name, self.task.prompt.version, provider.service,
                              provider.model, self.content[item.id])

    def _from_cache(self, items: list[T]) -> list[T]:
        cache, out = self.engine.cache, self.out
        if cache is None:
            return items
        left = items
        for provider, _ in self.engine.providers:
            keys = {item.id: self._key(item, provider) for item in left}
            found = cache.get_many(list(dict.fromkeys(keys.values())))
            # An answer cached before today's checks is asked for again if they refuse it.
            hits = {item.id for item in left if keys[item.id] in found
                    and implausible(found[keys[item.id]], self.task.basis(item),
                                    self.system) is None
                    and over_limit(found[keys[item.id]], self._limit(item)) is None}
            for item_id in hits:
                out.text[item_id], out.status[item_id] = found[keys[item_id]], "cached"
                out.by[item_id] = _label(provider)
            if hits:
                out.cache_hits += len(hits)
                if self.engine.on_cache_hits is not None:
                    self.engine.on_cache_hits(provider.service, provider.model, len(hits))
                self._advance(len(hits))
            left = [item for item in left if item.id not in hits]
        return left

    def _follow(self, copies: list[tuple[T, T]]) -> None:
        out = self.out
        for original, copy in copies:
            if out.status[original.id] == "done":
                out.text[copy.id], out.status[copy.id] = out.text[original.id], "cached"
                out.by[copy.id] = out.by[original.id]
                out.cache_hits += 1
            else:
                out.status[copy.id] = out.status[original.id]
        self._advance(len(copies))

    def _context(self, batch: Sequence[T]) -> list[T]:
        first = self.position.get(batch[0].id)
        if first is None or self.engine.context_lines <= 0:
            return []
        return self.timeline[max(0, first - self.engine.context_lines):first]

    def _limit(self, item: T) -> int | None:
        limit = getattr(self.task, "limit", None)
        return None if limit is None else limit(item)

    def _send(self, batch: Sequence[T], again: bool = False) -> None:
        """One batch: a bad reply is asked again once, then the batch is split; a provider
        that fails hands the batch to the next. Answers over their item's limit are asked
        again once (``again``: this is that time), then keep their text."""
        user = self.task.user(batch, self._context(batch))
        ids = [item.id for item in batch]
        for provider, price in self.engine.providers:
            bad = 0
            while bad < 2:
                if self._over_budget(price, user, self._max_tokens(batch)):
                    self.out.budget_stopped = True
                    return
                asked = time.monotonic()
                try:
                    reply = provider.complete(self.system, user,
                                              max_tokens=self._max_tokens(batch),
                                              schema=self.task.schema, items=len(batch))
                except ServiceError as error:
                    self.out.errors.append(str(error))
                    break  # this provider is failing: the next one, if any
                finally:
                    self.seconds += time.monotonic() - asked
                self._account(reply)
                try:
                    texts = parse_reply(reply.text, ids, self.task.list_field)
                    check_answers(texts, {item.id: self.task.basis(item) for item in batch},
                                  self.system)
                except BadReply as error:
                    self.out.errors.append(f"{_label(provider)}: {error}")
                    bad += 1
                    continue
                long = {item.id: why for item in batch
                        if (why := over_limit(texts[item.id], self._limit(item)))}
                self._accept([item for item in batch if item.id not in long], texts, provider)
                if long:
                    self._over_limit([item for item in batch if item.id in long], long,
                                     provider, again)
                return
            if bad == 2:  # the provider answers, but not this batch: split it
                self._split(batch, again)
                return
        for item in batch:
            self.out.status[item.id] = "failed"
        self._advance(len(batch))

    def _over_limit(self, items: Sequence[T], why: Mapping[int, str], provider: LlmProvider,
                    again: bool) -> None:
        """Items whose answers were too long: asked again once, then they keep their text."""
        self.out.errors.extend(f"{_label(provider)}: the answer for id {item.id} {why[item.id]}"
                               for item in items)
        if not again:
            self._send(items, again=True)
            return
        for item in items:
            self.out.status[item.id] = "over_char_budget"
        self._advance(len(items))

    def _split(self, batch: Sequence[T], again: bool = False) -> None:
        if len(batch) == 1:
            self.out.status[batch[0].id] = "rejected"
            self._advance(1)
            return
        half = len(batch) // 2
        self._send(batch[:half], again)
        if not self.out.budget_stopped:
            self._send(batch[half:], again)

    def _max_tokens(self, batch: Sequence[T]) -> int:
        """Room for the reply: every answer up to :data:`MAX_REPLY_GROWTH` times its widest
        input (about 3 characters a token) plus the JSON around it, at most the engine's
        ``max_tokens``. A model that loops inside a string stops there instead of writing
        thousands of tokens (minutes on a CPU) that the checks would refuse anyway."""
        chars = sum(max(map(len, self.task.basis(item)), default=0) for item in batch)
        need = 64 + 24 * len(batch) + math.ceil(MAX_REPLY_GROWTH * chars / 3)
        return min(self.engine.max_tokens, need)

    def _over_budget(self, price: Price | None, user: str, max_tokens: int) -> bool:
        """Whether the request's worst case passes the budget's room (in seconds: the time
        spent on requests so far plus one more of their average length)."""
        budget = self.engine.budget
        if budget is None:
            return False
        if budget.seconds_limit is not None and self.seconds:
            average = self.seconds / max(1, self.out.requests)
            if self.seconds + average > budget.seconds_limit:
                return True
        sent = Sent.of(self.system, user, self.task.schema, max_tokens)
        cost = sent.worst_cost(price) if price is not None else 0.0
        return cost > budget.room() + 1e-12

    def _account(self, reply: Completion) -> None:
        out = self.out
        out.requests += 1
        out.input_tokens += reply.input_tokens
        out.output_tokens += reply.output_tokens
        cost = reply.cost_usd or 0.0
        out.cost_usd += cost
        if self.engine.budget is not None:
            self.engine.budget.spend(cost)

    def _accept(self, batch: Sequence[T], texts: dict[int, str],
                provider: LlmProvider) -> None:
        label = _label(provider)
        for item in batch:
            self.out.text[item.id], self.out.status[item.id] = texts[item.id], "done"
            self.out.by[item.id] = label
        if self.engine.cache is not None:
            self.engine.cache.put_many([(self._key(item, provider), texts[item.id], label)
                                        for item in batch])
        self._advance(len(batch))

    def _advance(self, n: int) -> None:
        self.done += n
        if self.engine.progress is not None and n:
            self.engine.progress(min(1.0, self.done / max(1, len(self.items))))
