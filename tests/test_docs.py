"""docs/api.md names every public name (regenerate it with `python docs/make_api.py`)."""

import importlib
import pathlib
import re

import pytest

DOCS = pathlib.Path(__file__).resolve().parents[1] / "docs"


@pytest.mark.parametrize(
    "module_name", ["jinit", "jinit.torch", "jinit.keras", "jinit.train", "jinit.train.schema"]
)
def test_api_reference_lists_every_public_name(module_name):
    text = (DOCS / "api.md").read_text()
    section = text.split(f"## `{module_name}`\n", 1)
    assert len(section) == 2, f"docs/api.md has no section for {module_name}"
    body = section[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^- (?:class )?`(\w+)", body, flags=re.M))
    missing = set(importlib.import_module(module_name).__all__) - listed
    assert not missing, f"not in docs/api.md (run python docs/make_api.py): {sorted(missing)}"


def test_design_notes_exist_and_the_readme_links_the_docs():
    readme = (DOCS.parent / "README.md").read_text()
    assert "docs/api.md" in readme and "docs/design.md" in readme
    design = (DOCS / "design.md").read_text()
    for topic in ("Layout", "Data flow", "Interning", "Samplers", "jinit.train"):
        assert topic in design, topic
