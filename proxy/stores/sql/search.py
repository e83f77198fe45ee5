"""The search index: one document per source, rewritten in the transaction that changed
what it is built from, so the index never lags the data."""

from __future__ import annotations

import re
import time

from proxy.sources.paths import SourcePath
from proxy.stores.base import SearchHit
from proxy.stores.sql.core import SqlBase, Tx

_WORD = re.compile(r"[^\W_]+")


def words(text: str) -> list[str]:
    """Lower-case letters-and-digits runs: how paths, classes and queries are split for
    both backends' indexes alike (no operator of either query language survives)."""
    return _WORD.findall(text.lower())


class SearchSql(SqlBase):
    """Index and search sources' documents."""

    def _index(self, tx: Tx, path: SourcePath) -> None:
        """Rewrite ``path``'s search document from what the store knows now, inside the
        transaction that changed it: the index never lags the data."""
        self._lock_document(tx, path)
        source = tx.run(
            "SELECT content_class, faces, moderation_status, dup_group FROM sources WHERE path = ?",
            (path,),
        )
        alt = tx.run("SELECT text, status FROM alt_texts WHERE path = ?", (path,))
        content_class, faces, moderation, group = source[0] if source else (None, None, "", None)
        text, alt_status = alt[0] if alt else ("", "empty")
        folder = path.rpartition("/")[0]
        terms = " ".join(
            [
                *words(path),
                *(words(content_class) if content_class else []),
                *(["faces"] if faces else []),
                *(["moderation", moderation] if moderation else []),
                *([group] if group else []),
            ]
        )
        rows = tx.run(
            "INSERT INTO search_docs (path, folder, alt, alt_status, terms, content_class, "
            "faces, moderation, dup_group, updated) VALUES (?,?,?,?,?,?,?,?,?,?) "
            "ON CONFLICT (path) DO UPDATE SET folder = excluded.folder, alt = excluded.alt, "
            "alt_status = excluded.alt_status, terms = excluded.terms, "
            "content_class = excluded.content_class, faces = excluded.faces, "
            "moderation = excluded.moderation, dup_group = excluded.dup_group, "
            "updated = excluded.updated RETURNING id",
            (
                path,
                folder,
                text,
                alt_status,
                terms,
                content_class,
                faces,
                moderation or "unscanned",
                group,
                time.time(),
            ),
        )
        self._index_text(tx, int(rows[0][0]), text, terms)

    def search(
        self,
        query: str,
        *,
        content_class: str | None = None,
        folder: str | None = None,
        limit: int = 20,
    ) -> list[SearchHit]:
        """Sources ranked by relevance to ``query`` (every word must match, as a prefix:
        alt text weighs more than path, class, faces, moderation and duplicate group);
        an empty query lists the newest, filtered."""
        tokens = words(query)[:16]
        where, params = ["1 = 1"], []
        if content_class:
            where.append("d.content_class = ?")
            params.append(content_class)
        if folder:
            where.append("(d.folder = ? OR d.folder LIKE ? ESCAPE '!')")
            escaped = folder.replace("!", "!!").replace("%", "!%").replace("_", "!_")
            params += [folder, escaped + "/%"]
        columns = "d.path, d.alt, d.alt_status, d.content_class, d.faces, d.moderation, d.dup_group"
        with self.transaction(write=False) as tx:
            if tokens:
                sql, first = self._match_sql(columns, " AND ".join(where), tokens)
                rows = tx.run(sql, [*first, *params, limit])
            else:
                rows = tx.run(
                    f"SELECT {columns}, 0.0 FROM search_docs d WHERE {' AND '.join(where)} "
                    "ORDER BY d.updated DESC, d.path LIMIT ?",
                    [*params, limit],
                )
        return [
            SearchHit(
                path=SourcePath(r[0]),
                alt=r[1],
                alt_status=r[2],
                content_class=r[3],
                faces=r[4],
                moderation=r[5],
                dup_group=r[6],
                score=round(float(r[7]), 6),
            )
            for r in rows
        ]
