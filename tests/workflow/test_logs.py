"""The step logger: redaction, storage, Python logging and the log_written signal.

A logger holds lines while a transaction is open, and a plain ``django_db`` test runs
inside one, so the tests that store lines use ``transaction=True``.
"""

import json
import logging
import threading
import time

import pytest
from django.db import DatabaseError, connection, transaction
from django.test.utils import CaptureQueriesContext

from workflow import signals
from workflow.logs import REDACTED, LogWriter, StepLogger, redact
from workflow.models import LogEntry

TRACE = "a" * 32


@pytest.fixture
def step_records(caplog):
    """Records sent to the ``workflow.steps`` logger (which does not propagate)."""
    step_logger = logging.getLogger("workflow.steps")
    step_logger.addHandler(caplog.handler)
    caplog.handler.setLevel(logging.DEBUG)
    try:
        yield caplog
    finally:
        step_logger.removeHandler(caplog.handler)


@pytest.fixture
def written():
    """The entries announced by ``log_written``, in order."""
    entries = []

    def receiver(sender, entry, **kwargs):
        entries.append(entry)

    signals.log_written.connect(receiver)
    try:
        yield entries
    finally:
        signals.log_written.disconnect(receiver)


def stored():
    return list(LogEntry.objects.order_by("id"))


# redact ------------------------------------------------------------------------


def test_redact_replaces_secret_fields_at_any_depth_case_insensitively():
    """redact() blanks fields named like password/token/secret/api_key in nested dicts/lists."""
    value = {
        "name": "Ada",
        "Password": "hunter2",
        "user": {"email": "ada@example.com", "AccessToken": "t0k"},
        "items": [{"API_KEY": "k1", "id": 1}, ["plain"]],
        "client_secret": "s3",
    }
    assert redact(value) == {
        "name": "Ada",
        "Password": REDACTED,
        "user": {"email": "ada@example.com", "AccessToken": REDACTED},
        "items": [{"API_KEY": REDACTED, "id": 1}, ["plain"]],
        "client_secret": REDACTED,
    }
    assert REDACTED == "[redacted]"


def test_redact_blanks_a_whole_nested_value_under_a_secret_key():
    """A secret key's value is replaced whole, even when it is a dict."""
    assert redact({"secrets": {"a": 1}, "n": [1, 2]}) == {"secrets": REDACTED, "n": [1, 2]}


# storing -----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_info_stores_fields_given_as_dict_or_keywords():
    """info('m', {'a': 1}) and info('m', a=1) both store a line with fields, step, trace, level."""
    log = StepLogger("SendEmail", TRACE)
    log.info("with dict", {"a": 1})
    log.info("with kwargs", a=1)
    first, second = stored()
    for entry, message in ((first, "with dict"), (second, "with kwargs")):
        assert entry.message == message
        assert entry.fields == {"a": 1}
        assert entry.step_name == "SendEmail"
        assert entry.trace_id == TRACE
        assert entry.level == "info"


@pytest.mark.django_db(transaction=True)
def test_levels_are_stored_and_warning_is_warn():
    """debug/error store their level; warn and warning both store 'warn'."""
    log = StepLogger("S", TRACE)
    log.debug("d")
    log.warn("w1")
    log.warning("w2")
    log.error("e")
    assert [(e.message, e.level) for e in stored()] == [
        ("d", "debug"),
        ("w1", "warn"),
        ("w2", "warn"),
        ("e", "error"),
    ]


@pytest.mark.django_db(transaction=True)
def test_password_is_stored_redacted_and_not_printed(step_records):
    """A password field is stored as '[redacted]' and never reaches Python logging."""
    StepLogger("Register", TRACE).info("New user", email="ada@example.com", password="hunter2")
    (entry,) = stored()
    assert entry.fields == {"email": "ada@example.com", "password": REDACTED}
    assert "New user" in step_records.text
    assert "email=ada@example.com" in step_records.text
    assert "password=[redacted]" in step_records.text
    assert "hunter2" not in step_records.text


@pytest.mark.django_db(transaction=True)
def test_lines_from_a_rolled_back_transaction_are_stored_after_flush():
    """Lines logged in a transaction that rolls back are held, then stored by flush()."""
    log = StepLogger("S", TRACE)
    with pytest.raises(RuntimeError), transaction.atomic():
        log.info("inside", step=1)
        log.flush()  # flush() inside a transaction keeps holding the lines
        assert not LogEntry.objects.exists()
        raise RuntimeError("roll back")
    log.flush()
    assert [(e.message, e.fields) for e in stored()] == [("inside", {"step": 1})]


@pytest.mark.django_db(transaction=True)
def test_a_line_outside_a_transaction_also_stores_held_lines():
    """The first line logged after a transaction ends stores the lines held during it."""
    log = StepLogger("S", TRACE)
    with transaction.atomic():
        log.info("first")
    log.info("second")
    assert [e.message for e in stored()] == ["first", "second"]


@pytest.mark.django_db(transaction=True)
def test_non_json_field_values_are_stored_as_repr():
    """A field value JSON cannot hold is stored as its repr()."""

    class Thing:
        def __repr__(self):
            return "<Thing 42>"

    StepLogger("S", TRACE).info("m", thing=Thing(), ids={3})
    (entry,) = stored()
    assert entry.fields == {"thing": "<Thing 42>", "ids": "{3}"}


@pytest.mark.django_db(transaction=True)
def test_a_nan_field_keeps_the_line_stored_as_repr():
    """NaN and the infinities, which JSON (and PostgreSQL's jsonb) cannot hold, are stored
    as their repr(): the line is kept, its fields plain JSON."""
    StepLogger("S", TRACE).info("ratio", ratio=float("nan"), top=float("inf"), n=1.5)
    (entry,) = stored()
    assert entry.fields == {"ratio": "nan", "top": "inf", "n": 1.5}
    json.dumps(entry.fields, allow_nan=False)  # what PostgreSQL would refuse


@pytest.mark.django_db(transaction=True)
def test_values_json_would_change_are_stored_as_repr_with_secrets_redacted():
    """A tuple or a dict with a non-string key is stored as its repr(), not silently made
    a list or given string keys; a secret inside it is redacted first."""
    StepLogger("S", TRACE).info("m", pair=(1, {"password": "hunter2"}), by_id={7: "a"})
    (entry,) = stored()
    assert entry.fields == {"pair": "(1, {'password': '[redacted]'})", "by_id": "{7: 'a'}"}


@pytest.mark.django_db(transaction=True)
def test_a_value_that_contains_itself_keeps_the_line():
    """A list or dict inside itself is shown as repr() shows it, not a RecursionError."""
    looped = [1]
    looped.append(looped)
    by_id = {1: None}
    by_id[1] = by_id
    StepLogger("S", TRACE).info("m", looped=looped, by_id=by_id)
    (entry,) = stored()
    assert entry.fields == {"looped": [1, "[...]"], "by_id": "<dict that contains itself>"}


# log_written -------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_log_written_is_sent_once_per_stored_line(written):
    """log_written is sent once for every stored line, with the saved entry."""
    log = StepLogger("S", TRACE)
    with transaction.atomic():
        log.info("one")
        log.info("two")
        assert written == []  # nothing stored yet, nothing announced
    log.flush()
    log.error("three")
    assert [e.message for e in written] == ["one", "two", "three"]
    assert [e.message for e in stored()] == ["one", "two", "three"]


@pytest.mark.django_db(transaction=True)
def test_a_failing_log_written_receiver_does_not_break_logging(written):
    """A log_written receiver that raises neither breaks the log call nor the other receivers."""

    def broken(sender, **kwargs):
        raise RuntimeError("observer broke")

    signals.log_written.connect(broken)
    try:
        log = StepLogger("S", TRACE)
        log.info("one")
        log.info("two")
    finally:
        signals.log_written.disconnect(broken)
    assert [e.message for e in stored()] == ["one", "two"]
    assert [e.message for e in written] == ["one", "two"]


@pytest.mark.django_db(transaction=True)
def test_a_log_writer_stores_the_lines_of_several_loggers_in_one_insert(written):
    """Lines handed over while the writer is busy go together: one INSERT for the lines
    of three loggers, each announced once stored, in order."""
    writer = LogWriter()
    gate = threading.Event()
    real = writer._store
    batches = []

    def store(batch):
        gate.wait(5)  # holds the first batch until the rest are queued
        batches.append(sum(len(entries) for _, entries in batch))
        real(batch)

    writer._store = store
    loggers = [StepLogger(f"S{n}", TRACE, writer=writer) for n in range(4)]
    loggers[0].info("first")
    time.sleep(0.1)  # the writer has taken it and waits at the gate
    for n, logger in enumerate(loggers[1:], 1):
        logger.info(f"line {n}a")
        logger.info(f"line {n}b")
    gate.set()
    writer.close()
    assert batches == [1, 6]
    assert [e.message for e in stored()] == ["first"] + [
        f"line {n}{x}" for n in (1, 2, 3) for x in "ab"
    ]
    assert [e.message for e in written] == [e.message for e in stored()]


@pytest.mark.django_db(transaction=True)
def test_a_log_writer_that_cannot_store_a_batch_stores_each_loggers_lines_alone(
    written, monkeypatch
):
    """A batch the database refuses is tried again logger by logger: one logger's bad
    line loses no other logger's."""
    writer = LogWriter()
    good, bad = StepLogger("Good", TRACE, writer=writer), StepLogger("Bad", TRACE, writer=writer)
    real = LogEntry.objects.bulk_create

    def bulk_create(entries, *args, **kwargs):
        if any(e.step_name == "Bad" for e in entries):
            raise DatabaseError("refused")
        return real(entries, *args, **kwargs)

    monkeypatch.setattr(LogEntry.objects, "bulk_create", bulk_create)
    writer.queue.put(
        (
            good,
            [LogEntry(level="info", message="kept", step_name="Good", trace_id=TRACE, fields={})],
        )
    )
    writer.queue.put(
        (bad, [LogEntry(level="info", message="lost", step_name="Bad", trace_id=TRACE, fields={})])
    )
    writer.close()
    assert [e.message for e in stored()] == ["kept"]
    assert [e.message for e in written] == ["kept"]


@pytest.mark.django_db(transaction=True)
def test_a_logger_with_a_writer_hands_its_lines_over_instead_of_storing_them():
    """The handler's thread does not store the line; the writer does, and close() waits
    for it."""
    writer = LogWriter()
    logger = StepLogger("S", TRACE, writer=writer)
    with CaptureQueriesContext(connection) as captured:  # this thread's queries
        logger.info("hello", user="u1")
    writer.close()
    assert not any("workflow_logentry" in q["sql"] for q in captured.captured_queries)
    assert [(e.message, e.fields) for e in stored()] == [("hello", {"user": "u1"})]
