"""How a page of DataPass entries is sorted: created, skipped or rejected with a reason."""

from __future__ import annotations

from datetime import timedelta

from coursegate.connectors.datapass import sort_entries
from tests.connectors.fake_partners import ENTRY_BASE, datapass_entry

DEFINITION = "api_particulier_cnous"


def test_first_run_takes_every_entry_of_the_definition_even_undated() -> None:
    entries = [datapass_entry(1), datapass_entry(2, validated_at=None)]
    page = sort_entries(entries, DEFINITION, watermark=None)
    assert [a.external_id for a in page.accepted] == [e["public_id"] for e in entries]
    assert page.accepted[1].validated_at is None
    assert page.accepted[0].validated_at == ENTRY_BASE + timedelta(minutes=1)
    assert page.accepted[0].data == entries[0]["data"]
    assert (page.skipped, page.rejected, page.newest) == (0, [], page.accepted[0].validated_at)


def test_incremental_run_skips_the_old_and_rejects_the_undated() -> None:
    watermark = ENTRY_BASE + timedelta(minutes=5)
    entries = [
        datapass_entry(4),
        datapass_entry(5),
        datapass_entry(6),
        datapass_entry(7, validated_at=None),
        datapass_entry(8, type_="api_entreprise"),
        datapass_entry(9, state="draft"),
    ]
    page = sort_entries(entries, DEFINITION, watermark)
    assert [a.external_id for a in page.accepted] == [
        entries[1]["public_id"],
        entries[2]["public_id"],
    ]
    assert page.skipped == 3  # older than the watermark, another definition, not validated
    [rejected] = page.rejected
    assert (rejected.external_id, rejected.reason) == (
        entries[3]["public_id"],
        "last_validated_at is missing on an incremental run",
    )
    assert rejected.raw is entries[3]
    assert page.newest == ENTRY_BASE + timedelta(minutes=9)


def test_malformed_entries_are_rejected_whole() -> None:
    entries: list[object] = [
        "text",
        None,
        {**datapass_entry(1), "public_id": ""},
        {**datapass_entry(2), "public_id": "x" * 129},
        {**datapass_entry(3), "type": None},
        {**datapass_entry(4), "last_validated_at": "2026-06-01T09:04:00"},  # no offset
        {**datapass_entry(5), "last_validated_at": 1780000000},
    ]
    page = sort_entries(entries, DEFINITION, watermark=None)
    assert page.accepted == []
    assert [r.reason for r in page.rejected] == [
        "the entry is not a JSON object",
        "the entry is not a JSON object",
        "public_id is missing or not a string of 1 to 128 characters",
        "public_id is missing or not a string of 1 to 128 characters",
        "type is missing",
        "last_validated_at is not an RFC 3339 instant with an offset",
        "last_validated_at is not an RFC 3339 instant with an offset",
    ]
    assert [r.raw for r in page.rejected] == entries
