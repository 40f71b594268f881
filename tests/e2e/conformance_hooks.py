"""Schemathesis hooks of the conformance run (tests/e2e/schemathesis.toml).

The generator draws the same small values again and again ("0" for a key,
"0@0.com" for an email). A client sends a new Idempotency-Key for each new request
and registers each address once; so each request gets a key and an email of its own.
Otherwise nearly every request would be a repeat (422, before its body is read) or a
taken email (409): the 201 and what follows it would go untested.
"""

import itertools
import re
import uuid

import schemathesis

# workflow.idempotency's HEADER and MAX_KEY_LENGTH (this file is loaded outside Django).
HEADER, MAX_KEY_LENGTH = "Idempotency-Key", 255
VALID_KEY = re.compile(r"[!-~](?:[ -~]*[!-~])?")  # once HTTP stripped spaces and tabs
sent = itertools.count()
RUN = uuid.uuid4().hex[:8]  # so that runs on one database do not meet each other's keys
MINE = re.compile(rf"~{RUN}\d+$|^{RUN}\d+\.")  # what an earlier call of the case added


@schemathesis.hook
def before_call(context, case, kwargs):
    """A fresh Idempotency-Key and email, where the generated ones are valid."""
    n = next(sent)
    key = (case.headers or {}).get(HEADER)
    key = MINE.sub("", key.strip(" \t")) if isinstance(key, str) else None
    if key and len(key) <= MAX_KEY_LENGTH and VALID_KEY.fullmatch(key):
        case.headers[HEADER] = f"{key[:230]}~{RUN}{n}"
    body = case.body
    email = body.get("email") if isinstance(body, dict) else None
    if isinstance(email, str) and email.count("@") == 1 and email[:1] not in '"@.':
        body["email"] = f"{RUN}{n}.{MINE.sub('', email)}"  # a dot-atom local part stays one


@schemathesis.hook
def before_load_schema(context, raw_schema):
    """Link a registration's userId to the steps that take one (its status, and the
    email-verification chain's link and progress), so that a stateful run asks about
    users that exist (the document has no links of its own)."""
    created = raw_schema["paths"]["/users/register"]["post"]["responses"]["201"]
    created["links"] = {
        step: {"operationId": step, "parameters": {"userId": "$response.body#/userId"}}
        for step in ("GetUserStatus", "VerifyEmail", "GetVerification")
    }
