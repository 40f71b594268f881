"""Plain django-q2 tasks: the baselines the framework's steps are measured against."""

from .stamps import stamp as _stamp


def noop(n=None):
    """Does nothing: the queue's own cost per job."""
    return None


def stamp(sent):
    """Records when it started (the baseline of a step's hop)."""
    _stamp(sent)


def welcome(user):
    """The plain view's stand-in for SendWelcomeEmail (the API benchmark runs no workers)."""


def setup(user):
    """The plain view's stand-in for SetupUserAccount."""
