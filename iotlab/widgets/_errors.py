"""An error in a widget's callback is shown in the widget itself.

ipywidgets hands an exception raised in an ``observe`` or ``on_click`` callback to the
kernel's log, which JupyterLab keeps in its log console: the user sees controls that
change and a plot that does not, and no reason. :func:`shown_in` catches the error and
writes it into the widget's message area, where the user is looking, and keeps it in
``owner.error`` for code and tests.
"""

from __future__ import annotations

import functools
import html
from collections.abc import Callable
from typing import Any, Protocol

import ipywidgets as widgets

__all__ = ["error_html", "shown_in"]


class _Owner(Protocol):
    message: widgets.HTML
    error: Exception | None


def error_html(exc: BaseException) -> str:
    """One line naming the error, styled as an error, safe to put in an HTML widget."""
    text = html.escape(f"{type(exc).__name__}: {exc}")
    return f'<div class="iotlab-error" style="color:#b00020"><b>error:</b> {text}</div>'


def shown_in(owner: _Owner, callback: Callable[[Any], None]) -> Callable[[Any], None]:
    """``callback`` wrapped so that an exception lands in ``owner.message``.

    The message stays until the next callback succeeds; that one clears ``owner.error``
    (the owner's redraw clears or replaces the message).
    """

    @functools.wraps(callback)
    def run(event: Any) -> None:
        try:
            callback(event)
        except Exception as exc:  # shown to the user instead of lost in a log console
            owner.error = exc
            owner.message.value = error_html(exc)
        else:
            owner.error = None

    return run
