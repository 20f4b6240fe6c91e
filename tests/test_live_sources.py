"""Named sources: [NAME=]SOURCE on the command line and in a list file."""

from __future__ import annotations

import pytest

from vidcls.errors import VidclsError
from vidcls.live.sources import SourceSpec, gather, parse_source, read_sources


@pytest.mark.parametrize(
    ("text", "name", "source"),
    [
        ("door=rtsp://10.0.0.5:554/sub", "door", "rtsp://10.0.0.5:554/sub"),
        (
            "rtsp://10.0.0.5:554/cam?channel=1&a=b",
            "10.0.0.5_cam",
            "rtsp://10.0.0.5:554/cam?channel=1&a=b",
        ),
        ("0", "camera0", "0"),
        ("/videos/front yard.mp4", "front_yard", "/videos/front yard.mp4"),
        ("  yard=http://cam/live.ts ", "yard", "http://cam/live.ts"),
    ],
)
def test_parse_names_and_sources(text, name, source):
    assert parse_source(text) == SourceSpec(name, source)


def test_a_file_whose_name_has_an_equals_sign_is_not_split(tmp_path):
    clip = tmp_path / "a=b.mp4"
    clip.write_bytes(b"x")
    assert parse_source(str(clip)).source == str(clip)


def test_repeated_names_are_numbered():
    names = [s.name for s in gather(["a-2=1", "a.mp4", "x/a.mp4", "a=0"])]
    assert names == ["a-2", "a", "a-3", "a-4"]


def test_list_file_with_comments_and_names(tmp_path):
    listing = tmp_path / "cams.txt"
    listing.write_text("# garage\n\ngarage=rtsp://g/1\nrtsp://h/2  \n")
    assert read_sources(listing) == [
        SourceSpec("garage", "rtsp://g/1"),
        SourceSpec("h_2", "rtsp://h/2"),
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"# only a comment\n", "names no source"),
        (b"\xff\xfe\x00garbage", "not UTF-8"),
        (b"ok=\n", "line 1: source 'ok' has a name but no source"),
    ],
)
def test_bad_list_files_are_one_line_errors(tmp_path, content, message):
    listing = tmp_path / "cams.txt"
    listing.write_bytes(content)
    with pytest.raises(VidclsError, match=message) as e:
        read_sources(listing)
    assert str(listing) in str(e.value)


def test_missing_list_and_no_source():
    with pytest.raises(VidclsError, match="source list"):
        read_sources("/no/such/list.txt")
    with pytest.raises(VidclsError, match="no source given"):
        gather([], [])
