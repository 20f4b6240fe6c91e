"""Did-you-mean for the command line: the flag, command or choice closest to a near-miss.

``--top_k`` is ``--top-k`` (underscores for hyphens, any case); otherwise the closest of the
command's own flags by :func:`difflib.get_close_matches`. Python's argparse suggests nothing
before 3.14 (``suggest_on_error``), and never for an unknown flag.
"""

from __future__ import annotations

import argparse
import difflib
from collections.abc import Iterable, Sequence

CUTOFF = 0.7  # difflib's similarity needed to suggest a name (--threds: 0.92, --foo: none)


def closest(word: str, names: Iterable[str]) -> str | None:
    """The name ``word`` most likely meant, or None when none is close."""
    names = list(names)
    if word in names:
        return None
    normal = _normal(word)
    same = [n for n in names if _normal(n) == normal]
    if same:
        return same[0]
    by_normal = {_normal(n): n for n in names}
    found = difflib.get_close_matches(normal, list(by_normal), n=1, cutoff=CUTOFF)
    return by_normal[found[0]] if found else None


def _normal(name: str) -> str:
    """``--Top_K`` and ``-top-k`` as ``--top-k``; a choice's underscores as hyphens."""
    bare = name.lstrip("-").replace("_", "-").lower()
    return ("--" + bare) if name.startswith("-") else bare


def command_parser(parser: argparse.ArgumentParser, args: argparse.Namespace):
    """The parser of the (sub)command ``args`` chose: ``vidcls dataset check``'s, not
    ``vidcls``'s."""
    while True:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        chosen = getattr(args, subs[0].dest, None) if subs else None
        if chosen is None or chosen not in subs[0].choices:
            return parser
        parser = subs[0].choices[chosen]


def flags_of(parser: argparse.ArgumentParser) -> list[str]:
    """The long flags ``parser`` lists in its help (hidden aliases left out)."""
    return [
        s
        for a in parser._actions
        if a.help is not argparse.SUPPRESS
        for s in a.option_strings
        if s.startswith("--")
    ]


def unknown_flags(unknown: Sequence[str], flags: Iterable[str]) -> str:
    """``"; did you mean --top-k?"`` for arguments left unparsed (``--top_k=3`` too), or ""
    when none is close to a flag."""
    flags = list(flags)
    pairs = []
    for arg in unknown:
        if arg.startswith("-") and len(arg) > 1 and not _number(arg):
            name = arg.split("=", 1)[0]
            guess = closest(name, flags)
            if guess is not None:
                pairs.append((name, guess))
    if not pairs:
        return ""
    if len(pairs) == 1:
        return f"; did you mean {pairs[0][1]}?"
    return "; did you mean " + ", ".join(f"{g} (for {n})" for n, g in pairs) + "?"


def _number(arg: str) -> bool:
    """``-1`` or ``-0.5``: a value, not a flag."""
    try:
        float(arg)
    except ValueError:
        return False
    return True


def choice(value: object, choices: Iterable[object]) -> str:
    """``"; did you mean 'val'?"`` for a value not among ``choices``, or ""."""
    names = [str(c) for c in choices]
    guess = closest(str(value), names)
    return "" if guess is None else f"; did you mean {guess!r}?"
