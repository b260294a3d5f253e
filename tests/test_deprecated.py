"""Renamed public names: each old name still imports, warns, and is the new object."""

from __future__ import annotations

import importlib

import pytest

# (module, old name, new name): the old names kept for one release.
RENAMED = [
    ("scimsync.client", "Capabilities", "ServiceCapabilities"),
    ("scimsync.client", "Listing", "PagedListing"),
    ("scimsync.engine", "Change", "PlannedChange"),
    ("scimsync.errors", "ConflictError", "MatchConflictError"),
    ("scimsync.targets", "GroupChange", "GroupUpdate"),
    ("scimsync.targets", "Listing", "TargetListing"),
    ("scimsync.targets", "UserChange", "UserUpdate"),
]


@pytest.mark.parametrize(("module_name", "old", "new"), RENAMED)
def test_old_name_still_works_and_warns(module_name: str, old: str, new: str) -> None:
    """``from module import Old`` gives the very object now called ``New``, with a
    DeprecationWarning that names the new name."""
    module = importlib.import_module(module_name)
    namespace: dict[str, object] = {}
    with pytest.warns(DeprecationWarning, match=rf"{module_name}\.{new}\b") as caught:
        exec(f"from {module_name} import {old}", namespace)
    assert getattr(module, new) is namespace[old]
    expected = (
        f"{module_name}.{old} is deprecated, use {module_name}.{new} "
        "(the old name is removed in scimsync 0.2)"
    )
    # the import system may look the name up twice (same message, same line)
    assert {expected} == {str(warning.message) for warning in caught}


@pytest.mark.parametrize(("module_name", "old", "new"), RENAMED)
def test_old_name_stays_out_of_the_public_listing(module_name: str, old: str, new: str) -> None:
    """A deprecated name is in neither ``__all__`` nor ``dir()``; the new one is in both."""
    module = importlib.import_module(module_name)
    assert (False, True) == (old in module.__all__, new in module.__all__)
    assert (False, True) == (old in dir(module), new in dir(module))


def test_the_warning_points_at_the_code_using_the_old_name() -> None:
    """The warning is reported at the line that used the old name (so ``-W error``
    and warning filters point at the caller, not into scimsync)."""
    import scimsync.client

    with pytest.warns(DeprecationWarning, match="PagedListing") as caught:
        scimsync.client.Listing  # noqa: B018 - the access is what is tested
    assert __file__ == caught[0].filename


def test_a_name_that_never_existed_is_still_an_attribute_error() -> None:
    """Unknown names raise AttributeError as before, without a warning."""
    import scimsync.client
    import scimsync.engine
    import scimsync.errors
    import scimsync.targets

    for module in (scimsync.client, scimsync.engine, scimsync.errors, scimsync.targets):
        with pytest.raises(AttributeError, match="Nothing"):
            getattr(module, "Nothing")  # noqa: B009 - the access is what is tested
