"""Event ids: the UUID version 7 layout, unique, in time order, an old record's made again."""

from __future__ import annotations

import uuid

from vidcls.ids import id_from, id_time, new_id

NOW = 1_748_801_071.512


def test_an_id_is_a_version_7_uuid_of_its_wall_time():
    made = uuid.UUID(new_id(NOW))
    assert (made.version, made.variant) == (7, uuid.RFC_4122)
    assert id_time(str(made)) == NOW
    assert len(str(made)) == 36


def test_ids_are_unique_and_sort_in_time_order():
    same = {new_id(NOW) for _ in range(10_000)}
    assert len(same) == 10_000  # the same instant: told apart by their 62 random bits
    times = [NOW + k * 0.0001 for k in range(50)]  # a tenth of a millisecond apart
    ids = [new_id(t) for t in times]
    assert sorted(ids) == ids  # as strings too
    assert new_id() > new_id(NOW)  # now, after 2025


def test_an_old_records_id_is_the_same_each_time_and_its_own():
    assert id_from(NOW, 1) == id_from(NOW, 1)
    assert len({id_from(NOW, n) for n in range(1000)}) == 1000
    assert id_time(id_from(NOW, 5)) == NOW and uuid.UUID(id_from(NOW, 5)).version == 7
