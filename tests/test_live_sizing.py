"""How many groups: a number, or auto from the stored measured capacity (or the config's
cameras_per_group, or the documented default), at most one per core and per camera."""

from __future__ import annotations

import os

from vidcls.live.build import Plan, classifier_options
from vidcls.live.sizing import (
    DEFAULT_PER_GROUP,
    capacity_file,
    group_count,
    measured_per_group,
    store_capacity,
)
from vidcls.live.sources import SourceSpec, Zone


def _plan(cameras: int, **kw) -> Plan:
    specs = [SourceSpec(f"c{i}", f"/v/{i}.mp4") for i in range(cameras)]
    return Plan(classifier_options({}), specs, **kw)


def test_a_number_is_that_many_groups_at_most_one_per_camera():
    assert group_count(_plan(10, groups=3)) == 3
    assert group_count(_plan(2, groups=5)) == 2
    assert group_count(_plan(2, groups=1)) == 1


def test_auto_packs_by_the_measured_figure_else_the_default(monkeypatch):
    cores = os.cpu_count() or 1
    assert measured_per_group() is None  # an empty cache (conftest)
    assert group_count(_plan(DEFAULT_PER_GROUP)) == 1
    assert group_count(_plan(DEFAULT_PER_GROUP + 1)) == min(2, cores)
    store_capacity(30, 20)
    store_capacity(5, 40)
    assert measured_per_group() == 20 and capacity_file().is_file()
    assert group_count(_plan(21, groups="auto")) == min(2, cores)
    assert group_count(_plan(21, per_group=30)) == 1  # the config's figure over the measured
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    assert group_count(_plan(100)) == 5


def test_zones_count_as_views():
    zones = (Zone("a", (0, 0, 0.5, 1)), Zone("b", (0.5, 0, 1, 1)))
    specs = [SourceSpec(f"c{i}", "/v.mp4", zones) for i in range(3)]
    plan = Plan(classifier_options({}), specs, per_group=4)
    assert group_count(plan) == min(2, os.cpu_count() or 1)  # 6 views, 4 a group
