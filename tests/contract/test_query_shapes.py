"""docs/design.md lists every query shape of shared/query_shapes/, as the code has it."""

from __future__ import annotations

from shared.query_shapes import BY_ID, INDEXED, SCAN, SHAPES
from tools import contracts


def test_design_table_matches_the_list():
    assert contracts.DESIGN_PATH.read_text() == contracts.design_document(), (
        "docs/design.md's query shapes are stale; run scripts/gen-contracts"
    )


def test_every_shape_names_its_index_and_how_the_embedded_server_serves_it():
    for shape in SHAPES:
        assert "`" in shape.index or shape.index.startswith("none:"), shape
        assert shape.embedded == BY_ID or shape.embedded.startswith(("unique key", INDEXED, SCAN)), shape


def test_only_a_read_of_every_document_scans():
    # the launcher serves every declared index (SecondaryIndex); a shape marked as a scan must be one
    # that reads the whole collection on purpose
    for shape in SHAPES:
        if shape.embedded.startswith(SCAN):
            assert not shape.terms and shape.index.startswith("none:"), shape


def test_a_hot_shape_that_scans_says_how_to_fix_it():
    for shape in SHAPES:
        if shape.hot and shape.embedded.startswith(SCAN):
            assert "to fix:" in shape.embedded, shape


def test_every_shape_names_the_service_or_shared_module_sending_it():
    for shape in SHAPES:
        assert shape.service is not None or shape.issued_by.startswith(("shared/", "every ")), shape


def test_no_shape_is_listed_twice():
    keys = [(c, frozenset(s.terms), frozenset(s.optional), s.sort) for s in SHAPES for c in s.collections]
    assert len(keys) == len(set(keys))
