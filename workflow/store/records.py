"""What passes between the store and whoever runs attempts: a claim, an attempt's
outcome, and what the store made of it."""

from collections.abc import Callable
from dataclasses import dataclass

from ..models import Delivery, Run

Status = Delivery.Status


@dataclass(eq=False)
class Claim:
    """A delivery held for one attempt: its row as claimed (with its event) and the run
    recorded for the attempt."""

    delivery: Delivery
    run: Run

    @property
    def pk(self) -> int:
        return self.delivery.pk

    @property
    def step_name(self) -> str:
        return self.delivery.step_name


@dataclass(eq=False)
class Outcome:
    """How an attempt ended, as the runner saw it; the store decides what follows (a
    retry after the backoff, or dead) when it records it.

    ``write`` applies what a successful attempt held (its state writes and emits), in
    the transaction that records it; ``final`` marks a failure that is not retried.
    ``label`` names the failure in the step's log ("Handler failed", "Invalid input").
    """

    claim: Claim
    succeeded: bool
    error: str = ""
    traceback: str = ""
    final: bool = False
    write: Callable[[], None] | None = None
    label: str = "Handler failed"

    @classmethod
    def success(cls, claim, write=None):
        return cls(claim, True, write=write)

    @classmethod
    def failure(cls, claim, error, traceback="", *, final=False, label="Handler failed"):
        return cls(claim, False, error[:10000], traceback, final=final, label=label)


@dataclass(eq=False)
class Recorded:
    """What the store did with an outcome: the delivery's new ``status`` (succeeded,
    pending for a retry, dead), or None when the attempt no longer held its delivery
    (handed back, taken over after its lease ran out, cancelled): then nothing was
    written, and ``reason`` says why. ``outcome`` is the one recorded: a success whose
    held writes failed is recorded as that failure."""

    outcome: Outcome
    status: str | None
    reason: str = ""

    @property
    def discarded(self) -> bool:
        return self.status is None


@dataclass
class Cancelled:
    """A trace's deliveries that ``cancel`` stopped, and those to wake after it (the next
    of the fifo groups it freed)."""

    pending: int = 0
    running: int = 0
    wake: tuple = ()
