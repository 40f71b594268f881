"""An event-driven step framework for Django: Motia's model on DRF, django-q2 and Channels.

Only the exceptions live at the package's top (``workflow.NonRetryable``,
``workflow.InvalidEmit``, ``workflow.NotJSON``); everything
else is imported from its module (``workflow.steps``, ``workflow.handlers``,
``workflow.testing``, ...).
"""

from .errors import InvalidEmit, NonRetryable, NotJSON

__all__ = ["InvalidEmit", "NonRetryable", "NotJSON"]
