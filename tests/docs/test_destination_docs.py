"""The committed docs/destinations/ pages match what scripts/gen_destination_docs.py renders now."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

from destinations.registry import REGISTRY
from tests import scripts

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "destinations"


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    """The generator module."""
    return scripts.load("gen_destination_docs")


def test_committed_docs_are_fresh(gen: ModuleType) -> None:
    """Every generated file on disk equals its in-memory rendering; none is missing or left over."""
    stale = gen.stale_files(DOCS, gen.render_all())
    assert stale == [], f"stale docs {stale}: run python scripts/gen_destination_docs.py"


def test_every_registered_destination_has_a_page(gen: ModuleType) -> None:
    """One page per REGISTRY type, plus the README index linking each of them."""
    rendered = gen.render_all()
    assert set(rendered) == {"README.md"} | {f"{kind}.md" for kind in REGISTRY}
    for kind in REGISTRY:
        assert f"]({kind}.md)" in rendered["README.md"]


def test_pages_show_schema_keys_rows_and_limits(gen: ModuleType) -> None:
    """Meta's page lists its YAML keys, a hashed and a raw row, an event name and the adapter limits."""
    page = gen.render_all()["meta.md"]
    assert "| `pixel_id` | string matching `^[0-9]+$` | yes |" in page
    assert "| `em` | <- | `hashed.email` | hashed (1-element list) |" in page
    assert "| `fbc` | <- | `ids.fbc` | raw |" in page
    assert "| `sign_up` | `CompleteRegistration` |" in page
    assert "| Max batch size | 1000 events |" in page


def test_conversion_platforms_explain_the_conversions_map(gen: ModuleType) -> None:
    """Google and LinkedIn have no event-name table: their pages point at `conversions:` instead."""
    rendered = gen.render_all()
    for kind in ("google", "linkedin"):
        assert "`conversions:` map" in rendered[f"{kind}.md"]
        assert "| Canonical event | Platform event |" not in rendered[f"{kind}.md"]


def test_check_reports_stale_and_write_fixes(gen: ModuleType, tmp_path: Path) -> None:
    """--check exits 1 naming edited, missing and leftover files; a write makes --check pass."""
    assert gen.main(["--out", str(tmp_path)]) == 0
    assert gen.main(["--check", "--out", str(tmp_path)]) == 0
    (tmp_path / "meta.md").write_text("edited by hand\n", encoding="utf-8")
    (tmp_path / "tiktok.md").unlink()
    (tmp_path / "old.md").write_text("gone platform\n", encoding="utf-8")
    assert gen.stale_files(tmp_path, gen.render_all()) == ["meta.md", "tiktok.md", "old.md"]
    assert gen.main(["--check", "--out", str(tmp_path)]) == 1
    assert gen.main(["--out", str(tmp_path)]) == 0
    assert gen.main(["--check", "--out", str(tmp_path)]) == 0
    assert not (tmp_path / "old.md").exists()
