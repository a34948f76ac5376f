"""Specification of the run directory reader and the self-contained HTML report."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import primekit
from primekit._render import thumbnail_bytes
from primekit.io import write_table
from primekit.report import render_report, write_report
from primekit.run_folder import load_run
from primekit.search import write_modes

EVIL_TAG = "<script>alert(1)</script>"
EVIL_CLASS = 'bird"><img src=x onerror=alert(2)>'
SEARCH = {"min_size": 10, "min_drop": 0.3, "max_tags": 3, "necessity": {"2": 0.1, "3": 0.05}}
COLOURS = {"cat": (200, 120, 40), "dog": (90, 60, 30), EVIL_CLASS: (40, 90, 200)}


def make_run_dir(root: Path, *, n_per_class: int = 60, seed: int = 0) -> Path:
    """A tiny run directory like ``primekit demo --out`` writes, with planted failure modes.

    Three classes (one whose name is markup); tags ``grass, water, night, snow`` and a tag that is
    a script. Planted: cat+night fails, dog+grass+water fails (neither tag alone), and the script
    tag fails on the markup class. Images are PIL-drawn PNGs with relative paths.
    """
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    (root / "images").mkdir(exist_ok=True)
    (root / "figures").mkdir(exist_ok=True)
    rows, tag_rows = [], []
    classes = list(COLOURS)
    for c, cls in enumerate(classes):
        for i in range(n_per_class):
            sid = f"s{c}_{i:03d}"
            tags = {
                t: bool(rng.random() < p)
                for t, p in (
                    ("grass", 0.5),
                    ("water", 0.5),
                    ("night", 0.35),
                    ("snow", 0.2),
                    (EVIL_TAG, 0.3),
                )
            }
            p_wrong = 0.05
            if cls == "cat" and tags["night"]:
                p_wrong = 0.9
            if cls == "dog" and tags["grass"] and tags["water"]:
                p_wrong = 0.9
            if cls == EVIL_CLASS and tags[EVIL_TAG]:
                p_wrong = 0.9
            correct = bool(rng.random() >= p_wrong)
            pred = cls if correct else classes[(c + 1) % len(classes)]
            img = Image.new("RGB", (32, 32), (30, 30, 60) if tags["night"] else (200, 220, 240))
            draw = ImageDraw.Draw(img)
            if tags["grass"]:
                draw.rectangle([0, 24, 31, 31], fill=(40, 160, 40))
            if tags["water"]:
                draw.rectangle([0, 20, 15, 31], fill=(40, 80, 200))
            draw.ellipse([8, 6, 24, 22], fill=COLOURS[cls])
            path = f"images/{sid}.png"
            img.save(root / path)
            rows.append(
                {
                    "id": sid,
                    "label": cls,
                    "pred": pred,
                    "correct": correct,
                    "confidence": float(rng.random()),
                    "split": "test",
                    "path": path,
                }
            )
            tag_rows += [{"id": sid, "tag": t, "score": 0.9} for t, on in tags.items() if on]
            tag_rows += [{"id": sid, "tag": t, "score": 0.2} for t, on in tags.items() if not on]
    samples = pd.DataFrame(rows)
    long = pd.DataFrame(tag_rows)
    write_table(samples, root / "samples.parquet")
    write_table(long, root / "tags.parquet", metadata={"tagger": "synthetic"})
    matrix = long.pivot(index="id", columns="tag", values="score") >= 0.5
    labels = samples.set_index("id")["label"]
    correct = samples.set_index("id")["correct"]
    necessity = {int(k): v for k, v in SEARCH["necessity"].items()}
    modes = primekit.find_failure_modes(
        matrix,
        labels,
        correct,
        min_size=SEARCH["min_size"],
        min_drop=SEARCH["min_drop"],
        max_tags=SEARCH["max_tags"],
        necessity=necessity,
    )
    write_modes(modes, root / "failure_modes.csv")
    summary = {
        "classifier_accuracy": float(correct.mean()),
        "n_failure_modes": len(modes),
        "precision": 1.0,
        "recall": 0.75,
        "seconds": 1.5,
        "search": SEARCH,
        "note": "<i>not markup</i>",
    }
    (root / "summary.json").write_text(json.dumps(summary))
    Image.new("RGB", (60, 40), (250, 250, 250)).save(root / "figures" / "02_overview.png")
    return root


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return make_run_dir(tmp_path_factory.mktemp("run") / "demo")


class Page(HTMLParser):
    """Collects what matters of a page: elements, text, scripts, attributes."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        (self.scripts if self._in_script else self.text).append(data)


def parse(text: str) -> Page:
    page = Page()
    page.feed(text)
    page.close()
    return page


# ---------------------------------------------------------------------------------------------
# pieces of the report


def test_thumbnails_never_fail(tmp_path):
    from PIL import Image

    good = tmp_path / "a.png"
    Image.new("RGB", (20, 10), "red").save(good)
    broken = tmp_path / "b.png"
    broken.write_bytes(b"not a png")
    for path in (good, broken, tmp_path / "missing.png", None):
        data = thumbnail_bytes(path, size=40)
        with Image.open(__import__("io").BytesIO(data)) as im:
            assert max(im.size) == 40


# ---------------------------------------------------------------------------------------------
# the report


def test_report_is_one_self_contained_file(run_dir, tmp_path):
    out = write_report(run_dir, tmp_path / "sub" / "report.html")
    text = out.read_text(encoding="utf-8")
    page = parse(text)
    # no leftovers of the atomic write
    assert sorted(p.name for p in out.parent.iterdir()) == ["report.html"]
    # nothing is fetched from anywhere: every src/href is a data URI or an in-page anchor
    for tag, attrs in page.tags:
        for key in ("src", "href"):
            if key in attrs:
                assert attrs[key].startswith(("data:", "#")), (tag, attrs[key][:40])
        assert tag not in ("link", "iframe", "object", "embed")
    csp = [a["content"] for t, a in page.tags if t == "meta" and a.get("http-equiv")]
    assert csp and "default-src 'none'" in csp[0]
    images = [a for t, a in page.tags if t == "img"]
    thumbs = [a for a in images if a["src"].startswith("data:image/jpeg;base64,")]
    figures = [a for a in images if a["src"].startswith("data:image/png;base64,")]
    assert len(thumbs) > 20 and len(figures) == 1 and len(thumbs) + len(figures) == len(images)
    assert len(text) < 2_000_000


def test_report_lists_every_mode_in_a_sortable_table(run_dir):
    run = load_run(run_dir)
    page = parse(render_report(run))
    heads = [a for t, a in page.tags if t == "th" and "title" in a]
    assert len(heads) == 9  # #, class, tags, n_tags, size, accuracy, class_accuracy, drop, margin
    sections = [a["id"] for t, a in page.tags if t == "section"]
    assert sections == [f"mode-{i + 1}" for i in range(len(run.modes))]
    numeric = [
        a["data-sort-value"]
        for t, a in page.tags
        if t == "td" and a.get("class") == "num" and "data-sort-value" in a
    ]
    assert all(v == "" or float(v) == float(v) for v in numeric)
    text = " ".join(page.text)
    for description in run.modes["description"]:
        assert description in text
    assert "dog grass water" in text
    assert len(page.scripts) == 1 and "aria-sort" in page.scripts[0]


def test_report_escapes_every_data_string(run_dir):
    text = render_report(run_dir)
    page = parse(text)
    # the script tag in the data is text, never an element; the class name never breaks out
    assert len([t for t, _ in page.tags if t == "script"]) == 1
    assert "<script>alert(1)</script>" not in text.replace("<script>" + page.scripts[0], "")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert not any("onerror" in attrs for _, attrs in page.tags)
    assert [a for t, a in page.tags if t == "img" and a.get("src") == "x"] == []
    assert EVIL_TAG in " ".join(page.text)  # shown to the reader, as text
    assert EVIL_CLASS in " ".join(page.text)
    assert "<i>not markup</i>" in " ".join(page.text)
    # the only script is the sorting script, pinned by its hash in the CSP
    import base64
    import hashlib

    digest = base64.b64encode(hashlib.sha256(page.scripts[0].encode()).digest()).decode()
    assert f"'sha256-{digest}'" in text


def test_report_thumbnails_are_random_but_reproducible(run_dir):
    a, b, c = (render_report(run_dir, seed=s) for s in (0, 0, 1))
    assert a == b
    assert a != c


def test_report_options(run_dir):
    page = parse(render_report(run_dir, max_modes=1, n_thumbs=0, figures=False, title="T<1>"))
    assert [a["id"] for t, a in page.tags if t == "section"] == ["mode-1"]
    # the table links only to the sections there are
    assert [a["href"] for t, a in page.tags if t == "a"] == ["#mode-1"]
    assert [t for t, _ in page.tags if t == "img"] == []
    assert "T<1>" in page.text
    for bad in ({"n_thumbs": -1}, {"thumb_size": 2}, {"max_modes": "3"}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            render_report(run_dir, **bad)
    with pytest.raises(ValueError, match="out"):
        write_report(run_dir, "report.txt")


def test_report_without_modes(run_dir, tmp_path):
    run = load_run(run_dir)
    run.modes = run.modes.head(0)
    page = parse(render_report(run))
    assert "No failure modes" in " ".join(page.text)


def test_cli_writes_the_report(run_dir, tmp_path, capsys):
    from primekit.cli import main

    out = tmp_path / "r.html"
    assert main(["report", "--run", str(run_dir), "--out", str(out), "--n-thumbs", "4"]) == 0
    assert out.is_file() and re.search(r"<table class=\"modes\">", out.read_text())
    assert main(["report", "--run", str(tmp_path / "missing"), "--out", str(out)]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_new_mode_columns_reach_the_table_and_both_mode_cards(run_dir, monkeypatch):
    """One ModeColumn added to the list shows a new column in the report and the explorer."""
    from primekit import _render
    from primekit.explore import FailureModeExplorer

    columns = [
        *_render.MODE_COLUMNS,
        _render.ModeColumn("p_value", "p-value", "number", card=True),
        _render.ModeColumn("accuracy_low", "accuracy CI", "pct", card=True, upper="accuracy_high"),
    ]
    monkeypatch.setattr(_render, "MODE_COLUMNS", columns)
    run = load_run(run_dir)
    plain = parse(render_report(run))
    assert "p-value" not in " ".join(plain.text)  # a table without the columns: as before
    run.modes = run.modes.assign(p_value=0.0123, accuracy_low=0.1, accuracy_high=0.25)
    page = parse(render_report(run))
    heads = [a for t, a in page.tags if t == "th" and "title" in a]
    assert len(heads) == 11
    text = " ".join(page.text)
    assert "p-value" in text and "0.0123" in text and "10.0% – 25.0%" in text
    cards = [a for t, a in page.tags if t == "p" and a.get("class") == "pk-card-extra"]
    assert len(cards) == len(run.modes)
    explorer = FailureModeExplorer.from_run(run, n_images=2)
    explorer.modes_ = run.modes  # as if the search had computed them
    explorer.show_mode(0)
    assert "pk-card-extra" in explorer.info.value and "10.0% – 25.0%" in explorer.info.value


def test_a_figure_left_out_is_logged(run_dir, caplog):
    from primekit import report

    run = load_run(run_dir)
    assert run.figures
    with caplog.at_level("WARNING", logger="primekit.report"):
        assert report._figures(run, max_bytes=10) == []
    assert run.figures[0].name in caplog.text and "left out" in caplog.text


def test_filtered_out_modes_are_listed_separately_with_their_statistics(tmp_path):
    """A run found with max_q: the kept modes show their interval and q-value, and the paper's
    other modes get their own table (listed, not hidden)."""
    root = make_run_dir(tmp_path / "run", n_per_class=120)
    run = load_run(root)
    found = primekit.find_failure_modes(run, min_size=10, min_drop=0.2, max_q=1.0)
    assert len(found) >= 2
    cut = float(found["q_value"].sort_values().iloc[len(found) // 2 - 1])
    write_modes(found[found["q_value"] <= cut], root / "failure_modes.csv")
    write_modes(found[found["q_value"] > cut], root / "filtered_out.csv")
    summary = json.loads((root / "summary.json").read_text())
    summary.setdefault("search", {})["max_q"] = cut
    (root / "summary.json").write_text(json.dumps(summary))
    page = parse(render_report(root))
    text = " ".join(page.text)
    assert "q-value" in text and "drop 95% CI" in text and "expected drop" in text
    assert f"Filtered out: q-value above {cut}" in text
    tables = [a for t, a in page.tags if t == "table" and a.get("class") == "modes"]
    assert len(tables) == 2
    n_links = sum(1 for t, a in page.tags if t == "a" and a.get("href", "").startswith("#mode-"))
    assert n_links == int((found["q_value"] <= cut).sum())  # only the kept modes have sections
