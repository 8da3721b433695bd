"""Name matching before the model: which of the twin's nodes and links a request mentions (ids, names, country
and city names, typos), so the model chooses among those only."""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass, field

from netpilot.model.network import Network

# ISO 3166 two-letter codes as networks name their PoPs (GÉANT uses UK and SL, not GB and SI).
COUNTRIES = {
    "AT": "austria", "BE": "belgium", "BG": "bulgaria", "BY": "belarus", "CH": "switzerland", "CY": "cyprus",
    "CZ": "czechia czech republic", "DE": "germany", "DK": "denmark", "EE": "estonia", "ES": "spain",
    "FI": "finland", "FR": "france", "GR": "greece", "HR": "croatia", "HU": "hungary", "IE": "ireland",
    "IL": "israel", "IS": "iceland", "IT": "italy", "LT": "lithuania", "LU": "luxembourg", "LV": "latvia",
    "MD": "moldova", "ME": "montenegro", "MK": "macedonia north macedonia", "MT": "malta", "NL": "netherlands holland",
    "NO": "norway", "PL": "poland", "PT": "portugal", "RO": "romania", "RS": "serbia", "RU": "russia",
    "SE": "sweden", "SI": "slovenia", "SL": "slovenia", "SK": "slovakia", "TR": "turkey", "UA": "ukraine",
    "UK": "united kingdom britain", "GB": "united kingdom britain", "US": "united states",
}
# Cities by coordinates: a request names the city a PoP sits in; it matches the nearest node within
# CITY_RADIUS_KM, so the table serves any network with locations.
CITIES = {
    "frankfurt": (50.11, 8.68), "berlin": (52.52, 13.40), "munich": (48.14, 11.58), "hamburg": (53.55, 9.99),
    "vienna": (48.21, 16.37), "amsterdam": (52.37, 4.90), "brussels": (50.85, 4.35), "copenhagen": (55.68, 12.57),
    "poznan": (52.41, 16.93), "warsaw": (52.23, 21.01), "prague": (50.09, 14.42), "luxembourg": (49.61, 6.13),
    "paris": (48.86, 2.35), "geneva": (46.20, 6.14), "bern": (46.95, 7.45), "zurich": (47.38, 8.54),
    "milan": (45.46, 9.19), "rome": (41.90, 12.50), "sofia": (42.70, 23.32), "bucharest": (44.43, 26.10),
    "ankara": (39.93, 32.86), "athens": (37.98, 23.73), "nicosia": (35.17, 33.36), "tel aviv": (32.09, 34.78),
    "valletta": (35.90, 14.51), "budapest": (47.50, 19.04), "bratislava": (48.15, 17.11), "lisbon": (38.72, -9.14),
    "madrid": (40.42, -3.70), "belgrade": (44.79, 20.45), "zagreb": (45.81, 15.98), "ljubljana": (46.06, 14.51),
    "vilnius": (54.69, 25.28), "moscow": (55.76, 37.62), "reykjavik": (64.14, -21.94), "dublin": (53.35, -6.26),
    "london": (51.51, -0.13), "oslo": (59.91, 10.75), "stockholm": (59.33, 18.07), "helsinki": (60.17, 24.94),
    "tallinn": (59.44, 24.75), "riga": (56.95, 24.11), "skopje": (42.00, 21.43), "podgorica": (42.44, 19.26),
    "new york": (40.71, -74.01), "chicago": (41.85, -87.65), "washington": (38.90, -77.04),
    "seattle": (47.61, -122.33), "los angeles": (34.05, -118.24), "denver": (39.74, -104.98),
    "houston": (29.76, -95.36), "atlanta": (33.75, -84.39), "sunnyvale": (37.37, -122.04),
    "kansas city": (39.11, -94.63), "indianapolis": (39.77, -86.16),
}
# Other names of those cities (local spellings and short forms), matched as the city is.
CITY_ALIASES = {
    "wien": "vienna", "muenchen": "munich", "munchen": "munich", "praha": "prague", "warszawa": "warsaw",
    "lisboa": "lisbon", "roma": "rome", "milano": "milan", "bruxelles": "brussels", "brussel": "brussels",
    "geneve": "geneva", "genf": "geneva", "zuerich": "zurich", "kobenhavn": "copenhagen", "athina": "athens",
    "beograd": "belgrade", "bucuresti": "bucharest", "frankfurt am main": "frankfurt", "new york city": "new york",
    "nyc": "new york", "washington dc": "washington", "la": "los angeles", "kc": "kansas city",
    "indy": "indianapolis",
}
# Adjectives of countries: "the German router".
DEMONYMS = {
    "austrian": "AT", "belgian": "BE", "bulgarian": "BG", "belarusian": "BY", "swiss": "CH", "cypriot": "CY",
    "czech": "CZ", "german": "DE", "danish": "DK", "estonian": "EE", "spanish": "ES", "finnish": "FI",
    "french": "FR", "greek": "GR", "croatian": "HR", "hungarian": "HU", "irish": "IE", "israeli": "IL",
    "icelandic": "IS", "italian": "IT", "lithuanian": "LT", "luxembourgish": "LU", "latvian": "LV",
    "moldovan": "MD", "montenegrin": "ME", "macedonian": "MK", "maltese": "MT", "dutch": "NL", "norwegian": "NO",
    "polish": "PL", "portuguese": "PT", "romanian": "RO", "serbian": "RS", "russian": "RU", "swedish": "SE",
    "slovenian": "SI SL", "slovak": "SK", "turkish": "TR", "ukrainian": "UA", "british": "UK GB",
    "american": "US",
}
CITY_RADIUS_KM = 150.0
_WORD = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True)
class Mention:
    """A node the request names: where (character span) and by which words."""

    node: str
    start: int
    end: int
    words: str


@dataclass
class NameIndex:
    """Aliases of every node of a network, longest first, and its links as unordered pairs."""

    network: Network
    aliases: list[tuple[str, str]] = field(default_factory=list)  # (alias words, node id)
    links: set[frozenset[str]] = field(default_factory=set)

    def __post_init__(self) -> None:
        seen: set[tuple[str, str]] = set()

        def add(alias: str, node: str) -> None:
            words = " ".join(_WORD.findall(alias.lower()))
            if words and (words, node) not in seen:
                seen.add((words, node))
                self.aliases.append((words, node))

        for node in self.network.nodes:
            add(node.id, node.id)
            add(node.name or node.id, node.id)
            # Repetita/Zoo ids carry an index: "3_Seattle".
            add(re.sub(r"^\d+_", "", node.id).replace("_", " "), node.id)
            if node.kind == "router" and node.id.upper() in COUNTRIES:
                for name in _country_names(COUNTRIES[node.id.upper()]):
                    add(name, node.id)
                for demonym, codes in DEMONYMS.items():
                    if node.id.upper() in codes.split():
                        add(demonym, node.id)
        routers = [n for n in self.network.nodes if n.kind == "router" and n.location is not None
                   and (n.location.lat or n.location.lon)]
        for city, (lat, lon) in CITIES.items():
            best = min(routers, key=lambda n: _km(lat, lon, n.location.lat, n.location.lon), default=None)
            if best is not None and _km(lat, lon, best.location.lat, best.location.lon) <= CITY_RADIUS_KM:
                add(city, best.id)
                for alias, same in CITY_ALIASES.items():
                    if same == city:
                        add(alias, best.id)
        self.aliases.sort(key=lambda a: -len(a[0]))
        self.links = {frozenset((lk.source, lk.target)) for lk in self.network.links}

    def mentions(self, text: str) -> list[Mention]:
        """Nodes named in ``text``, in the order they appear; exact aliases first (longest wins), then close
        misspellings of aliases of four letters or more."""
        tokens = [(m.group(), m.start(), m.end()) for m in _WORD.finditer(text.lower())]
        taken = [False] * len(tokens)
        found: list[tuple[int, Mention]] = []
        by_length: dict[int, dict[str, str]] = {}
        for words, node in self.aliases:
            by_length.setdefault(len(words.split()), {}).setdefault(words, node)
        for size in sorted(by_length, reverse=True):
            for i in range(len(tokens) - size + 1):
                if any(taken[i:i + size]):
                    continue
                words = " ".join(t[0] for t in tokens[i:i + size])
                node = by_length[size].get(words)
                if node is None or (size == 1 and len(words) == 2 and not _looks_like_code(text, tokens[i])
                                    and words not in _SHORT_FORMS):
                    continue
                taken[i:i + size] = [True] * size
                found.append((i, Mention(node, tokens[i][1], tokens[i + size - 1][2], words)))
        long_aliases = {w: n for w, n in self.aliases if len(w) >= 5 and " " not in w}
        for i, (word, start, end) in enumerate(tokens):
            if taken[i] or len(word) < 5:
                continue
            # A typo: one edit (two from eight letters on), a swap of neighbours counting as one.
            allowed = 1 if len(word) < 8 else 2
            close = [w for w in difflib.get_close_matches(word, long_aliases, n=5, cutoff=0.6)
                     if typo_distance(word, w) <= allowed]
            if close:
                taken[i] = True
                found.append((i, Mention(long_aliases[close[0]], start, end, word)))
        # A typo in a name of several words ("0_Nwe_York", "Kansas Ctiy"): the words together, one edit (two from
        # eight letters on), the same number of words.
        for size in sorted((k for k in by_length if k > 1), reverse=True):
            spaced = [w for w in by_length[size] if len(w) >= 8]
            for i in range(len(tokens) - size + 1):
                if any(taken[i:i + size]):
                    continue
                words = " ".join(t[0] for t in tokens[i:i + size])
                allowed = 1 if len(words) < 10 else 2
                close = [w for w in spaced if abs(len(w) - len(words)) <= allowed
                         and typo_distance(words, w) <= allowed and w.split()[0][:1] == words[:1]]
                if close:
                    best = min(close, key=lambda w: typo_distance(words, w))
                    taken[i:i + size] = [True] * size
                    found.append((i, Mention(by_length[size][best], tokens[i][1], tokens[i + size - 1][2], words)))
        found.sort(key=lambda f: f[0])
        return [m for _, m in found]

    def linked(self, a: str, b: str) -> bool:
        return frozenset((a, b)) in self.links

    def neighbours(self, node: str) -> list[str]:
        return sorted(next(iter(pair - {node})) for pair in self.links if node in pair and len(pair) == 2)


def typo_distance(a: str, b: str) -> int:
    """Edits between ``a`` and ``b``: insertions, deletions, substitutions and swaps of neighbouring letters
    (optimal string alignment)."""
    rows = [list(range(len(b) + 1))]
    for i in range(1, len(a) + 1):
        row = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            row[j] = min(rows[-1][j] + 1, row[j - 1] + 1, rows[-1][j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                row[j] = min(row[j], rows[-2][j - 2] + 1)
        rows.append(row)
    return rows[-1][-1]


#: Two-letter short forms that count in lower case too (they are no English word).
_SHORT_FORMS = frozenset({"kc", "nyc"})


def _looks_like_code(text: str, token: tuple[str, int, int]) -> bool:
    """A two-letter alias counts only written as a code (upper case: "DE", not the word "de" or "it")."""
    return text[token[1]:token[2]].isupper()


def _country_names(names: str) -> list[str]:
    parts = names.split()
    # "czechia czech republic": the first word, and the rest as one name when there is a rest.
    return [parts[0]] + ([" ".join(parts[1:])] if len(parts) > 1 else [])


def _km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    return 12742.0 * math.asin(math.sqrt(min(1.0, a)))
