"""Loaded by schemathesis (SCHEMATHESIS_HOOKS) in the contract run of test_schemathesis.py.

Every default check runs, with one replaced: `positive_data_acceptance` becomes
`accepted_unless_declared`, the same check except for the refusals below. Each is
a rule JSON Schema cannot state, so a request valid by the description may still
break it; each carries its reason. A 400 passes only if *every* detail it names
is one of these; anything else still fails the run.
"""

from __future__ import annotations

import json
from fnmatch import fnmatch
from typing import Any

import schemathesis
from schemathesis.specs.openapi.checks import positive_data_acceptance

DECLARED_REFUSALS: dict[tuple[str, str, str], str] = {
    # (field, constraint, message): all three as shell patterns.
    ("cursor", "invalid", "*"): (
        "a cursor is valid only if this API issued it; the description gives its shape "
        "(unpadded base64url), and no schema can list the positions that exist"
    ),
    ("timezone", "invalid", "*"): (
        "an IANA name is checked against the installed time zone database, which changes "
        "with each tzdata release; the description gives the name's shape"
    ),
    ("end_date", "out_of_range", "*"): "end_date after last_drop_date: a relation between fields",
    ("last_drop_date", "out_of_range", "*"): "last_drop_date within the course's dates: a relation",
    ("start_date", "out_of_range", "*"): "start_date before the other dates: a relation",
    ("students.*.student_id", "duplicate", "*"): (
        "each student once per batch: uniqueness by one key of an object, which "
        "`uniqueItems` (whole items) cannot say"
    ),
    ("students.*.email", "duplicate", "*"): "as above, by email",
    (
        "keys",
        "invalid",
        "key ids must be distinct",
    ): "key ids distinct within one request: uniqueness by key again",
    ("config.*_url", "*", "*"): (
        "a partner URL is refused if it resolves to a private address: the network guard "
        "decides at run time"
    ),
    ("config.class_map.*", "invalid", "no such course"): "a course must exist: a fact of the data",
    ("schedule", "invalid", "*"): "a five-field cron expression: its ranges are beyond a pattern",
    (
        "program_id",
        "invalid",
        "no such program",
    ): "a program named must exist: a fact of the data, not a shape",
    ("external_ids", "invalid", "*"): "each key must name an existing provider: a fact of the data",
    ("url", "*", "*"): (
        "a webhook URL is resolved and refused if it names a private address: the network "
        "guard decides at run time"
    ),
    ("*", "invalid_type", "*"): (
        "only when the value is a float with an integral value (`1.0`): JSON Schema counts it "
        "an integer, the API reads counts strictly (checked below)"
    ),
    ("q", "invalid", "*not both"): "a search by identifier or by name: two parameters' relation",
    (
        "identifier",
        "required",
        "namespace narrows*",
    ): "`namespace` only with `identifier`: a relation",
    ("*email", "invalid", "*"): (
        "a pattern in JSON Schema is ECMA-262, whose `\\s` is not Python's (U+001C to U+001F, "
        "U+0085 differ), so the generator's idea of an address's shape is not quite the API's"
    ),
    ("*secret_ref", "invalid", "the secret store cannot resolve*"): (
        "a reference must resolve where the server runs (an environment variable that is "
        "set, a file that exists): a fact of the machine, not a shape"
    ),
    ("hours_per_credit", "too_many_decimal_places", "*"): (
        "`multipleOf: 0.01` is checked in floating point, which lets 0.5700000000000001 pass"
    ),
}


def _declared(detail: Any, body: Any) -> bool:
    if not isinstance(detail, dict):
        return False
    field, constraint = str(detail.get("field")), str(detail.get("constraint"))
    message = str(detail.get("message"))
    for (pattern, code, text), _reason in DECLARED_REFUSALS.items():
        if fnmatch(field, pattern) and fnmatch(constraint, code) and fnmatch(message, text):
            if code == "invalid_type":
                return _integral_float(body, field)
            return True
    return False


def _integral_float(body: Any, field: str) -> bool:
    value = body
    for part in field.split("."):
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return False
    return isinstance(value, float) and value.is_integer()


@schemathesis.check
def accepted_unless_declared(ctx: Any, response: Any, case: Any) -> bool | None:
    if response.status_code == 400:
        try:
            error = json.loads(response.content)
        except ValueError:
            error = None
        details = error.get("details") if isinstance(error, dict) else None
        body = case.body if isinstance(case.body, dict) else {}
        if details and all(_declared(d, body) for d in details):
            return None
    result: bool | None = positive_data_acceptance(ctx, response, case)
    return result
