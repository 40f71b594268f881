"""An event-driven step framework for Django: Motia's model on DRF, django-q2 and Channels.

Only the exceptions live at the package's top (``workflow.NonRetryable``); everything
else is imported from its module (``workflow.steps``, ``workflow.handlers``,
``workflow.testing``, ...).
"""

from .errors import NonRetryable

__all__ = ["NonRetryable"]
