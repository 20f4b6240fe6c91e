"""Did-you-mean (vidcls.cli.suggest): a near-miss flag, command or choice is one error line
naming the right one, exit 2 as argparse; nothing is suggested when nothing is close. Parsing
fails before any file is opened, so the paths here need not exist."""

from __future__ import annotations

import pytest
from cli_here import run_here
from cli_run import assert_clean_error

from vidcls.cli.suggest import closest, unknown_flags

FLAGS = ["--top-k", "--threads", "--val-fraction", "--model", "--output"]


@pytest.mark.parametrize(
    "typed, meant",
    [
        ("--top_k", "--top-k"),
        ("--TOP-K", "--top-k"),
        ("-top-k", "--top-k"),
        ("--val_fraction", "--val-fraction"),
        ("--threds", "--threads"),
        ("--modle", "--model"),
        ("--outpt", "--output"),
        ("--no-such-flag", None),
        ("--foo", None),
        ("--model", None),  # a valid name is no near-miss
    ],
)
def test_closest_flag(typed, meant):
    assert closest(typed, FLAGS) == meant


def test_each_unknown_flag_gets_its_own_suggestion_and_values_none():
    assert unknown_flags(["--top_k=3"], FLAGS) == "; did you mean --top-k?"
    both = unknown_flags(["--top_k", "3", "--threds", "-1", "--foo"], FLAGS)
    assert both == "; did you mean --top-k (for --top_k), --threads (for --threds)?"
    assert unknown_flags(["-1", "x.mp4", "--foo"], FLAGS) == ""


@pytest.mark.parametrize(
    "args, named",
    [
        (("classify", "x.mp4", "--top_k", "3"), "did you mean --top-k?"),
        (("classify", "--top_k=3", "x.mp4"), "did you mean --top-k?"),
        (("evaluate", "data", "--val_fraction", "0.3"), "did you mean --val-fraction?"),
        (("train", "data", "-o", "m.tflite", "--view", "2", "--seeed", "1"), "--seed"),
        (("batch", "data", "--outpt", "x.json"), "did you mean --output?"),
        (("serve", "--prot", "8000"), "did you mean --port?"),
        (("live", "x.mp4", "--top_k", "3"), "did you mean --top-k?"),
        (("dataset", "check", "data", "--formt", "json"), "vidcls dataset check --help"),
    ],
)
def test_a_near_miss_flag_names_the_flag(capfd, args, named):
    line = assert_clean_error(run_here(capfd, *args), "unrecognized arguments", named)
    assert line.count("did you mean") == 1


def test_no_suggestion_when_no_flag_is_close(capfd):
    line = assert_clean_error(run_here(capfd, "evaluate", "data", "--no-such-flag"))
    assert "did you mean" not in line and "(see vidcls evaluate --help)" in line
    # evaluate takes no --fit (train does): its own flags are the candidates
    line = assert_clean_error(run_here(capfd, "evaluate", "data", "--fit", "crop"))
    assert "did you mean" not in line


@pytest.mark.parametrize(
    "args, meant",
    [
        (("clasify", "x.mp4"), "'classify'"),
        (("evaluate", "data", "--split", "vall"), "'val'"),
        (("users", "ad", "bob"), "'add'"),
        (("dataset", "chek", "data"), "'check'"),
    ],
)
def test_a_near_miss_command_or_choice_names_it(capfd, args, meant):
    assert_clean_error(run_here(capfd, *args), "invalid choice", f"did you mean {meant}?")


def test_a_choice_far_from_every_one_gets_no_suggestion(capfd):
    line = assert_clean_error(run_here(capfd, "evaluate", "data", "--split", "test"))
    assert "invalid choice" in line and "did you mean" not in line
