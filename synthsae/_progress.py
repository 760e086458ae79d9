"""Progress bars that honour both the caller's ``show_progress`` and tqdm's environment.

``tqdm(disable=False)`` overrides ``TQDM_DISABLE=1`` from the environment; passing
``disable`` only to turn a bar off keeps that switch (and the other ``TQDM_*``
variables) working for users who silence bars globally, e.g. in batch jobs.
"""

from __future__ import annotations

from typing import Any

from tqdm.auto import tqdm

__all__ = ["progress_bar"]


def progress_bar(iterable: Any = None, *, show: bool = True, **kwargs: Any) -> tqdm:
    """A ``tqdm`` bar, turned off when ``show`` is False (else tqdm's defaults and environment decide)."""
    if not show:
        kwargs["disable"] = True
    return tqdm(iterable, **kwargs)
