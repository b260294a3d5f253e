"""Old public names kept importable for one release after a rename, with a warning.

A module that renamed a public name lists the old one in a ``{old: new}`` table and
resolves it in its module ``__getattr__`` through :func:`renamed`: every use of the old
name warns (``DeprecationWarning``, naming the new one) and gets the very same object,
so ``isinstance`` checks and ``except`` clauses written with the old name keep
working. Old names stay out of ``__all__`` and ``dir()``.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["REMOVED_IN", "renamed"]

#: The release that no longer has the deprecated names.
REMOVED_IN = "0.2"


def renamed(module: str, name: str, table: Mapping[str, str], namespace: Mapping[str, Any]) -> Any:
    """The object the old ``name`` of ``module`` now goes by, with a warning.

    ``table`` maps old names to new ones, ``namespace`` is the module's globals.
    Raises :class:`AttributeError` when ``name`` is not an old name, as a module does.
    """
    new = table.get(name)
    if new is None:
        raise AttributeError(f"module {module!r} has no attribute {name!r}")
    warnings.warn(
        f"{module}.{name} is deprecated, use {module}.{new} "
        f"(the old name is removed in scimsync {REMOVED_IN})",
        DeprecationWarning,
        stacklevel=3,
    )
    return namespace[new]
