"""Every ``python`` code block in the README and the docs runs, page by page.

Blocks of a page share one namespace, top to bottom, like a reader typing them in.
Fence a block as ``pycon``, ``text`` or ``console`` to show it without running it.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
FENCE = re.compile(r"^```python[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _blocks(page: Path) -> list[tuple[int, str]]:
    text = page.read_text("utf-8")
    return [(text.count("\n", 0, m.start()) + 2, m.group(1)) for m in FENCE.finditer(text)]


PAGES_WITH_CODE = [page for page in PAGES if _blocks(page)]


def test_some_pages_have_examples() -> None:
    """The collector finds examples (an empty collection would pass silently)."""
    assert len(PAGES_WITH_CODE) >= 1


@pytest.mark.parametrize(
    "page", PAGES_WITH_CODE, ids=[str(p.relative_to(ROOT)) for p in PAGES_WITH_CODE]
)
def test_page_examples_run(page: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each python block of the page executes without error, in order."""
    from scimsync import codec

    # Examples may register extensions and attach log handlers; keep that from
    # leaking into other tests.
    monkeypatch.setattr(codec, "_EXTENSIONS", dict(codec._EXTENSIONS))
    for name in ("scimsync", "scimsync.audit"):
        logger = logging.getLogger(name)
        monkeypatch.setattr(logger, "handlers", list(logger.handlers))
        monkeypatch.setattr(logger, "level", logger.level)
        monkeypatch.setattr(logger, "propagate", logger.propagate)
        monkeypatch.setattr(logger, "disabled", logger.disabled)
    namespace: dict[str, object] = {"__name__": f"docs_{page.stem}"}
    for line, source in _blocks(page):
        # Pad so tracebacks point at the line in the page.
        code = compile("\n" * (line - 1) + source, str(page), "exec")
        exec(code, namespace)  # the examples are our own documentation
