"""The documentation: the site builds with ``mkdocs build --strict`` (a broken link, anchor or
page fails it), the cameras config reference is generated from the model that checks the file,
and every command block marked runnable in README.md and docs/*.md runs as written.

A block is marked by ``<!-- runnable -->`` on the line before its fence (```` ```sh ````,
```` ```bash ```` or ```` ```python ````). It runs from a fresh folder laid out as the repository
(``.venv``, ``docs``, ``tests``), with the shared models and clips beside it as ``../shared``,
so commands write into that folder (``results/...``), never into the repository or bare ``/tmp``.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from conftest import ROOT, SHARED, needs_shared

DOCS = ROOT / "docs"
MARKED = re.compile(
    r"^<!-- runnable(?: timeout=(?P<timeout>\d+))? -->\n"
    r"```(?P<lang>sh|bash|python)\n(?P<code>.*?)^```",
    re.M | re.S,
)
MARKER = re.compile(r"^<!-- runnable\b.*$", re.M)
FENCE = re.compile(r"^```(?P<lang>sh|bash|python)\n(?P<code>.*?)^```", re.M | re.S)
HANG_GUARD = 300  # seconds a block may take before it is called hung (not a speed bound)


@dataclass(frozen=True)
class Block:
    """One runnable block: where it is, its language and its code."""

    page: Path
    line: int
    lang: str
    code: str
    timeout: int = HANG_GUARD
    also: tuple[str, ...] = ()  # other places the same block is written (see distinct())

    @property
    def where(self) -> str:
        page = self.page.relative_to(ROOT) if self.page.is_relative_to(ROOT) else self.page
        return f"{page}:{self.line}"


def pages() -> list[Path]:
    """The README and every page of the site."""
    return [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]


def runnable_blocks(paths: list[Path]) -> list[Block]:
    """Every block marked runnable in ``paths``, in order."""
    found = []
    for path in paths:
        text = path.read_text()
        for m in MARKED.finditer(text):
            line = text.count("\n", 0, m.start("code"))  # the fence's line, 1-based
            timeout = int(m["timeout"]) if m["timeout"] else HANG_GUARD
            found.append(Block(path, line, m["lang"], m["code"], timeout))
    return found


def distinct(blocks: list[Block]) -> list[Block]:
    """Each block once: one written the same way on two pages (a first command in the
    getting-started page and in the reference) runs once, named by every place it is."""
    first: dict[tuple, Block] = {}
    for b in blocks:
        key = (b.lang, b.code, b.timeout)
        if key in first:
            first[key] = replace(first[key], also=(*first[key].also, b.where))
        else:
            first[key] = b
    return list(first.values())


def workspace(root: Path) -> Path:
    """A folder laid out as the repository, ``../shared`` beside it; returns the folder."""
    if sys.prefix == sys.base_prefix:
        pytest.skip("the docs' commands call .venv/bin/...: run the tests from a virtualenv")
    repo = root / "repo"
    repo.mkdir(parents=True)
    (repo / ".venv").symlink_to(sys.prefix, target_is_directory=True)
    for name in ("docs", "tests"):
        (repo / name).symlink_to(ROOT / name, target_is_directory=True)
    (root / "shared").symlink_to(SHARED.resolve(), target_is_directory=True)
    return repo


def run_block(block: Block, repo: Path) -> subprocess.CompletedProcess:
    """Run the block in ``repo`` as a reader would: shell blocks with bash, stopping at the
    first command that fails; Python blocks as a script."""
    env = {k: v for k, v in os.environ.items() if k != "VIDCLS_VERBOSE"}
    if block.lang == "python":
        script = repo / "block.py"
        script.write_text(block.code)
        command = [str(repo / ".venv" / "bin" / "python"), script.name]
    else:
        command = ["bash", "-e", "-o", "pipefail", "-c", block.code]
    return subprocess.run(
        command,
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=block.timeout,
        stdin=subprocess.DEVNULL,
    )


def check(block: Block, result: subprocess.CompletedProcess) -> None:
    """AssertionError naming the block's page and line when it failed."""
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-15:])
        also = f" (also at {', '.join(block.also)})" if block.also else ""
        raise AssertionError(
            f"{block.where}{also}: the {block.lang} block exits {result.returncode}:\n"
            f"{block.code}\n--- its output ends:\n{tail}"
        )


RUNNABLE = runnable_blocks(pages())
DISTINCT = distinct(RUNNABLE)


def test_every_runnable_marker_is_on_a_block():
    # A marker before a ```text block, or one line too far from its fence, would run nothing.
    for path in pages():
        text = path.read_text()
        markers = len(MARKER.findall(text))
        assert markers == len(runnable_blocks([path])), f"{path.name}: a marker on no block"
    assert len(RUNNABLE) >= 15, [b.where for b in RUNNABLE]
    assert any(b.page.name == "README.md" for b in RUNNABLE)


def test_no_command_writes_to_bare_tmp():
    # Commands in the docs write under the working folder (results/), never into a shared /tmp.
    offenders = []
    for path in pages():
        for m in FENCE.finditer(path.read_text()):
            if re.search(r"(?<![\w.~])/tmp\b", m["code"]):
                offenders.append(f"{path.name}: {m['code'].strip()[:80]}")
    assert not offenders, offenders


@needs_shared
@pytest.mark.parametrize("block", DISTINCT, ids=[b.where for b in DISTINCT])
def test_runnable_block(block: Block, tmp_path):
    check(block, run_block(block, workspace(tmp_path)))


@needs_shared
def test_a_broken_block_fails_naming_its_page_and_line(tmp_path):
    # A renamed flag (--top_k for --top-k) in the middle of a block: the commands after it
    # succeed, and the block still fails, naming where it is.
    page = tmp_path / "broken.md"
    page.write_text(
        "# Broken\n\n<!-- runnable -->\n```sh\n"
        ".venv/bin/vidcls classify ../shared/assets/videos/carving_ice_rpi.mp4 --top_k 3\n"
        "echo carried on\n```\n\n<!-- runnable -->\n```python\n"
        "import vidcls\n\nvidcls.classify_video('missing.mp4')\n```\n"
    )
    shell, python = runnable_blocks([page])
    assert (shell.line, python.line) == (4, 10)
    repo = workspace(tmp_path / "work")
    result = run_block(shell, repo)
    assert "carried on" not in result.stdout
    with pytest.raises(AssertionError, match=r"broken\.md:4: the sh block exits 2"):
        check(shell, result)
    with pytest.raises(AssertionError, match=r"broken\.md:10: the python block exits 1"):
        check(python, run_block(python, repo))


def test_a_block_written_twice_runs_once_naming_both_places(tmp_path):
    block = "<!-- runnable -->\n```sh\nfalse\n```\n\n"
    page = tmp_path / "twice.md"
    page.write_text(f"# Twice\n\n{block}{block}<!-- runnable -->\n```sh\ntrue\n```\n")
    once, other = distinct(runnable_blocks([page]))
    assert (once.line, once.also, other.code) == (4, (f"{page}:9",), "true\n")
    failed = subprocess.CompletedProcess(["bash"], 1, "", "")
    with pytest.raises(AssertionError, match=r"twice\.md:4 \(also at .*twice\.md:9\): the sh"):
        check(once, failed)


def mkdocs_build(config: Path, site: Path) -> subprocess.CompletedProcess:
    pytest.importorskip("mkdocs", reason="the docs extra is not installed")
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)],
        cwd=config.parent,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
    )


def test_site_builds_strict(tmp_path):
    result = mkdocs_build(ROOT / "mkdocs.yml", tmp_path / "site")
    assert result.returncode == 0, result.stderr
    reference = (tmp_path / "site" / "cameras" / "index.html").read_text()
    assert "keep_days" in reference and "min_duration" in reference  # the generated reference
    api = (tmp_path / "site" / "reference" / "index.html").read_text()
    assert "classify_video" in api and ":class:" not in api  # docstrings, roles as code


def test_a_broken_link_or_a_missing_page_fails_the_build(tmp_path):
    # The site's own settings (strict, link and anchor validation) on a small site: a page
    # linking to a page and to a heading that do not exist, and a page in the nav that is not
    # in docs/.
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "index.md").write_text(
        "# Home\n\nSee [nothing](nothing.md) and [no such part](other.md#no-such-part).\n"
    )
    (tmp_path / "docs" / "other.md").write_text("# Other\n\n## A part\n")
    (tmp_path / "mkdocs.yml").write_text(
        f"INHERIT: {ROOT / 'mkdocs.yml'}\ndocs_dir: docs\nhooks: []\nplugins: [search]\n"
        "nav: [index.md, other.md, gone.md]\n"
    )
    result = mkdocs_build(tmp_path / "mkdocs.yml", tmp_path / "site")
    said = result.stdout + result.stderr
    assert result.returncode == 1, said
    assert "'nothing.md', but the target is not found" in said
    assert "does not contain an anchor '#no-such-part'" in said
    assert "'gone.md' is included in the 'nav'" in said
    assert "Aborted with 3 warnings in strict mode" in said


def config_reference():
    """The MkDocs hook that renders the cameras config reference, as a module."""
    path = DOCS / "hooks" / "config_reference.py"
    spec = importlib.util.spec_from_file_location("config_reference", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_config_reference_has_every_key_of_the_model():
    from vidcls import config

    text = config_reference().render()
    for model in (config.ConfigFile, config.CameraConfig, config.ZoneConfig, config.ClipsConfig):
        for key in model.model_fields:
            assert f"| `{key}` |" in text, key


def test_config_reference_refuses_a_key_it_cannot_describe(monkeypatch):
    hook = config_reference()
    meanings = dict(hook.MEANINGS)
    del meanings["ClipsConfig.keep_gb"]  # a key added to the model, not described
    monkeypatch.setattr(hook, "MEANINGS", meanings)
    with pytest.raises(ValueError, match=r"ClipsConfig\.keep_gb has no description"):
        hook.render()
    stale = {**config_reference().MEANINGS, "ClipsConfig.gone": "a key the model dropped"}
    monkeypatch.setattr(hook, "MEANINGS", stale)
    with pytest.raises(ValueError, match=r"ClipsConfig\.gone"):
        hook.render()
