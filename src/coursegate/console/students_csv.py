"""The Students CSV of the Course page (SPEC §9): a header row `student_id,email,name`, then
one student a row, at most 500.

A file is all or nothing: any bad row and nothing is assigned. Each bad row is
named by the file's own line number (the header is line 1; a quoted value that
spans lines is named by its first line) with every reason it has, so the
operator can fix them all at once. Each student goes through the API's own
input model, so the file refuses what the API refuses.

What is forgiven, because spreadsheets write it: a UTF-8 byte order mark,
spaces around values and header names, upper-case header names, blank rows
(also rows of empty fields), and an empty name.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from coursegate.enrollments.schemas import MAX_BATCH, Student
from coursegate.kit.errors import ValidationFailed

HEADER = ("student_id", "email", "name")
LISTED = 100
"""Bad lines shown at most; a file of thousands of bad lines says how many more."""
SHOWN_VALUE = 60
HEADER_TEXT = ",".join(HEADER)
NOT_UTF8 = "not UTF-8 text (save the file as CSV UTF-8)"
_NOT_UTF8 = re.compile("[\udc80-\udcff]")
"""What `surrogateescape` makes of bytes that are not UTF-8."""
_BOM = "\ufeff"
_CONTROL = re.compile("[\x00-\x1f\x7f]")
"""NUL, line breaks, tabs: no identifier, address or name holds them (PostgreSQL refuses NUL)."""


@dataclass(frozen=True, slots=True)
class BadLine:
    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass(frozen=True, slots=True)
class StudentRow:
    line: int
    student: Student


@dataclass(frozen=True, slots=True)
class StudentsFile:
    rows: list[StudentRow]
    bad: list[BadLine]


class StudentsFileRejected(ValidationFailed):
    """A Students CSV with bad lines: nothing of it is assigned."""

    def __init__(self, bad: list[BadLine]) -> None:
        self.bad = bad
        super().__init__(
            f"the file has {len(bad)} bad line{'s' if len(bad) != 1 else ''}; nothing was assigned",
            details=[
                {"field": f"line {b.line}", "constraint": "invalid", "message": b.reason}
                for b in bad
            ],
        )

    @property
    def listed(self) -> list[BadLine]:
        return self.bad[:LISTED]

    @property
    def unlisted(self) -> int:
        return max(len(self.bad) - LISTED, 0)


def read_students(raw: bytes) -> StudentsFile:
    """Every student of the file with its line, and every bad line with its reasons."""
    text = raw.decode("utf-8", errors="surrogateescape").removeprefix(_BOM)
    if not text.strip():
        return StudentsFile(
            [], [BadLine(1, f"the file is empty: it needs the header row {HEADER_TEXT}")]
        )
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows: list[StudentRow] = []
    bad: list[BadLine] = []
    first_line: dict[str, int] = {}
    count = end = 0
    header_seen = False
    try:
        for fields in reader:
            line, end = end + 1, reader.line_num
            if not any(f.strip() for f in fields):
                continue
            if not header_seen:
                header_seen = True
                if problem := _header_problem(fields):
                    return StudentsFile([], [BadLine(line, problem)])
                continue
            count += 1
            reasons, student = _student(fields)
            if student is not None:
                seen = first_line.setdefault(student.student_id, line)
                if seen != line:
                    reasons.append(
                        f"student {_shown(student.student_id)} is already on line {seen}"
                    )
            if count == MAX_BATCH + 1:
                reasons.append(f"more than {MAX_BATCH} students: split the file")
            if reasons:
                bad.append(BadLine(line, "; ".join(reasons)))
            elif student is not None:
                rows.append(StudentRow(line, student))
    except csv.Error as exc:
        bad.append(BadLine(end + 1, f"not readable as CSV ({exc})"))
        return StudentsFile([], bad)
    if count == 0:
        bad.append(BadLine(1, "no student follows the header row"))
    return StudentsFile(rows, bad)


def _header_problem(fields: list[str]) -> str | None:
    if any(_NOT_UTF8.search(f) for f in fields):
        return NOT_UTF8
    if tuple(f.strip().lower() for f in fields) == HEADER:
        return None
    return (
        f"the header row must be {HEADER_TEXT}, not {_shown(','.join(f.strip() for f in fields))}"
    )


def _student(fields: list[str]) -> tuple[list[str], Student | None]:
    """The row's student, or why it is not one."""
    if any(_NOT_UTF8.search(f) for f in fields):
        return [NOT_UTF8], None
    if len(fields) != len(HEADER):
        found = len(fields)
        plural = "s" if found != 1 else ""
        return [f"{found} field{plural}, {len(HEADER)} expected ({HEADER_TEXT})"], None
    values = {name: value.strip() for name, value in zip(HEADER, fields, strict=True)}
    if controls := [name for name, value in values.items() if _CONTROL.search(value)]:
        return [f"{name} contains a control character" for name in controls], None
    try:
        # An empty value is a missing one (the model then says so); an empty name is no name.
        return [], Student.model_validate({k: v for k, v in values.items() if v})
    except ValidationError as exc:
        return [_reason(error) for error in exc.errors()], None


def _reason(error: ErrorDetails) -> str:
    field = str(error["loc"][0]) if error["loc"] else "value"
    kind = error["type"]
    if kind == "missing":
        return f"{field} is missing"
    if kind == "string_too_long":
        limit = (error.get("ctx") or {}).get("max_length")
        return f"{field} is longer than {limit} characters"
    if kind == "too_long":
        return f"{field} is longer than 320 characters"
    if field == "email":
        return "email is not a valid address"
    return f"{field} is not valid ({error['msg']})"


def _shown(value: str) -> str:
    return value if len(value) <= SHOWN_VALUE else value[: SHOWN_VALUE - 1] + "…"
