"""Griffe extension for the API reference: the Sphinx roles in vidcls' docstrings
(:class:`~vidcls.results.FrameResult`, :func:`iter_video`) shown as code, since the
reference is Markdown."""

from __future__ import annotations

import re

from griffe import Extension, Object

ROLE = re.compile(r":(class|func|meth|mod|attr|data|exc|obj):`(~?)\.?([\w.]+)`")


def plain(text: str) -> str:
    """Each role as inline code: ``~a.b.C`` as ``C``, functions with ``()``."""

    def code(m: re.Match) -> str:
        kind, short, name = m.groups()
        name = name.rsplit(".", 1)[-1] if short else name
        return f"`{name}()`" if kind in ("func", "meth") else f"`{name}`"

    return ROLE.sub(code, text)


class RolesAsCode(Extension):
    """Rewrites every docstring once the object tree is built."""

    def on_object(self, *, obj: Object, **kwargs) -> None:
        if not obj.is_alias and obj.docstring is not None:
            obj.docstring.value = plain(obj.docstring.value)
