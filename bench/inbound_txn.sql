-- pgbench custom script: the database transaction of ONE accepted inbound completion on
-- PostgreSQL (POST /v1/inbound/{tenant}/{provider}/completions -> InboundGateway.handle ->
-- CompletionService.record -> PostgresStore), statement for statement, so that pgbench measures
-- the database's ceiling for exactly the work one request asks of it ("Ceiling B" of
-- bench/inbound.py, which runs it with: pgbench -n -f bench/inbound_txn.sql -D people=<P> ...).
--
-- !! KEEP IN SYNC: update this script whenever the service's transaction changes (a statement
-- !! added, removed or reordered, a table written or no longer written). bench/inbound.py
-- !! captures the statements of one real request (SQLAlchemy's log plus asyncpg's query
-- !! logger, so raw-driver statements are seen too), prints them, and says loudly when they
-- !! no longer match this file (it compares statement kind and tables written, in order).
--
-- The transaction as captured (src/coursegate/completions/store.py, _PG_CLAIM and _PG_WRITE):
--   BEGIN
--   SELECT providers JOIN programs LEFT JOIN provider_keys      -- provider context and keys
--   WITH person ..., inserted AS (INSERT INTO completions ... ON CONFLICT DO NOTHING),
--        totals AS (INSERT INTO credit_totals ... ON CONFLICT DO UPDATE)  SELECT ...  -- "claim"
--   WITH credit_rows AS (INSERT INTO credits ...), event_rows AS (INSERT INTO events ...)
--        INSERT INTO inbound_audit ...                                               -- "write"
--   COMMIT
-- All five run on the raw asyncpg connection (no ORM session); the pool does no pre-ping.
--
-- How it differs from the service, and why:
-- * The service sends these as prepared statements with $n parameters; here pgbench variables
--   and SQL expressions stand in for them (the statement shapes are the same). Variables that
--   hold text from \gset are written quoted, ':name', as the simple query protocol needs;
--   bench/inbound.py unquotes them for its extra -M prepared run.
-- * The service computes the credits crossed in Python; here \set does the same arithmetic
--   (6 hours per credit = 600 hundredths), and the arrays it passes as parameters are built
--   with ARRAY(SELECT ... generate_series(...)).
-- * Ids: the service makes UUIDv7 in Python; here the completion id comes from two pgbench
--   random numbers (it is needed in both statements) and the others from gen_random_uuid().
-- * content_digest is any 64 hex characters; the JSON documents have the service's shape.

\set p random(0, :people - 1)
\set h random(100, 999)
\set course random(1, 9000000000000000000)
\set cid_hi random(0, 4611686018427387903)
\set cid_lo random(0, 4611686018427387903)

BEGIN;

SELECT p.scheme, g.id AS program_id, g.jurisdiction, g.hours_per_credit, g.identifier_namespace,
       k.key_id, k.secret_ref, k.secret_encrypted
FROM providers p
JOIN programs g ON g.tenant_id = p.tenant_id AND g.id = p.program_id
LEFT JOIN provider_keys k
       ON k.tenant_id = p.tenant_id AND k.provider_id = p.id AND k.retired_at IS NULL
WHERE p.tenant_id = 'bench'::varchar AND p.id = 'tablet'::varchar;

WITH person AS (
    SELECT m.person_id,
           jsonb_agg(jsonb_build_array(i.namespace, i.value) ORDER BY i.namespace, i.value) AS ids
    FROM person_identifiers m
    JOIN person_identifiers i ON i.tenant_id = m.tenant_id AND i.person_id = m.person_id
    WHERE m.tenant_id = 'bench'::varchar AND m.namespace = 'doc'::varchar
      AND m.value = ('person-' || :p::bigint)::varchar
    GROUP BY m.person_id
), inserted AS (
    INSERT INTO completions (tenant_id, id, program_id, person_id, provider_id, course_id,
                             course_name, content_hours, completed_at, recorded_at, content_digest)
    SELECT 'bench'::varchar,
           (lpad(to_hex(:cid_hi::bigint), 16, '0') || lpad(to_hex(:cid_lo::bigint), 16, '0'))::uuid,
           'bench'::varchar, person.person_id, 'tablet'::varchar,
           ('pgb-' || :course::bigint)::varchar, 'Bench course'::varchar, :h::bigint,
           '2026-06-10T10:00:00Z'::timestamptz, now(),
           (md5(random()::text) || md5(random()::text))::varchar
    FROM person
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
    RETURNING t.hours_total
)
SELECT person.person_id, person.ids,
       EXISTS (SELECT 1 FROM inserted) AS inserted,
       (SELECT hours_total FROM totals) AS hours_total
FROM (SELECT 1) AS one LEFT JOIN person ON true
\gset claim_

-- The credits this completion crossed: sequences first .. seq (none when first > seq).
\set seq :claim_hours_total / 600
\set first (:claim_hours_total - :h) / 600 + 1

WITH credit_rows AS (
    INSERT INTO credits (tenant_id, program_id, person_id, sequence, id, completion_id, awarded_at)
    SELECT 'bench'::varchar, 'bench'::varchar, ':claim_person_id'::uuid, c.sequence, c.id,
           (lpad(to_hex(:cid_hi::bigint), 16, '0') || lpad(to_hex(:cid_lo::bigint), 16, '0'))::uuid,
           now()
    FROM unnest(ARRAY(SELECT generate_series(:first::int, :seq::int)),
                ARRAY(SELECT gen_random_uuid() FROM generate_series(:first::int, :seq::int)))
         AS c(sequence, id)
), event_rows AS (
    INSERT INTO events (tenant_id, id, type, occurred_at, data)
    SELECT 'bench'::varchar, e.id, e.type, now(), e.data
    FROM unnest(
        ARRAY(SELECT gen_random_uuid() FROM generate_series(:first::int - 1, :seq::int)),
        ARRAY(SELECT CASE WHEN s < :first::int THEN 'completion.recorded' ELSE 'credit.earned' END
              FROM generate_series(:first::int - 1, :seq::int) AS s)::varchar[],
        ARRAY(SELECT CASE WHEN s < :first::int THEN jsonb_build_object(
                  'completion_id', (lpad(to_hex(:cid_hi::bigint), 16, '0') || lpad(to_hex(:cid_lo::bigint), 16, '0'))::uuid,
                  'program_id', 'bench', 'provider_id', 'tablet',
                  'person', jsonb_build_object('id', ':claim_person_id'::uuid, 'identifiers',
                      jsonb_build_array(jsonb_build_object('namespace', 'doc', 'value', 'person-' || :p::bigint))),
                  'course_id', 'pgb-' || :course::bigint, 'course_name', 'Bench course',
                  'content_hours', to_char(:h::bigint / 100.0, 'FM990.00'),
                  'completed_at', '2026-06-10T10:00:00.000Z')
              ELSE jsonb_build_object(
                  'credit_id', gen_random_uuid(), 'program_id', 'bench',
                  'person', jsonb_build_object('id', ':claim_person_id'::uuid, 'identifiers',
                      jsonb_build_array(jsonb_build_object('namespace', 'doc', 'value', 'person-' || :p::bigint))),
                  'sequence', s, 'hours_total', to_char(:claim_hours_total::bigint / 100.0, 'FM99999990.00'),
                  'credits_total', s,
                  'completion_id', (lpad(to_hex(:cid_hi::bigint), 16, '0') || lpad(to_hex(:cid_lo::bigint), 16, '0'))::uuid)
              END
              FROM generate_series(:first::int - 1, :seq::int) AS s)
    ) AS e(id, type, data)
)
INSERT INTO inbound_audit (tenant_id, id, provider_id, key_id, outcome, status, reason,
                           completion_id, parked_id, replay_of, received_at)
SELECT 'bench'::varchar, gen_random_uuid(), 'tablet'::varchar, 'k1'::varchar, 'accepted'::varchar,
       201::int, NULL::varchar,
       (lpad(to_hex(:cid_hi::bigint), 16, '0') || lpad(to_hex(:cid_lo::bigint), 16, '0'))::uuid,
       NULL, NULL, now()
WHERE true::boolean;

COMMIT;
