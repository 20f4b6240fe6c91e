"""Training options: checked once, when made; as JSON in the report."""

from __future__ import annotations

from pathlib import Path

import pytest

from vidcls.errors import OptionError, VidclsError
from vidcls.training import TrainOptions
from vidcls.training.options import check_fps


@pytest.mark.parametrize(
    "bad",
    [
        {"views": 0},
        {"views": 2.5},
        {"threads": 0},
        {"epochs": 0},
        {"seed": -1},
        {"val_fraction": 1.0},
        {"val_fraction": float("nan")},
        {"fps": -1},
        {"fps": "native"},  # the CLI's word; in Python every frame is 0
        {"fps": None},
        {"l2": -0.1},
        {"l2": float("inf")},
    ],
    ids=str,
)
def test_bad_options_are_refused_when_made(bad):
    name = next(iter(bad))
    with pytest.raises(VidclsError, match=name):
        TrainOptions(**bad)


def test_good_options():
    o = TrainOptions(fps=0, l2=0.01, views=1, val_fraction=0.0, cache=Path("/tmp/c"))
    assert o.to_dict()["cache"] == "/tmp/c" and o.to_dict()["fps"] == 0
    assert TrainOptions().fps == "auto" and TrainOptions(fps=7.5).fps == 7.5


def test_an_option_error_names_the_flag():
    with pytest.raises(OptionError) as e:
        TrainOptions(val_fraction=2)
    assert e.value.as_flag().startswith("--val-fraction must be in [0, 1)")


def test_check_fps_names_the_other_values_allowed():
    check_fps(0)
    check_fps(2.5)
    with pytest.raises(OptionError, match="must be 'auto', 0"):
        check_fps(-1, "'auto', ")
