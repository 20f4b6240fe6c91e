"""MkDocs hook: the cameras config reference, rendered from the pydantic model that checks
the file (``vidcls.config.ConfigFile``) each time the site is built, so it cannot drift.

Keys, types, bounds and defaults come from the model's JSON schema; each key's meaning from
its ``Field(description=...)`` or, failing that, :data:`MEANINGS` here. A key without a
meaning, or a meaning for a key the model does not have, fails the build.
"""

from __future__ import annotations

from typing import Any

MARKER = "<!-- config-reference -->"

MEANINGS = {
    "Filters.allow": "only these labels' events are published (and results reported)",
    "Filters.deny": "these labels' events are never published",
    "Filters.threshold": "drop categories scoring below this (`--threshold`)",
    "Filters.top_k": "categories per result, 0 for all (`--top-k`)",
    "Filters.window": "seconds of video each prediction covers; 0 for cumulative (`--window`)",
    "Filters.enter": "a segment starts when its smoothed score rises past this (`--enter`)",
    "Filters.exit": "and ends when it falls below this (`--exit`)",
    "Filters.min_duration": "seconds a segment must last to be reported (`--min-duration`)",
    "Filters.cooldown": "seconds in which no second event of the same label is published",
    "Filters.fps": "frames per second fed to the model (`--fps`)",
    "ZoneConfig.box": "`[x1, y1, x2, y2]` as fractions of the frame, 0,0 at the top left, "
    "with `x1 < x2` and `y1 < y2`; a zone may be given as the box alone",
    "CameraConfig.source": "a camera index, a device path, an `rtsp://`, `rtmp://`, "
    "`http(s)://`, `udp://`, `tcp://` or `srt://` URL, or a file (relative paths are from "
    "where vidcls is started); a URL that cannot be taken apart is refused",
    "CameraConfig.zones": "regions classified as streams of their own, by name",
    "CameraConfig.whole": "classify the whole frame too (by default only a camera without "
    "zones is)",
    "ClipsConfig.folder": "where clips and snapshots go, as `FOLDER/<camera>/`; a file, or a "
    "folder that cannot be made, is refused at start",
    "ClipsConfig.pre_roll": "seconds of video kept before a segment starts (`--pre-roll`)",
    "ClipsConfig.post_roll": "seconds recorded after it ends (`--post-roll`)",
    "ClipsConfig.max_clip": "a longer segment gets its first this many seconds (`--max-clip`)",
    "ClipsConfig.keep_days": "delete clips and snapshots older than this (`--keep-days`)",
    "ClipsConfig.keep_gb": "delete the oldest past this many GB (`--keep-gb`)",
    "ClipsConfig.snapshots": "a JPEG of each event's best frame (read by `vidcls serve "
    "--config`; `vidcls live --config` writes them either way)",
    "ConfigFile.model": "zoo name (`vidcls models`) or `.tflite` path (`--model`)",
    "ConfigFile.labels": "label file, one class per line (`--labels`)",
    "ConfigFile.threads": "CPU threads for inference (`--threads`)",
    "ConfigFile.mqtt": "broker, `mqtt://[user:password@]host[:port][/prefix]` or `mqtts://` "
    "(`--mqtt`)",
    "ConfigFile.mqtt_prefix": "topic prefix, `vidcls` if unset (`--mqtt-prefix`)",
    "ConfigFile.webhook": "URL, or a list of them, each event is POSTed to (`--webhook`)",
    "ConfigFile.clips": "event clips and snapshots (see below)",
    "ConfigFile.loop": "files played again from the start at their end, as `--loop` (demos, tests)",
    "ConfigFile.replay": "files played on a virtual clock, as fast as the CPU goes, as `--replay`",
    "ConfigFile.cameras": "the cameras, by name (letters, digits, `_ . -`)",
    "ConfigFile.groups": "camera groups, each a process with its own model, N or `auto` "
    "(`--groups`)",
    "ConfigFile.cameras_per_group": "cameras one group takes with `groups: auto`, instead "
    "of the figure `vidcls bench --streams` measured",
    "ConfigFile.events_db": "where `vidcls serve --config` keeps the events: "
    "`postgresql://user:password@host[:port]/db` (needs `pip install 'vidcls[postgres]'`) or "
    "an SQLite file; `DATA/events.db` if unset (`vidcls serve --events-db`)",
}

SECTIONS = (  # model, heading, what the keys are
    ("ConfigFile", "Top level", "Keys at the top of the file."),
    (
        "Filters",
        "Filters",
        "Per camera or zone, or at the top level as every camera's "
        "default; a zone takes its camera's unless it sets its own.",
    ),
    ("CameraConfig", "`cameras.NAME`", "Each camera, besides the filters."),
    ("ZoneConfig", "`cameras.NAME.zones.NAME`", "Each zone, besides the filters."),
    (
        "ClipsConfig",
        "`clips`",
        "Event clips (the camera's own packets, not re-encoded) and snapshots.",
    ),
)


def _models() -> dict[str, Any]:
    from vidcls import config

    return {name: getattr(config, name) for name, _, _ in SECTIONS}


def _own_fields(models: dict[str, Any], name: str) -> list[str]:
    """The model's fields, less the filters it inherits (listed once, in their own table)."""
    fields = list(models[name].model_fields)
    if name == "Filters":
        return fields
    return [f for f in fields if f not in models["Filters"].model_fields]


def _meaning(models: dict[str, Any], name: str, field: str) -> str:
    described = models[name].model_fields[field].description
    meaning = described or MEANINGS.get(f"{name}.{field}")
    if not meaning:
        raise ValueError(
            f"vidcls.config.{name}.{field} has no description: add one to MEANINGS in "
            f"docs/hooks/config_reference.py (or Field(description=...) in the model)"
        )
    return meaning


def _type(schema: dict[str, Any]) -> str:
    """A key's JSON schema as a short phrase: `number 0 to 1`, `list of text`, ..."""
    options = [s for s in schema.get("anyOf", [schema]) if s.get("type") != "null"]
    return " or ".join(_one_type(s) for s in options)


def _one_type(s: dict[str, Any]) -> str:
    if "$ref" in s:
        name = s["$ref"].rsplit("/", 1)[-1]
        return {"ClipsConfig": "mapping, see [`clips`](#clips)"}.get(name, "mapping")
    kind = s.get("type")
    if kind == "array":
        if "prefixItems" in s:
            return f"list of {len(s['prefixItems'])} numbers"
        return f"list of {_one_type(s.get('items', {}))}"
    if kind == "object":
        value = s.get("additionalProperties", {})
        what = {"CameraConfig": "camera", "ZoneConfig": "zone"}.get(
            value.get("$ref", "").rsplit("/", 1)[-1], _one_type(value)
        )
        bounds = _count_bounds(s, "Properties")
        return f"mapping of name to {what}{bounds}"
    word = {"number": "number", "integer": "integer", "string": "text", "boolean": "true/false"}
    return word.get(kind, str(kind)) + _bounds(s)


def _bounds(s: dict[str, Any]) -> str:
    low = s.get("minimum", s.get("exclusiveMinimum"))
    high = s.get("maximum")
    if low is not None and high is not None:
        return f", {_num(low)} to {_num(high)}"
    if "exclusiveMinimum" in s:
        return f", over {_num(low)}"
    if low is not None:
        return f", at least {_num(low)}"
    return ""


def _count_bounds(s: dict[str, Any], what: str) -> str:
    low, high = s.get(f"min{what}"), s.get(f"max{what}")
    if low is not None and high is not None:
        return f", {low} to {high} of them"
    return ""


def _num(x: float) -> str:
    return f"{x:g}"


def _default(name: str, field: str, schema: dict[str, Any], required: set[str]) -> str:
    if field in required:
        return "required"
    value = schema.get("default")
    if value is None or value == {}:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    return f"`{_num(value) if isinstance(value, float) else value}`"


def render() -> str:
    """The reference: one table per section, every key of the model in one of them."""
    models = _models()
    lines = []
    for name, heading, intro in SECTIONS:
        schema = models[name].model_json_schema()
        props, required = schema["properties"], set(schema.get("required", []))
        lines += [f"### {heading}", "", intro, "", "| key | type | default | meaning |"]
        lines.append("| --- | --- | --- | --- |")
        for field in _own_fields(models, name):
            p = props[field]
            cells = (f"`{field}`", _type(p), _default(name, field, p, required))
            lines.append(f"| {' | '.join(cells)} | {_meaning(models, name, field)} |")
        lines.append("")
    stale = {k for k in MEANINGS if k.split(".")[1] not in models[k.split(".")[0]].model_fields}
    if stale:
        raise ValueError(
            f"MEANINGS in docs/hooks/config_reference.py names keys the "
            f"model does not have: {sorted(stale)}"
        )
    return "\n".join(lines)


def on_page_markdown(markdown: str, page, config, files) -> str:
    """MkDocs calls this for every page: the marker becomes the reference."""
    if MARKER not in markdown:
        return markdown
    from mkdocs.exceptions import PluginError

    try:
        return markdown.replace(MARKER, render())
    except ValueError as e:
        raise PluginError(str(e)) from None
