"""Offline tasks generated from tables in this module (no downloads needed).

A fresh clone with no downloaded data still has real tasks to measure: every task here is
generated deterministically, in the "function-vector" format (a list of
``{"input": str, "output": str}`` dicts), from the word lists and tables below.

Two groups, mirroring the paper's split:

- ``rule_understanding``: letter tasks (capitalize, first/last letter, lowercase), list tasks
  (choose first/middle/last of 3, alphabetically first/last of 3), sequence tasks (next/previous
  day, month, number word, letter; the ends are skipped, no wrap-around) and lookup tables
  (country -> capital, verb -> past tense, singular -> plural, antonyms).
- ``text_classification``: synthetic movie-review sentiment (positive / negative) and synthetic
  news-headline topics (the AG News label set: World, Sports, Business, Science).

Randomness only ever comes from ``random.Random(seed)`` with a fixed per-task seed, so
``generate(name)`` returns the same list on every call, on every machine.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import random
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = [
    "BUILTIN_TASK_NAMES",
    "answer_vocabulary",
    "generate",
    "task_group",
    "write_builtin_tasks",
]

Example = dict[str, str]

# --------------------------------------------------------------------------------------------
# Data tables
# --------------------------------------------------------------------------------------------

#: Common English words (lowercase, letters only, distinct) for the letter and list tasks.
WORDS: tuple[str, ...] = tuple(
    """
    apple river chair table house water bread music light green money paper world story
    garden window doctor family friend summer winter spring autumn school teacher student
    mother father sister brother animal flower forest mountain ocean island city village
    road bridge train plane boat car bicycle horse tiger lion bear wolf rabbit mouse bird
    eagle fish shark whale cat dog cow sheep goat chicken orange banana grape lemon cherry
    peach melon carrot potato tomato onion garlic pepper salt sugar butter cheese milk coffee
    tea juice soup rice pasta pizza cake cookie candy honey egg meat kitchen bedroom bathroom
    door floor wall roof garage office market bank library museum hospital church castle
    tower street park beach desert valley lake cloud rain snow storm wind thunder sun moon
    star planet rocket computer phone camera radio clock watch lamp mirror pillow blanket
    bottle glass plate spoon fork knife basket bucket hammer ladder rope pencil letter book
    magazine picture painting song dance game ball kite puzzle button shirt jacket coat hat
    shoe sock glove scarf ring necklace diamond gold silver iron stone sand wood fire smoke
    ice shadow dream idea question answer reason number circle square triangle king queen
    prince knight soldier farmer baker pilot nurse artist writer singer driver captain
    engine wheel machine battery candle jungle meadow harbor canyon volcano nest feather
    shell pearl violin piano guitar drum trumpet flute ticket wallet pocket
    umbrella helmet tent map compass journey holiday birthday morning evening night week
    """.split()
)
# Guard against accidental repeats in the literal above: keep first occurrences only.
WORDS = tuple(dict.fromkeys(WORDS))

DAYS: tuple[str, ...] = (
    "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday",
)
MONTHS: tuple[str, ...] = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)
NUMBER_WORDS: tuple[str, ...] = (
    "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
    "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen",
    "twenty",
)
LETTERS: tuple[str, ...] = tuple("abcdefghijklmnopqrstuvwxyz")
#: The ordered sequences used by ``builtin_next_item`` / ``builtin_prev_item``.
SEQUENCES: tuple[tuple[str, ...], ...] = (DAYS, MONTHS, NUMBER_WORDS, LETTERS)

COUNTRY_CAPITALS: dict[str, str] = {
    "France": "Paris", "Germany": "Berlin", "Italy": "Rome", "Spain": "Madrid",
    "Portugal": "Lisbon", "United Kingdom": "London", "Ireland": "Dublin",
    "Belgium": "Brussels", "Netherlands": "Amsterdam", "Switzerland": "Bern",
    "Austria": "Vienna", "Poland": "Warsaw", "Czech Republic": "Prague", "Hungary": "Budapest",
    "Greece": "Athens", "Sweden": "Stockholm", "Norway": "Oslo", "Denmark": "Copenhagen",
    "Finland": "Helsinki", "Iceland": "Reykjavik", "Russia": "Moscow", "Ukraine": "Kyiv",
    "Romania": "Bucharest", "Bulgaria": "Sofia", "Serbia": "Belgrade", "Croatia": "Zagreb",
    "Slovakia": "Bratislava", "Slovenia": "Ljubljana", "Estonia": "Tallinn", "Latvia": "Riga",
    "Lithuania": "Vilnius", "Belarus": "Minsk", "Albania": "Tirana", "Turkey": "Ankara",
    "Egypt": "Cairo", "Kenya": "Nairobi", "Nigeria": "Abuja", "Ethiopia": "Addis Ababa",
    "Ghana": "Accra", "Morocco": "Rabat", "Algeria": "Algiers", "Tunisia": "Tunis",
    "Senegal": "Dakar", "Uganda": "Kampala", "Zimbabwe": "Harare", "Zambia": "Lusaka",
    "Angola": "Luanda", "Sudan": "Khartoum", "Libya": "Tripoli", "Somalia": "Mogadishu",
    "Rwanda": "Kigali", "Mali": "Bamako", "Madagascar": "Antananarivo", "Mozambique": "Maputo",
    "China": "Beijing", "Japan": "Tokyo", "South Korea": "Seoul", "North Korea": "Pyongyang",
    "India": "New Delhi", "Pakistan": "Islamabad", "Bangladesh": "Dhaka", "Nepal": "Kathmandu",
    "Afghanistan": "Kabul", "Iran": "Tehran", "Iraq": "Baghdad", "Saudi Arabia": "Riyadh",
    "Syria": "Damascus", "Jordan": "Amman", "Lebanon": "Beirut", "Thailand": "Bangkok",
    "Vietnam": "Hanoi", "Indonesia": "Jakarta", "Philippines": "Manila",
    "Malaysia": "Kuala Lumpur", "Cambodia": "Phnom Penh", "Laos": "Vientiane",
    "Mongolia": "Ulaanbaatar", "Kazakhstan": "Astana", "Uzbekistan": "Tashkent",
    "Qatar": "Doha", "Kuwait": "Kuwait City", "Oman": "Muscat", "United States": "Washington",
    "Canada": "Ottawa", "Mexico": "Mexico City", "Cuba": "Havana", "Jamaica": "Kingston",
    "Guatemala": "Guatemala City", "Honduras": "Tegucigalpa", "Nicaragua": "Managua",
    "Costa Rica": "San Jose", "Panama": "Panama City", "Colombia": "Bogota",
    "Venezuela": "Caracas", "Ecuador": "Quito", "Peru": "Lima", "Chile": "Santiago",
    "Argentina": "Buenos Aires", "Uruguay": "Montevideo", "Paraguay": "Asuncion",
    "Brazil": "Brasilia", "Australia": "Canberra", "New Zealand": "Wellington", "Fiji": "Suva",
}

#: Verbs with a single standard simple past (ambiguous ones such as dream/learn are left out).
PRESENT_PAST: dict[str, str] = {
    "go": "went", "see": "saw", "eat": "ate", "take": "took", "give": "gave", "come": "came",
    "make": "made", "know": "knew", "think": "thought", "find": "found", "tell": "told",
    "become": "became", "leave": "left", "feel": "felt", "bring": "brought", "begin": "began",
    "keep": "kept", "hold": "held", "write": "wrote", "stand": "stood", "hear": "heard",
    "run": "ran", "meet": "met", "sit": "sat", "speak": "spoke", "lead": "led", "grow": "grew",
    "lose": "lost", "fall": "fell", "send": "sent", "build": "built",
    "understand": "understood", "draw": "drew", "break": "broke", "spend": "spent",
    "rise": "rose", "drive": "drove", "buy": "bought", "wear": "wore", "choose": "chose",
    "sing": "sang", "swim": "swam", "drink": "drank", "fly": "flew", "forget": "forgot",
    "sleep": "slept", "teach": "taught", "catch": "caught", "sell": "sold", "win": "won",
    "throw": "threw", "ride": "rode", "steal": "stole", "freeze": "froze", "bite": "bit",
    "hide": "hid", "shake": "shook", "fight": "fought", "feed": "fed", "dig": "dug",
    "ring": "rang", "blow": "blew", "put": "put", "cut": "cut", "hit": "hit", "shut": "shut",
    "walk": "walked", "talk": "talked", "play": "played", "jump": "jumped", "cook": "cooked",
    "clean": "cleaned", "open": "opened", "close": "closed", "watch": "watched",
    "listen": "listened", "help": "helped", "call": "called", "ask": "asked", "want": "wanted",
    "need": "needed", "love": "loved", "like": "liked", "live": "lived", "move": "moved",
    "try": "tried", "study": "studied", "carry": "carried", "cry": "cried", "stop": "stopped",
    "plan": "planned", "smile": "smiled", "dance": "danced", "visit": "visited",
    "paint": "painted", "start": "started", "finish": "finished", "work": "worked",
    "laugh": "laughed", "climb": "climbed", "wash": "washed", "push": "pushed",
    "pull": "pulled", "wait": "waited",
}

#: Nouns with a single standard plural (ambiguous ones such as fish/cactus are left out).
SINGULAR_PLURAL: dict[str, str] = {
    "cat": "cats", "dog": "dogs", "book": "books", "car": "cars", "tree": "trees",
    "house": "houses", "apple": "apples", "chair": "chairs", "table": "tables",
    "bird": "birds", "flower": "flowers", "river": "rivers", "mountain": "mountains",
    "friend": "friends", "teacher": "teachers", "student": "students", "window": "windows",
    "door": "doors", "girl": "girls", "song": "songs", "street": "streets", "hand": "hands",
    "eye": "eyes", "pen": "pens", "cup": "cups", "star": "stars", "road": "roads",
    "horse": "horses", "shoe": "shoes", "ship": "ships", "child": "children", "man": "men",
    "woman": "women", "mouse": "mice", "foot": "feet", "tooth": "teeth", "goose": "geese",
    "person": "people", "ox": "oxen", "box": "boxes", "bus": "buses", "church": "churches",
    "dish": "dishes", "watch": "watches", "glass": "glasses", "class": "classes",
    "fox": "foxes", "brush": "brushes", "kiss": "kisses", "city": "cities", "baby": "babies",
    "party": "parties", "story": "stories", "lady": "ladies", "country": "countries",
    "family": "families", "cherry": "cherries", "key": "keys", "day": "days", "toy": "toys",
    "boy": "boys", "monkey": "monkeys", "knife": "knives", "leaf": "leaves", "wife": "wives",
    "wolf": "wolves", "shelf": "shelves", "half": "halves", "life": "lives", "loaf": "loaves",
    "potato": "potatoes", "tomato": "tomatoes", "hero": "heroes", "echo": "echoes",
    "piano": "pianos", "photo": "photos", "sheep": "sheep", "deer": "deer", "roof": "roofs",
    "chief": "chiefs", "bench": "benches", "lunch": "lunches", "wish": "wishes",
    "puppy": "puppies", "army": "armies", "hat": "hats", "bag": "bags", "bed": "beds",
    "map": "maps", "desk": "desks", "lamp": "lamps", "coin": "coins", "egg": "eggs",
    "king": "kings", "queen": "queens", "sock": "socks", "bridge": "bridges",
    "village": "villages", "beach": "beaches", "body": "bodies", "valley": "valleys",
}

#: Antonym pairs; every word appears in exactly one pair, and both directions are used.
ANTONYM_PAIRS: tuple[tuple[str, str], ...] = (
    ("hot", "cold"), ("big", "small"), ("up", "down"), ("left", "right"), ("open", "closed"),
    ("happy", "sad"), ("fast", "slow"), ("light", "dark"), ("rich", "poor"), ("young", "old"),
    ("early", "late"), ("strong", "weak"), ("hard", "soft"), ("wet", "dry"), ("full", "empty"),
    ("high", "low"), ("good", "bad"), ("true", "false"), ("thick", "thin"), ("long", "short"),
    ("loud", "quiet"), ("clean", "dirty"), ("win", "lose"), ("push", "pull"), ("buy", "sell"),
    ("love", "hate"), ("begin", "end"), ("first", "last"), ("inside", "outside"),
    ("above", "below"), ("before", "after"), ("day", "night"), ("black", "white"),
    ("in", "out"), ("on", "off"), ("yes", "no"), ("always", "never"), ("give", "take"),
    ("come", "go"), ("question", "answer"), ("friend", "enemy"), ("alive", "dead"),
    ("safe", "dangerous"), ("easy", "difficult"), ("cheap", "expensive"), ("wide", "narrow"),
    ("deep", "shallow"), ("sharp", "dull"), ("polite", "rude"), ("kind", "cruel"),
    ("sweet", "sour"), ("north", "south"), ("east", "west"), ("top", "bottom"),
    ("front", "back"), ("increase", "decrease"), ("accept", "reject"), ("arrive", "depart"),
    ("remember", "forget"), ("include", "exclude"), ("maximum", "minimum"),
    ("success", "failure"), ("victory", "defeat"), ("war", "peace"), ("asleep", "awake"),
    ("beautiful", "ugly"), ("entrance", "exit"), ("major", "minor"), ("present", "absent"),
    ("private", "public"), ("ancient", "modern"), ("future", "past"),
    ("visible", "invisible"), ("possible", "impossible"), ("horizontal", "vertical"),
    ("lend", "borrow"), ("brave", "cowardly"), ("wise", "foolish"),
)

# ----- sentiment ----------------------------------------------------------------------------
REVIEW_ASPECTS: tuple[str, ...] = (
    "acting", "plot", "script", "soundtrack", "cinematography", "dialogue", "pacing",
    "ending", "direction", "story",
)
POSITIVE_ADJECTIVES: tuple[str, ...] = (
    "superb", "brilliant", "gripping", "wonderful", "excellent", "moving", "delightful",
    "charming", "stunning", "masterful", "clever", "captivating",
)
NEGATIVE_ADJECTIVES: tuple[str, ...] = (
    "dull", "dreadful", "boring", "clumsy", "awful", "tedious", "weak", "predictable",
    "lifeless", "painful", "forgettable", "terrible",
)
POSITIVE_PHRASES: tuple[str, ...] = (
    "i would happily watch it again", "a must-see for everyone", "i loved every minute",
    "easily the best film of the year", "it left me smiling for days",
)
NEGATIVE_PHRASES: tuple[str, ...] = (
    "i walked out halfway through", "a complete waste of time", "i regret buying a ticket",
    "easily the worst film of the year", "i could barely stay awake",
)
#: Per class: sentence templates over {a1}, {a2} (distinct aspects), {j1}, {j2} (adjectives),
#: {p} (a closing phrase).
REVIEW_TEMPLATES: tuple[str, ...] = (
    "the {a1} was {j1} and the {a2} {j2}",
    "a {j1} film with {j2} {a2}",
    "the {a1} was {j1}; {p}",
    "i found the {a1} {j1} and the {a2} even more {j2}",
)
SENTIMENT_PER_CLASS = 200

# ----- topic (AG News labels) ---------------------------------------------------------------
TOPIC_LABELS: tuple[str, ...] = ("World", "Sports", "Business", "Science")
#: Per label: (template, {slot: fillers}); every combination of fillers is a candidate headline.
TOPIC_TEMPLATES: dict[str, tuple[tuple[str, dict[str, tuple[str, ...]]], ...]] = {
    "World": (
        ("{leader} of {country} meets neighbours to discuss {issue}", {
            "leader": ("President", "Prime Minister", "Foreign Minister"),
            "country": ("Kenya", "Brazil", "Poland", "Japan", "Egypt", "Canada"),
            "issue": ("border security", "refugee crisis", "ceasefire talks", "climate pact"),
        }),
        ("Thousands protest in {city} over {grievance}", {
            "city": ("Nairobi", "Lima", "Warsaw", "Manila", "Cairo", "Madrid", "Seoul"),
            "grievance": ("election results", "fuel shortages", "new security law",
                          "corruption charges", "curfew orders"),
        }),
        ("UN calls for {action} in {region}", {
            "action": ("humanitarian access", "an immediate truce", "peace talks",
                       "aid corridors"),
            "region": ("the Sahel", "the Middle East", "Central Asia", "the Horn of Africa",
                       "the Balkans"),
        }),
    ),
    "Sports": (
        ("{team1} beat {team2} {score} in {competition} {stage}", {
            "team1": ("Lions", "Eagles", "Sharks"),
            "team2": ("Rovers", "Falcons", "Titans"),
            "score": ("2-1", "3-0", "4-2"),
            "competition": ("league", "cup"),
            "stage": ("opener", "final"),
        }),
        ("{athlete} wins {event} gold at {meet}", {
            "athlete": ("Sprinter", "Swimmer", "Veteran cyclist", "Teen gymnast"),
            "event": ("100m", "marathon", "relay", "all-around"),
            "meet": ("world championships", "national trials", "Olympic games"),
        }),
        ("Star {position} signs {years}-year deal with {club}", {
            "position": ("striker", "goalkeeper", "quarterback", "pitcher"),
            "years": ("two", "three", "five"),
            "club": ("City", "United", "the Rangers"),
        }),
    ),
    "Business": (
        ("{company} shares {move} after {news}", {
            "company": ("Acme Corp", "Globex", "Initech", "Northwind Traders", "Vertex Bank"),
            "move": ("jump", "slide", "surge", "tumble"),
            "news": ("quarterly earnings report", "CEO resigns", "merger talks",
                     "profit warning"),
        }),
        ("{commodity} prices {move} as {driver}", {
            "commodity": ("Oil", "Copper", "Wheat", "Coffee"),
            "move": ("climb", "fall", "steady"),
            "driver": ("demand weakens", "supply tightens", "the dollar strengthens",
                       "investors await rate decision"),
        }),
        ("Central bank {verb} interest rates to {rate} percent", {
            "verb": ("raises", "cuts", "holds"),
            "rate": ("two", "three", "four", "five"),
        }),
    ),
    "Science": (
        ("Researchers discover {thing} in {place}", {
            "thing": ("new frog species", "ancient bacteria", "fossilized feathers",
                      "deep-sea coral", "a giant virus", "a new beetle species"),
            "place": ("the Amazon", "Antarctic ice", "a Siberian cave", "the Pacific floor",
                      "a volcanic lake"),
        }),
        ("{agency} launches probe to study {body}", {
            "agency": ("NASA", "ESA", "JAXA", "ISRO"),
            "body": ("Jupiter's moons", "a distant asteroid", "the solar wind", "Mars' climate",
                     "Venus' clouds", "Saturn's rings"),
        }),
        ("New study links {cause} to {effect}", {
            "cause": ("gut bacteria", "sleep loss", "air pollution", "ocean warming",
                      "a single gene"),
            "effect": ("memory decline", "coral bleaching", "immune response", "crop yields",
                       "longer lifespan"),
        }),
        ("{instrument} telescope spots {sighting}", {
            "instrument": ("Space", "Radio", "Infrared"),
            "sighting": ("earliest known galaxy", "water on an exoplanet", "a colliding star pair",
                         "a rogue black hole", "a comet's icy tail"),
        }),
    ),
}
TOPIC_PER_CLASS = 60

# --------------------------------------------------------------------------------------------
# Generators
# --------------------------------------------------------------------------------------------

_N_LIST_EXAMPLES = 150
_BASE_SEED = 20240517  # fixed, so the list tasks are identical on every call and machine


def _letter_task(fn: Callable[[str], tuple[str, str]]) -> Callable[[], list[Example]]:
    """Build a generator mapping each word of ``WORDS`` to ``{"input", "output"}`` via ``fn``."""

    def gen() -> list[Example]:
        return [dict(zip(("input", "output"), fn(w))) for w in WORDS]

    return gen


def _triples(seed: int, n: int = _N_LIST_EXAMPLES) -> list[tuple[str, str, str]]:
    """``n`` distinct ordered triples of distinct words, drawn with ``random.Random(seed)``."""
    rng = random.Random(seed)
    seen: set[tuple[str, str, str]] = set()
    out: list[tuple[str, str, str]] = []
    while len(out) < n:
        a, b, c = rng.sample(WORDS, 3)
        triple = (a, b, c)
        if triple not in seen:
            seen.add(triple)
            out.append(triple)
    return out


def _list_task(offset: int, pick: Callable[[Sequence[str]], str]) -> Callable[[], list[Example]]:
    """Build a generator of "a, b, c" -> ``pick([a, b, c])`` examples with seed base+offset."""

    def gen() -> list[Example]:
        return [{"input": ", ".join(t), "output": pick(t)} for t in _triples(_BASE_SEED + offset)]

    return gen


def _sequence_task(step: int) -> Callable[[], list[Example]]:
    """Next (``step=1``) or previous (``step=-1``) item of ``SEQUENCES``, ends skipped."""

    def gen() -> list[Example]:
        out: list[Example] = []
        for seq in SEQUENCES:
            for i, item in enumerate(seq):
                j = i + step
                if 0 <= j < len(seq):
                    out.append({"input": item, "output": seq[j]})
        return out

    return gen


def _table_task(table: dict[str, str]) -> Callable[[], list[Example]]:
    """Build a generator of one example per ``table`` entry, in table order."""

    def gen() -> list[Example]:
        return [{"input": k, "output": v} for k, v in table.items()]

    return gen


def _antonyms() -> list[Example]:
    """Both directions of every pair in ``ANTONYM_PAIRS``."""
    out: list[Example] = []
    for a, b in ANTONYM_PAIRS:
        out.append({"input": a, "output": b})
        out.append({"input": b, "output": a})
    return out


def _fill_all(template: str, slots: dict[str, tuple[str, ...]]) -> list[str]:
    """Every filling of ``template`` by the cartesian product of its slot fillers."""
    keys = sorted(slots)
    return [
        template.format(**dict(zip(keys, values)))
        for values in itertools.product(*(slots[k] for k in keys))
    ]


def _reviews(adjectives: Sequence[str], phrases: Sequence[str]) -> list[str]:
    """All candidate review sentences of one class, sorted and de-duplicated."""
    out: set[str] = set()
    for template in REVIEW_TEMPLATES:
        for a1, a2 in itertools.permutations(REVIEW_ASPECTS, 2):
            for j1, j2 in itertools.permutations(adjectives, 2):
                for p in phrases:
                    out.add(template.format(a1=a1, a2=a2, j1=j1, j2=j2, p=p))
    return sorted(out)


def _balanced(candidates: dict[str, list[str]], per_class: int, seed: int) -> list[Example]:
    """Sample ``per_class`` inputs for each label, then shuffle, all with one fixed seed.

    Raises:
        ValueError: a sentence is a candidate for two labels, or a class is too small.
    """
    owners: dict[str, str] = {}
    for label, texts in candidates.items():
        for text in texts:
            if owners.setdefault(text, label) != label:
                raise ValueError(f"{text!r} is generated for both {owners[text]} and {label}")
    rng = random.Random(seed)
    out: list[Example] = []
    for label, texts in candidates.items():
        pool = sorted(set(texts))
        if len(pool) < per_class:
            raise ValueError(f"only {len(pool)} candidates for {label}, need {per_class}")
        out.extend({"input": t, "output": label} for t in rng.sample(pool, per_class))
    rng.shuffle(out)
    return out


def _sentiment() -> list[Example]:
    """Synthetic movie reviews, ``SENTIMENT_PER_CLASS`` per class."""
    return _balanced(
        {
            "positive": _reviews(POSITIVE_ADJECTIVES, POSITIVE_PHRASES),
            "negative": _reviews(NEGATIVE_ADJECTIVES, NEGATIVE_PHRASES),
        },
        SENTIMENT_PER_CLASS,
        _BASE_SEED + 100,
    )


def _topic() -> list[Example]:
    """Synthetic news headlines labelled with the AG News classes, ``TOPIC_PER_CLASS`` each."""
    candidates = {
        label: [h for template, slots in TOPIC_TEMPLATES[label] for h in _fill_all(template, slots)]
        for label in TOPIC_LABELS
    }
    return _balanced(candidates, TOPIC_PER_CLASS, _BASE_SEED + 200)


def _alpha_first(t: Sequence[str]) -> str:
    return min(t)


def _alpha_last(t: Sequence[str]) -> str:
    return max(t)


_GENERATORS: dict[str, Callable[[], list[Example]]] = {
    "builtin_capitalize": _letter_task(lambda w: (w, w.capitalize())),
    "builtin_first_letter": _letter_task(lambda w: (w, w[0])),
    "builtin_last_letter": _letter_task(lambda w: (w, w[-1])),
    "builtin_lowercase": _letter_task(lambda w: (w.upper(), w)),
    "builtin_choose_first_of_3": _list_task(1, lambda t: t[0]),
    "builtin_choose_middle_of_3": _list_task(2, lambda t: t[1]),
    "builtin_choose_last_of_3": _list_task(3, lambda t: t[2]),
    "builtin_alphabetically_first_3": _list_task(4, _alpha_first),
    "builtin_alphabetically_last_3": _list_task(5, _alpha_last),
    "builtin_next_item": _sequence_task(1),
    "builtin_prev_item": _sequence_task(-1),
    "builtin_country_capital": _table_task(COUNTRY_CAPITALS),
    "builtin_present_past": _table_task(PRESENT_PAST),
    "builtin_singular_plural": _table_task(SINGULAR_PLURAL),
    "builtin_antonym": _antonyms,
    "builtin_sentiment": _sentiment,
    "builtin_topic": _topic,
}

_CLASSIFICATION_VOCAB: dict[str, tuple[str, ...]] = {
    "builtin_sentiment": ("positive", "negative"),
    "builtin_topic": TOPIC_LABELS,
}

#: Every built-in task name, in a stable order.
BUILTIN_TASK_NAMES: tuple[str, ...] = tuple(_GENERATORS)


def _check_name(name: str) -> None:
    if name not in _GENERATORS:
        raise KeyError(
            f"unknown built-in task {name!r}; valid names: {', '.join(BUILTIN_TASK_NAMES)}"
        )


def generate(name: str) -> list[dict[str, str]]:
    """Examples of the built-in task ``name`` as ``[{"input": ..., "output": ...}, ...]``.

    The result is identical on every call (fresh list, safe to mutate).

    Raises:
        KeyError: ``name`` is not in ``BUILTIN_TASK_NAMES`` (the message lists the valid ones).
    """
    _check_name(name)
    return [{"input": i, "output": o} for i, o in _cached_pairs(name)]


@functools.lru_cache(maxsize=None)
def _cached_pairs(name: str) -> tuple[tuple[str, str], ...]:
    """Immutable, memoised ``(input, output)`` pairs of a task (generation is deterministic)."""
    return tuple((ex["input"], ex["output"]) for ex in _GENERATORS[name]())


def task_group(name: str) -> str:
    """``"text_classification"`` for sentiment/topic, ``"rule_understanding"`` otherwise.

    Raises:
        KeyError: unknown task name.
    """
    _check_name(name)
    return "text_classification" if name in _CLASSIFICATION_VOCAB else "rule_understanding"


def answer_vocabulary(name: str) -> list[str] | None:
    """The distinct outputs of a classification task, or ``None`` for open-answer tasks.

    Raises:
        KeyError: unknown task name.
    """
    _check_name(name)
    vocab = _CLASSIFICATION_VOCAB.get(name)
    return list(vocab) if vocab is not None else None


def write_builtin_tasks(dest_dir: Path) -> list[Path]:
    """Write every task to ``<dest_dir>/<name>.json`` (JSON list, ``indent=1``), atomically.

    Each file is written to a temporary file in ``dest_dir`` and moved into place with
    ``os.replace``, so readers never see a half-written file. Returns the paths written, in
    ``BUILTIN_TASK_NAMES`` order.
    """
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for name in BUILTIN_TASK_NAMES:
        target = dest_dir / f"{name}.json"
        fd, tmp = tempfile.mkstemp(dir=dest_dir, prefix=f".{name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(generate(name), fh, indent=1, ensure_ascii=False)
                fh.write("\n")
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        paths.append(target)
    return paths
