"""Access to the JSON payloads committed under ``tests/samples``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SAMPLES = Path(__file__).parent / "samples"


def load_sample(name: str) -> Any:
    """Return the parsed JSON of ``tests/samples/<name>.json``."""
    return json.loads((SAMPLES / f"{name}.json").read_text("utf-8"))
