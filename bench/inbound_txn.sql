-- pgbench custom script: the database work of ONE accepted inbound completion on PostgreSQL
-- (POST /v1/inbound/{tenant}/{provider}/completions -> InboundGateway.handle ->
-- CompletionService.record_at_once -> PostgresStore), statement for statement, so that pgbench
-- measures the database's ceiling for exactly the work one request asks of it ("Ceiling B" of
-- bench/inbound.py, which runs it with: pgbench -n -f bench/inbound_txn.sql -D people=<P> ...).
--
-- !! KEEP IN SYNC: update this script whenever the service's statements change (a statement
-- !! added, removed or reordered, a table written or no longer written). bench/inbound.py
-- !! captures the statements of one real request (SQLAlchemy's log plus asyncpg's query
-- !! logger, so raw-driver statements are seen too), prints them, and says loudly when they
-- !! no longer match this file (it compares statement kind and tables written, in order).
--
-- The request as captured (src/coursegate/completions/store.py, _PG_CONTEXT and _PG_AT_ONCE),
-- two statements, each committing by itself (no BEGIN, no COMMIT):
--   SELECT providers JOIN programs LEFT JOIN provider_keys      -- provider context and keys
--   WITH person, live (an enrollment to complete? then nothing is written),
--        inserted (INSERT INTO completions ... ON CONFLICT DO NOTHING),
--        totals (INSERT INTO credit_totals ... ON CONFLICT DO UPDATE), crossed,
--        INSERT INTO credits, INSERT INTO events, INSERT INTO inbound_audit  SELECT ...
-- Both run on the raw asyncpg connection (no ORM session); the pool does no pre-ping.
--
-- How it differs from the service, and why:
-- * The service sends these as prepared statements with $n parameters; here pgbench variables
--   and SQL expressions stand in for them (the statement shapes are the same).
-- * Ids: the service makes UUIDv7 in Python (an id for every credit the completion could
--   cross, and one event id more); here gen_random_uuid() makes them.
-- * The two JSON documents the service sends as text are built here with jsonb_build_object.
-- * content_digest is any 64 hex characters.

\set p random(0, :people - 1)
\set h random(100, 999)
\set course random(1, 9000000000000000000)

SELECT p.scheme, g.id AS program_id, g.jurisdiction, g.hours_per_credit, g.identifier_namespace,
       k.key_id, k.secret_ref, k.secret_encrypted
FROM providers p
JOIN programs g ON g.tenant_id = p.tenant_id AND g.id = p.program_id
LEFT JOIN provider_keys k
       ON k.tenant_id = p.tenant_id AND k.provider_id = p.id AND k.retired_at IS NULL
WHERE p.tenant_id = 'bench'::varchar AND p.id = 'tablet'::varchar;

WITH ids AS (
    SELECT gen_random_uuid() AS completion_id,
           ARRAY(SELECT gen_random_uuid() FROM generate_series(1, :h / 600 + 1)) AS credit_ids,
           ARRAY(SELECT gen_random_uuid() FROM generate_series(1, :h / 600 + 2)) AS event_ids
), person AS (
    SELECT m.person_id,
           jsonb_build_object('id', m.person_id, 'identifiers', jsonb_agg(
               jsonb_build_object('namespace', i.namespace, 'value', i.value)
               ORDER BY i.namespace, i.value)) AS ref
    FROM person_identifiers m
    JOIN person_identifiers i ON i.tenant_id = m.tenant_id AND i.person_id = m.person_id
    WHERE m.tenant_id = 'bench'::varchar AND m.namespace = 'doc'::varchar
      AND m.value = ('person-' || :p::bigint)::varchar
    GROUP BY m.person_id
), live AS (
    SELECT 1
    FROM course_external_ids AS x
    JOIN enrollments AS e ON e.tenant_id = x.tenant_id AND e.course_id = x.course_id
    WHERE x.tenant_id = 'bench'::varchar AND x.provider_id = 'tablet'::varchar
      AND x.external_id = ('pgb-' || :course::bigint)::varchar
      AND e.person_id = (SELECT person_id FROM person)
      AND e.status IN ('assigned', 'claimed', 'active')
    LIMIT 1
), inserted AS (
    INSERT INTO completions (tenant_id, id, program_id, person_id, provider_id, course_id,
                             course_name, content_hours, completed_at, recorded_at, content_digest)
    SELECT 'bench'::varchar, ids.completion_id, 'bench'::varchar, person.person_id,
           'tablet'::varchar, ('pgb-' || :course::bigint)::varchar, 'Bench course'::varchar,
           :h::bigint, '2026-06-10T10:00:00Z'::timestamptz, now(),
           (md5(random()::text) || md5(random()::text))::varchar
    FROM person, ids
    WHERE NOT EXISTS (SELECT 1 FROM live)
    ON CONFLICT DO NOTHING
    RETURNING person_id
), totals AS (
    INSERT INTO credit_totals AS t (tenant_id, program_id, person_id, hours_total, credits_total,
                                    updated_at)
    SELECT 'bench'::varchar, 'bench'::varchar, inserted.person_id, :h::bigint,
           :h::bigint / 600::bigint, now()
    FROM inserted
    ON CONFLICT (tenant_id, program_id, person_id) DO UPDATE
    SET hours_total = t.hours_total + excluded.hours_total,
        credits_total = (t.hours_total + excluded.hours_total) / 600::bigint,
        updated_at = excluded.updated_at
    RETURNING t.person_id, t.hours_total, t.credits_total
), crossed AS (
    SELECT totals.person_id, s AS sequence,
           s - (totals.hours_total - :h::bigint) / 600::bigint AS n,
           (totals.hours_total / 100)::text || '.'
               || lpad((totals.hours_total % 100)::text, 2, '0') AS hours_text
    FROM totals,
         generate_series((totals.hours_total - :h::bigint) / 600::bigint + 1,
                         totals.credits_total) AS s
), credit_rows AS (
    INSERT INTO credits (tenant_id, program_id, person_id, sequence, id, completion_id, awarded_at)
    SELECT 'bench'::varchar, 'bench'::varchar, crossed.person_id, crossed.sequence,
           ids.credit_ids[crossed.n], ids.completion_id, now()
    FROM crossed, ids
), event_rows AS (
    INSERT INTO events (tenant_id, id, type, occurred_at, data)
    SELECT 'bench'::varchar, ids.event_ids[1], 'completion.recorded', now(),
           jsonb_build_object(
               'completion_id', ids.completion_id, 'program_id', 'bench',
               'provider_id', 'tablet', 'course_id', 'pgb-' || :course::bigint,
               'course_name', 'Bench course',
               'content_hours', to_char(:h::bigint / 100.0, 'FM990.00'),
               'completed_at', '2026-06-10T10:00:00.000Z')
           || jsonb_build_object('person', person.ref)
    FROM inserted, person, ids
    UNION ALL
    SELECT 'bench'::varchar, ids.event_ids[crossed.n + 1], 'credit.earned', now(),
           jsonb_build_object('program_id', 'bench', 'completion_id', ids.completion_id)
           || jsonb_build_object(
               'credit_id', ids.credit_ids[crossed.n], 'person', person.ref,
               'sequence', crossed.sequence, 'hours_total', crossed.hours_text,
               'credits_total', crossed.sequence)
    FROM crossed, person, ids
), audit_row AS (
    INSERT INTO inbound_audit (tenant_id, id, provider_id, key_id, outcome, status, reason,
                               completion_id, parked_id, replay_of, received_at)
    SELECT 'bench'::varchar, gen_random_uuid(), 'tablet'::varchar, 'k1'::varchar,
           'accepted'::varchar, 201::int, NULL::varchar, ids.completion_id, NULL, NULL, now()
    FROM inserted, ids
)
SELECT person.person_id IS NOT NULL AS person_found, totals.hours_total
FROM (SELECT 1) AS one LEFT JOIN person ON true LEFT JOIN totals ON true;
