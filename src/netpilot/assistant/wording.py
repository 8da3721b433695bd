"""How operators word requests, read by code: which numbers can be metrics (digits or number words, not
capacities, shares, times or dates) and the operator's synonyms written as the worked examples' words (for
retrieving the nearest examples)."""

from __future__ import annotations

import re

_SMALL = {w: i for i, w in enumerate(
    [
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
        "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"
    ])}
_TENS = {w: 10 * (i + 2) for i, w in enumerate([
    "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"
])}
_SCALE = {"hundred": 100, "thousand": 1000}
_NUM = "(?:" + "|".join([*_SMALL, *_TENS, *_SCALE]) + ")"
_NUMBER_WORD = re.compile(rf"\b{_NUM}(?:[\s-]+(?:and[\s-]+)?{_NUM})*\b", re.IGNORECASE)
# A number with a unit after it is a capacity, a share, a duration or a time, not a metric.
_UNIT = (r"(?:%|percent|per\s?cent|[kmgt]b?(?:it)?(?:/s|ps)?|[kmgt]bit/s|gig\w*|meg\w*|ms|msec|s|secs?|seconds?|"
         r"mins?|minutes?|h|hrs?|hours?|days?|am|pm|km|x|ports?|cores?|nodes?|routers?|links?|am|pm|st|nd|rd|th)")
_DIGITS = re.compile(r"(?<![\w.:/-])(\d{1,6})(?![\w.:/-])(?!\s*" + _UNIT + r"\b)(?!\s*%)", re.IGNORECASE)
_METRIC_WORD = re.compile(r"\b(metric|cost|weight|weigh|igp|ospf|is-?is|to|of|at)\W*$", re.IGNORECASE)


def number_words(text: str) -> str:
    """``text`` with numbers written in words as digits ("forty" -> "40", "two hundred and fifty" -> "250"); a lone
    "one" to "nine" stays a word ("that one")."""
    def value(match: re.Match) -> str:
        words = [w.lower() for w in re.split(r"[\s-]+", match.group(0)) if w and w.lower() != "and"]
        if len(words) == 1 and words[0] in _SMALL and _SMALL[words[0]] < 10:
            return match.group(0)
        total = current = 0
        for w in words:
            if w in _SMALL:
                current += _SMALL[w]
            elif w in _TENS:
                current += _TENS[w]
            elif w == "hundred":
                current = max(current, 1) * 100
            else:  # thousand
                total, current = total + max(current, 1) * 1000, 0
        return str(total + current)

    return _NUMBER_WORD.sub(value, text)


def metric_numbers(text: str) -> list[int]:
    """The numbers of ``text`` that can be a metric, those right after a metric word ("cost 40", "to 40") first,
    then in the order written; numbers with a unit (10G, 95 %, 2am, 23:00, 100 Gbit/s) are left out."""
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", number_words(text))  # 1,000
    after_word, others = [], []
    for match in _DIGITS.finditer(text):
        (after_word if _METRIC_WORD.search(text[max(0, match.start() - 24):match.start()]) else others).append(
            int(match.group(1)))
    return list(dict.fromkeys(after_word + others))


# Operators' words for what the worked examples say, as the examples say it (only for finding the nearest
# examples: the model is given the request as typed). Longer phrases first.
SYNONYMS: tuple[tuple[str, str], ...] = (
    # a link down
    (r"\b(?:shut\s?down|shut\s?off|power(?:ed)?\s+off|admin(?:istratively)?\s+down|deactivate|kill)\b", "shut"),
    (r"\b(?:turn|switch)(?:ed)?\s+((?:\S+\s+){0,4}?)off\b", r"disable \1"),
    (r"\btake\s+((?:\S+\s+){0,7}?)(?:out\s+of\s+service|offline)\b", r"take \1 down"),
    (r"\bbring\s+down\b", "take down"),
    # a link up
    (r"\b(?:re-?enable|un-?shut|no\s+shut|restore|reactivate|re-?activate)\b", "enable again"),
    (r"\b(?:turn|switch)(?:ed)?\s+((?:\S+\s+){0,4}?)on\b", r"enable \1"),
    (r"\b(?:bring|put)\s+((?:\S+\s+){0,7}?)(?:online|back\s+(?:in|into)\s+service)\b", r"bring \1 back up"),
    (r"\breturn\s+((?:\S+\s+){0,7}?)to\s+service\b", r"bring \1 back up"),
    # a metric
    (r"\b(?:weight|weigh|weighs)\b", "cost"),
    (r"\b(?:ospf|is-?is|isis|te)\s+(?:metric|cost)\b", "igp cost"),
    (r"\b(?:ospf|is-?is|isis)\b", "igp"),
    (r"\b(?:bump|raise|increase|lower|decrease|reduce)\b", "set"),
    # a drain
    (r"\b(?:offload|evacuate|cost\s+out|costing\s+out)\b", "drain"),
    (r"\boverload\s+bit\b", "maintenance mode"),
    (r"\b(?:move|shift|steer|divert|reroute|route|get)\s+(?:\S+\s+)?(?:traffic|flows|everything)\b",
     "move all traffic"),
    (r"\b(?:off|around)\b", "away from"),
    # questions
    (r"\b(?:alarms?|alerts?|outages?|tickets?)\b", "open incidents"),
    (r"\b(?:changed|changes|history|audit)\b", "change log"),
    (r"\b(?:(?:health|status)(?:\s+(?:summary|overview|report))?|summary|overview)\b", "how is the network doing"),
    (r"\b(?:forecast|predict|projected|expected)\b", "will congested later"),
    (r"\b(?:hot|loaded|utili[sz]ation|utili[sz]ed|load)\b", "busy"),
    # unsafe
    (r"\b(?:erase|delete|reset|factory\s+reset|reload|reboot)\b", "wipe"),
    (r"\b(?:configs?|running\s+config|startup\s+config)\b", "configuration"),
    (r"\b(?:whole|entire|each|simultaneously)\b", "every"),
    # US and British spellings
    (r"\bfiber\b", "fibre"),
)
_SYNONYMS = [(re.compile(p, re.IGNORECASE), r) for p, r in SYNONYMS]
# However a link is named ("A-B", "A to B", "A/B", "A <-> B", "between A and B"), it reads as "A B" (placeholders
# are single capitals).
_LINK = re.compile(r"(?:\bbetween\s+)?\b([A-D])\s*(?:-|–|—|/|<->|<>|->|\bto\b|\band\b)\s*([A-D])\b")


def canonical(text: str) -> str:
    """``text`` with operators' synonyms written as the worked examples' words ("kill" -> "shut", "weight" ->
    "cost", "offload" -> "drain") and a link between placeholders as "A B" however it is named; node
    placeholders (single capitals) are kept."""
    for pattern, replacement in _SYNONYMS:
        text = pattern.sub(replacement, text)
    text = _LINK.sub(r"\1 \2", text)
    return re.sub(r"\s+", " ", text).strip()
