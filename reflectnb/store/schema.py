"""The trace store schema: one append-only list of forward migrations.

Contract
--------
* ``MIGRATIONS[i]`` takes a database from version ``i`` to ``i + 1``; the
  version a file is at is ``max(version)`` in ``schema_migrations``. Migrations
  only ever add (tables, columns, views); they never drop or rewrite data.
* :func:`migrate` applies the missing ones in one transaction and then
  ``CHECKPOINT``s, so no DDL is left in the write-ahead log (DuckDB's WAL replay
  of DDL is where real-world corruption reports cluster, TRACES.md §3.5).
* Hot append tables (``tokens``, ``node_events``) have no keys or indexes:
  a key halves append speed and index replay is another known failure mode.

Names follow OpenTelemetry GenAI / OpenInference where a concept overlaps
(``docs/traces.md`` has the mapping table). Non-goals: down migrations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reflectnb.errors import TraceStoreError


@dataclass(frozen=True)
class Migration:
    """One forward step: ``statements`` run in order inside one transaction."""

    version: int
    description: str
    statements: tuple[str, ...]


_V1_TABLES = (
    """CREATE TABLE schema_migrations(version INTEGER, applied_at TIMESTAMPTZ, description VARCHAR)""",
    """CREATE TABLE runs(
        run_id VARCHAR, name VARCHAR, kind VARCHAR, model VARCHAR, params JSON,
        status VARCHAR, error VARCHAR, started_at TIMESTAMPTZ, ended_at TIMESTAMPTZ, seconds DOUBLE,
        prompt_tokens BIGINT, completion_tokens BIGINT, steps INTEGER,
        task VARCHAR, final_answer VARCHAR, stop_reason VARCHAR, result JSON,
        pid INTEGER, host VARCHAR, reflectnb_version VARCHAR)""",
    """CREATE TABLE steps(
        run_id VARCHAR, step_index INTEGER, kind VARCHAR, role VARCHAR, agent VARCHAR,
        round INTEGER, parent INTEGER, text VARCHAR, attributes JSON, created_at TIMESTAMPTZ)""",
    """CREATE TABLE generations(
        run_id VARCHAR, gen_index INTEGER, step_index INTEGER, row INTEGER, model VARCHAR,
        prompt JSON, text VARCHAR, prompt_tokens INTEGER, completion_tokens INTEGER,
        finish_reason VARCHAR, seconds DOUBLE, params JSON, created_at TIMESTAMPTZ)""",
    """CREATE TABLE tokens(
        run_id VARCHAR, gen_index INTEGER, step_index INTEGER, row INTEGER, position INTEGER,
        token_id BIGINT, text VARCHAR, logprob DOUBLE, entropy DOUBLE, is_reflection BOOLEAN,
        schedule_value DOUBLE, intervention VARCHAR)""",
    """CREATE TABLE node_events(
        run_id VARCHAR, node_id BIGINT, parent BIGINT, depth INTEGER, text VARCHAR, value DOUBLE,
        visits BIGINT, status VARCHAR, iteration INTEGER, prompt VARCHAR, attributes JSON,
        seq BIGINT, recorded_at TIMESTAMPTZ)""",
    """CREATE TABLE scores(
        run_id VARCHAR, score_index INTEGER, name VARCHAR, value DOUBLE, label VARCHAR,
        explanation VARCHAR, target_step INTEGER, target_node BIGINT, created_at TIMESTAMPTZ)""",
)

_V1_VIEWS = (
    # latest state of every tree node; node_events keeps the whole history
    """CREATE VIEW nodes AS SELECT * EXCLUDE (seq) FROM node_events
        QUALIFY row_number() OVER (PARTITION BY run_id, node_id ORDER BY seq DESC) = 1""",
    """CREATE VIEW run_summary AS SELECT r.run_id, r.name, r.kind, r.model, r.status, r.started_at,
        r.seconds, r.steps, r.prompt_tokens, r.completion_tokens,
        (SELECT count(*) FROM scores s WHERE s.run_id = r.run_id) AS scores,
        r.stop_reason, r.final_answer, r.error
        FROM runs r ORDER BY r.started_at""",
    """CREATE VIEW token_text AS SELECT t.run_id, r.kind AS run_kind, r.model, t.step_index,
        s.kind AS step_kind, s.agent, s.round, t.row, t.position, t.token_id, t.text, t.logprob,
        t.entropy, t.is_reflection, t.schedule_value, t.intervention
        FROM tokens t JOIN runs r USING (run_id)
        LEFT JOIN steps s ON s.run_id = t.run_id AND s.step_index = t.step_index""",
)

_V2 = (
    # v2: the top alternatives of each token, and reflection-token usage per run
    """ALTER TABLE tokens ADD COLUMN IF NOT EXISTS top STRUCT(text VARCHAR, logprob DOUBLE)[]""",
    """CREATE VIEW reflection_usage AS SELECT r.run_id, r.kind, r.model, r.status,
        count(t.position) AS tokens,
        count(t.position) FILTER (WHERE t.is_reflection) AS reflection_tokens,
        coalesce(count(t.position) FILTER (WHERE t.is_reflection) / nullif(count(t.position), 0), 0.0)
            AS reflection_rate,
        count(t.position) FILTER (WHERE t.intervention IS NOT NULL) AS interventions,
        min(t.position) FILTER (WHERE t.is_reflection) AS first_reflection_position,
        avg(t.entropy) AS mean_entropy
        FROM runs r LEFT JOIN tokens t USING (run_id)
        GROUP BY ALL ORDER BY reflection_tokens DESC""",
)

_V3 = (
    # v3: prompt tokens a server served from its prefix cache (usage.prompt_tokens_details.cached_tokens)
    """ALTER TABLE generations ADD COLUMN IF NOT EXISTS cached_tokens INTEGER""",
)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "runs, steps, generations, tokens, node events, scores; nodes/run_summary/token_text views",
              _V1_TABLES + _V1_VIEWS),
    Migration(2, "tokens.top (alternatives) and the reflection_usage view", _V2),
    Migration(3, "generations.cached_tokens (prompt tokens served from a server's prefix cache)", _V3),
    Migration(4, "run_tags and run_notes (append-only; latest tag row wins) and the run_tag_list view", (
        "CREATE TABLE run_tags(run_id VARCHAR, tag VARCHAR, removed BOOLEAN, created_at TIMESTAMPTZ)",
        "CREATE TABLE run_notes(run_id VARCHAR, note VARCHAR, created_at TIMESTAMPTZ)",
        """CREATE VIEW run_tag_list AS SELECT run_id, list(tag ORDER BY tag) AS tags FROM (SELECT * FROM run_tags
            QUALIFY row_number() OVER (PARTITION BY run_id, tag ORDER BY created_at DESC) = 1)
            WHERE NOT removed GROUP BY run_id""")),
)
SCHEMA_VERSION = MIGRATIONS[-1].version
TABLES = ("runs", "steps", "generations", "tokens", "node_events", "scores")


def current_version(con: Any) -> int:
    """The schema version of an open database (0 for an empty one).

    Raises :class:`TraceStoreError` for a DuckDB database that holds tables
    but is not a reflectnb trace store (nothing is changed in it).
    """
    names = {row[0] for row in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'").fetchall()}
    if "schema_migrations" in names:
        return int(con.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()[0])
    if names:
        raise TraceStoreError("foreign")
    return 0


def migrate(con: Any, path: str, upto: int = SCHEMA_VERSION) -> int:
    """Bring the database at ``con`` to version ``upto``; returns the version before.

    A newer version than this code knows is refused (never downgraded).
    """
    try:
        before = current_version(con)
    except TraceStoreError:
        raise TraceStoreError(
            f"{path} is a DuckDB database but not a reflectnb trace store (it has other tables); "
            "reflectnb left it unchanged. Point REFLECTNB_TRACES (or open_store(path=...)) at another file."
        ) from None
    if before > SCHEMA_VERSION:
        raise TraceStoreError(
            f"{path} has trace schema v{before}, but this reflectnb knows only up to v{SCHEMA_VERSION}; "
            "upgrade reflectnb (pip install -U reflectnb) or use another trace file. The file was not changed.")
    pending = [m for m in MIGRATIONS if before < m.version <= upto]
    if pending:
        _apply(con, pending)
    return before


def _apply(con: Any, pending: list[Migration]) -> None:
    con.execute("BEGIN")
    try:
        for m in pending:
            for statement in m.statements:
                con.execute(statement)
            con.execute("INSERT INTO schema_migrations VALUES (?, now(), ?)", [m.version, m.description])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("CHECKPOINT")
