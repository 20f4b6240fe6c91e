"""The API's JSON schema as pydantic models, derived from the result model.

The classification document is :meth:`vidcls.results.VideoResult.to_dict`; its pydantic model
is built here from the dataclasses' own fields (:func:`derive`), so the OpenAPI schema FastAPI
generates follows ``results.py``. A field whose default is None is left out of the JSON when
None (optional here); every other field is always written (required here). ``extra="forbid"``
lets a test catch a key the schema lacks.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Union

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, create_model

from ..results import Category, FrameResult, Segment, VideoResult

_STRICT = ConfigDict(extra="forbid")
_DERIVED: dict[type, type[BaseModel]] = {}


def _translate(tp: Any) -> Any:
    """``tp`` with every result dataclass in it replaced by its derived model."""
    if tp in _DERIVED:
        return _DERIVED[tp]
    args = typing.get_args(tp)
    if not args:
        return tp
    origin = typing.get_origin(tp)
    translated = tuple(_translate(a) for a in args)
    if origin in (Union, types.UnionType):
        return Union[translated]  # noqa: UP007 - built from a tuple
    return origin[translated[0] if len(translated) == 1 else translated]


def derive(
    cls: type,
    *,
    exclude: tuple[str, ...] = (),
    override: dict[str, Any] | None = None,
    name: str | None = None,
) -> type[BaseModel]:
    """A pydantic model of ``cls``'s ``to_dict()``: its dataclass fields less ``exclude``,
    with the types in ``override`` (the JSON differs from the attribute there)."""
    hints = typing.get_type_hints(cls, localns={"np": np})
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name in exclude:
            continue
        tp = (override or {}).get(f.name, _translate(hints[f.name]))
        optional = f.default is None
        fields[f.name] = (tp | None if optional else tp, None if optional else ...)
    model = create_model(
        name or cls.__name__,
        __config__=_STRICT,
        __doc__=" ".join((cls.__doc__ or "").split()),
        **fields,
    )
    _DERIVED[cls] = model
    return model


CategoryModel = derive(Category)
SegmentModel = derive(Segment)
FrameModel = derive(FrameResult, exclude=("probabilities", "events"), name="Frame")
Summary = create_model(
    "Summary",
    __config__=_STRICT,
    __doc__="The prediction after the last frame fed.",
    top=(list[CategoryModel], ...),
)
VideoResultModel = derive(
    VideoResult, exclude=("info", "labels"), override={"summary": Summary}, name="VideoResult"
)


class ClassifyResponse(VideoResultModel):
    """The document of ``vidcls classify --format json`` (``source``: the uploaded file's name;
    ``frames`` empty with ``summary_only``), with ``plot`` on request."""

    plot: str | None = Field(None, description="the timeline plot: data:image/png;base64,...")


class ClassifyQuery(BaseModel):
    """The query parameters of ``POST /v1/classify``."""

    model: str | None = Field(None, description="model id from /v1/models [the default]")
    fps: str | None = Field(
        None, description="frames fed per second, or 'native' for every frame [the model's: 5]"
    )
    top_k: int = Field(5, ge=0, description="categories per frame; 0: all")
    threshold: float = Field(0.0, ge=0, le=1, description="minimum score reported")
    window: float | None = Field(
        None, gt=0, allow_inf_nan=False, description="windowed classification, seconds"
    )
    segments: bool = Field(False, description="add action segments")
    plot: bool = Field(False, description="add the timeline plot as a PNG data URL")
    summary_only: bool = Field(False, description="leave out the per-frame results")
    filename: str | None = Field(None, description="the file's name, for a raw body")


class ErrorBody(BaseModel):
    """Every error's body."""

    detail: str


class Health(BaseModel):
    """Liveness and load."""

    status: str
    version: str
    streams: int
    max_streams: int
    skipped: int = Field(description="live frames answered skipped (a newer one came first)")
    uploads: int = Field(description="uploads being received")
    max_uploads: int
    jobs: int = Field(description="files being classified")
    max_jobs: int
    cameras: str | None = Field(
        None, description="with --config: `watching`, or `done` once every camera has ended"
    )
    failed_cameras: dict[str, str] | None = Field(
        None,
        description="with --config: each camera that could not be opened, and why (the "
        "others are watched)",
    )


class ModelInfo(BaseModel):
    """One model offered (``input`` is [height, width]; ``fps`` None: every frame)."""

    id: str
    kind: str = Field(description="zoo or file")
    default: bool
    input: list[int] | None = None
    fps: float | None = None
    classes: int | None = None
    loaded_threads: list[int]


class ThreadRange(BaseModel):
    """Threads a live stream starts with, and the most a page may choose."""

    default: int
    max: int


class LiveSettings(BaseModel):
    """The categories and window of live streams."""

    top_k: int
    window: float | None


class Limits(BaseModel):
    """Past these, requests are refused."""

    max_upload_bytes: int
    max_uploads: int = Field(description="uploads received at once")
    upload_timeout: float = Field(description="seconds an upload may send nothing before 408")
    max_streams: int
    max_jobs: int
    max_frame_bytes: int


class Models(BaseModel):
    """The models offered, the thread range, live stream settings and the server's limits."""

    default: str
    models: list[ModelInfo]
    threads: ThreadRange
    live: LiveSettings
    limits: Limits


class Upload(BaseModel):
    """A video as ``multipart/form-data``: one file field (any name; ``file`` by custom)."""

    file: bytes


def upload_body() -> dict:
    """The OpenAPI request body of ``POST /v1/classify`` (the route reads it itself)."""
    form = Upload.model_json_schema()
    raw = {"schema": form["properties"]["file"]}
    return {
        "required": True,
        "content": {
            "multipart/form-data": {"schema": form},
            "application/octet-stream": raw,
            "video/*": raw,
        },
    }


def error_responses(descriptions: dict[int, str]) -> dict[int | str, dict[str, Any]]:
    """FastAPI ``responses=`` entries: each status with its description and the error body."""
    return {
        status: {"model": ErrorBody, "description": text} for status, text in descriptions.items()
    }
