"""Keys taken from event data (a join's, a flow control's, a fifo group's) as their
columns hold them.

A key is stored as it is when it fits its column. A longer one keeps its start, for
the eye, and ends with a digest of the whole, so that two long keys sharing their first
characters stay two keys: cutting them to the column's length would join two bookings'
parts, let one user's debounce cancel another's event, or queue two groups as one.
"""

import hashlib

DIGEST = 64  # characters of a SHA-256 hex digest


def column_key(text: str, length: int) -> str:
    """``text`` as a column of ``length`` characters holds it (see the module)."""
    if len(text) <= length:
        return text
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{text[: length - DIGEST - 1]}~{digest}"
