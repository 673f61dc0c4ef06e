from __future__ import annotations

from tests.enrollments.conftest import Desk, Partners


async def test_assign_one(desk: Desk, partners: Partners) -> None:
    await desk.create_course(seats=3)
    made = await desk.assign(2)
    assert [e["status"] for e in made] == ["assigned", "assigned"]
    assert await desk.seats() == {
        "available": 1,
        "reserved": 0,
        "assigned": 2,
        "spent": 0,
        "rolled_back": 0,
        "total": 3,
    }
    assert partners.members() == {e["person_id"] for e in made}
