"""The search index on both backends (SQLite FTS5, PostgreSQL full-text search), kept by the
transactions that write the data it covers."""

from __future__ import annotations

import pytest

from proxy.sources.paths import SourcePath
from proxy.stores import Store
from proxy.stores.base import AltText, SourceRecord

PHASH = "c3c3c3c3c3c3c3c3"
NEAR = "c3c3c3c3c3c3c3c2"  # one bit away
FAR = "0f0f0f0f0f0f0f0f"


def seed(store: Store) -> None:
    store.record_source(
        SourceRecord(SourcePath("shop/shoes/red.jpg"), phash=PHASH, content_class="photo", faces=0)
    )
    store.record_source(
        SourceRecord(SourcePath("team/anna.jpg"), phash=FAR, content_class="photo", faces=2)
    )
    store.record_source(
        SourceRecord(SourcePath("docs/flow.png"), phash="ffff0000ffff0000", content_class="diagram")
    )
    store.put_alt(
        AltText(SourcePath("shop/shoes/red.jpg"), "A red leather shoe on white.", "machine")
    )
    store.put_alt(AltText(SourcePath("team/anna.jpg"), "Two people smiling at a desk.", "user"))
    store.put_alt(AltText(SourcePath("docs/flow.png"), "A flow chart of the shoe order.", "draft"))


def paths(hits: list) -> list[str]:  # type: ignore[type-arg]
    return [hit.path for hit in hits]


def test_alt_text_words_match_as_prefixes_and_rank_alt_above_path(store: Store) -> None:
    seed(store)
    assert paths(store.search("leather")) == ["shop/shoes/red.jpg"]
    assert paths(store.search("smil")) == ["team/anna.jpg"]  # a prefix
    hits = store.search("shoe")
    assert set(paths(hits)) == {"shop/shoes/red.jpg", "docs/flow.png"}
    assert all(hit.score > 0 for hit in hits)
    assert hits[0].alt  # found with its alt text
    assert store.search("shoe leather")[0].path == "shop/shoes/red.jpg"  # every word
    assert store.search("nothing-like-it") == []


def test_path_folder_class_faces_and_moderation_are_searchable(store: Store) -> None:
    seed(store)
    assert paths(store.search("anna")) == ["team/anna.jpg"]
    assert paths(store.search("faces")) == ["team/anna.jpg"]
    assert paths(store.search("diagram")) == ["docs/flow.png"]
    assert set(paths(store.search("", content_class="photo"))) == {
        "shop/shoes/red.jpg",
        "team/anna.jpg",
    }
    assert paths(store.search("", folder="shop")) == ["shop/shoes/red.jpg"]
    assert paths(store.search("a", folder="shop/shoes")) == ["shop/shoes/red.jpg"]
    assert store.search("", folder="sho") == []  # a folder, not a string prefix
    store.bind_content(SourcePath("team/anna.jpg"), "id", "digest-anna")
    store.set_verdict("digest-anna", "held", 0.9)  # the same transaction reindexes it
    assert paths(store.search("held")) == ["team/anna.jpg"]
    [hit] = store.search("anna")
    assert hit.moderation == "held" and hit.faces == 2


def test_near_duplicates_share_a_searchable_group(store: Store) -> None:
    seed(store)
    store.record_source(SourceRecord(SourcePath("sale/red-copy.jpg"), phash=NEAR))
    first = store.source(SourcePath("shop/shoes/red.jpg"))
    copy = store.source(SourcePath("sale/red-copy.jpg"))
    other = store.source(SourcePath("team/anna.jpg"))
    assert first and copy and other
    assert first.dup_group == copy.dup_group != other.dup_group
    assert first.dup_group is not None
    assert set(paths(store.search(first.dup_group))) == {"shop/shoes/red.jpg", "sale/red-copy.jpg"}


def test_an_alt_text_change_is_searchable_at_once(store: Store) -> None:
    seed(store)
    store.put_alt(AltText(SourcePath("shop/shoes/red.jpg"), "A blue sneaker.", "user"))
    assert paths(store.search("sneaker")) == ["shop/shoes/red.jpg"]
    assert store.search("leather") == []


def test_operators_of_either_query_language_are_only_words(store: Store) -> None:
    seed(store)
    for hostile in ('"', "shoe*", "a:* | b", "NEAR(shoe red)", "'; DROP TABLE x; --", "!()&"):
        store.search(hostile)  # no error: reduced to words
    assert paths(store.search("leather!!")) == ["shop/shoes/red.jpg"]


def test_what_was_written_before_the_index_is_indexed_by_its_migration(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import proxy.stores.sql.schema as sql
    from proxy.stores import open_store

    monkeypatch.setattr(sql, "MIGRATIONS", sql.MIGRATIONS[:8])
    old = open_store(store_url)
    with old.transaction() as tx:  # rows as a store of schema 8 wrote them
        tx.run(
            "INSERT INTO sources (path, content_class, first_seen, last_seen) "
            "VALUES ('old/owl.jpg', 'art', 0, 0)"
        )
        tx.run(
            "INSERT INTO alt_texts (path, text, status, updated) "
            "VALUES ('old/owl.jpg', 'An owl drawn in ink.', 'machine', 0)"
        )
    old.close()
    monkeypatch.undo()
    upgraded = open_store(store_url)
    try:
        assert upgraded.schema_version() >= 9
        [hit] = upgraded.search("owl ink")
        assert hit.path == "old/owl.jpg" and hit.content_class == "art"
    finally:
        upgraded.close()


def test_both_backends_fold_case_and_keep_accents_alike(store: Store) -> None:
    store.put_alt(AltText(SourcePath("menu.jpg"), "Crème brûlée at the CAFÉ.", "user"))
    assert paths(store.search("café")) == ["menu.jpg"]
    assert paths(store.search("CRÈME Brû")) == ["menu.jpg"]
    assert store.search("creme") == []  # accents are kept, on both backends
