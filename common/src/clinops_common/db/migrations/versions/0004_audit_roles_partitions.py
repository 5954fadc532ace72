"""audit integrity: database roles, ``predictions`` partitioned by month, retention by partition.

Roles (created here, ``NOLOGIN``; whoever deploys gives them a login and a password, never a
migration):

- ``clinops_owner`` owns every table, view and function; migrations run as it (or a member of it).
- ``clinops_scorer`` may only INSERT into ``predictions`` (no UPDATE, DELETE or TRUNCATE) and write
  the feature orders its rows name.
- ``clinops_monitor`` reads ``predictions`` and writes its own tables (``prediction_outcomes``,
  ``monitor_evaluations``).

``predictions`` becomes ``PARTITION BY RANGE (predicted_at)``, one partition per UTC month
(``predictions_YYYY_MM``) plus ``predictions_default``, so that an insert never fails at a month
boundary. A partitioned table's primary key must hold the partition key: it is ``(id,
predicted_at)``, and the labels table references that pair (``prediction_outcomes.predicted_at`` is
new). ``clinops_create_prediction_partitions(months_ahead)`` creates the months ahead (and moves
rows the default partition caught into their month); ``clinops_drop_expired_prediction_partitions(
keep)`` detaches and drops whole months older than ``keep``, with their labels, never deleting a
prediction row by row.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from alembic import op

# Every statement here is built from this module's constants (role and table names), never input.
# ruff: noqa: S608

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

OWNER, SCORER, MONITOR = "clinops_owner", "clinops_scorer", "clinops_monitor"
ROLES = (OWNER, SCORER, MONITOR)
MONTHS_AHEAD = 3

CREATE_ROLE = """
DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
        CREATE ROLE {role} NOLOGIN;
    END IF;
END $$
"""

# The migrating login becomes a member of the owner role (a superuser already is one in effect).
JOIN_OWNER = f"""
DO $$ BEGIN
    IF NOT pg_has_role(current_user, '{OWNER}', 'MEMBER') THEN
        EXECUTE format('GRANT {OWNER} TO %I', current_user);
    END IF;
END $$
"""

PREDICTION_INDEXES = (
    "CREATE INDEX ix_predictions_patient_time ON predictions (patient_id, predicted_at)",
    "CREATE INDEX ix_predictions_time ON predictions (predicted_at)",
    "CREATE INDEX ix_predictions_model_time ON predictions (model_name, model_version, predicted_at)",
    "CREATE INDEX ix_predictions_batch ON predictions (batch_id) WHERE batch_id IS NOT NULL",
)

AUDIT_VIEW = """
CREATE VIEW prediction_audit AS
SELECT
    p.id, p.patient_id, p.predicted_at, p.recorded_at, p.source, p.batch_id, p.score, p.risk_level,
    p.model_name, p.model_version, p.latency_ms, p.degraded, p.stale_views, p.missing_views,
    p.feature_order_id, p.feature_snapshot_at, p.snapshot_id,
    COALESCE(p.features, prediction_features_json(p.feature_order_id, p.feature_values)) AS features,
    prediction_event_times_json(p.feature_order_id, p.feature_event_times) AS feature_event_times
FROM predictions p
"""

# Months are UTC months: [YYYY-MM-01 00:00+00, next month). Rows the default partition caught for
# a month being created move into it in the same transaction, their labels set aside and put back
# (nothing is lost; the default partition is locked against inserts meanwhile).
CREATE_PARTITIONS = f"""
CREATE FUNCTION clinops_create_prediction_partitions(months_ahead integer DEFAULT {MONTHS_AHEAD},
                                                     from_month date DEFAULT NULL)
RETURNS SETOF text LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
DECLARE
    this_month date := date_trunc('month', now() AT TIME ZONE 'UTC')::date;
    m date := date_trunc('month', COALESCE(from_month, this_month))::date;
    last_month date := (this_month + make_interval(months => months_ahead))::date;
    part text;
    lo text;
    hi text;
BEGIN
    IF months_ahead < 0 THEN
        RAISE EXCEPTION 'months_ahead must be >= 0, got %', months_ahead;
    END IF;
    WHILE m <= last_month LOOP
        part := 'predictions_' || to_char(m, 'YYYY_MM');
        lo := to_char(m, 'YYYY-MM-DD') || ' 00:00:00+00';
        hi := to_char((m + interval '1 month')::date, 'YYYY-MM-DD') || ' 00:00:00+00';
        IF to_regclass(part) IS NULL THEN
            IF EXISTS (SELECT 1 FROM predictions_default WHERE predicted_at >= lo::timestamptz
                                                           AND predicted_at < hi::timestamptz) THEN
                LOCK TABLE predictions_default IN SHARE ROW EXCLUSIVE MODE;
                CREATE TEMP TABLE clinops_moving_labels ON COMMIT DROP AS
                    SELECT * FROM prediction_outcomes WHERE predicted_at >= lo::timestamptz
                                                        AND predicted_at < hi::timestamptz;
                DELETE FROM prediction_outcomes
                    WHERE predicted_at >= lo::timestamptz AND predicted_at < hi::timestamptz;
                EXECUTE format('CREATE TABLE %I (LIKE predictions INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part);
                EXECUTE format('WITH moved AS (DELETE FROM predictions_default WHERE predicted_at >= %L'
                               ' AND predicted_at < %L RETURNING *) INSERT INTO %I SELECT * FROM moved',
                               lo, hi, part);
                EXECUTE format('ALTER TABLE predictions ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                               part, lo, hi);
                INSERT INTO prediction_outcomes SELECT * FROM clinops_moving_labels;
                DROP TABLE clinops_moving_labels;
            ELSE
                EXECUTE format('CREATE TABLE %I PARTITION OF predictions FOR VALUES FROM (%L) TO (%L)', part, lo, hi);
            END IF;
            RETURN NEXT part;
        END IF;
        m := (m + interval '1 month')::date;
    END LOOP;
END $$
"""

# Whole months ending at or before (now - keep) go: first their labels (the monitor's derived
# rows), then the partition is detached and dropped. The default partition is never dropped.
DROP_EXPIRED = """
CREATE FUNCTION clinops_drop_expired_prediction_partitions(keep interval)
RETURNS SETOF text LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
DECLARE
    cutoff timestamptz := now() - keep;
    part record;
    lo timestamptz;
    hi timestamptz;
BEGIN
    IF keep < interval '1 day' THEN
        RAISE EXCEPTION 'refusing a retention shorter than a day: %', keep;
    END IF;
    FOR part IN
        SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'predictions'::regclass AND c.relname ~ '^predictions_[0-9]{4}_[0-9]{2}$'
        ORDER BY c.relname
    LOOP
        lo := (to_date(substr(part.relname, 13), 'YYYY_MM')::text || ' 00:00:00+00')::timestamptz;
        hi := lo + interval '1 month';
        CONTINUE WHEN hi > cutoff;
        DELETE FROM prediction_outcomes WHERE predicted_at >= lo AND predicted_at < hi;
        EXECUTE format('ALTER TABLE predictions DETACH PARTITION %I', part.relname);
        EXECUTE format('DROP TABLE %I', part.relname);
        RETURN NEXT part.relname;
    END LOOP;
END $$
"""

TABLES = ("predictions", "feature_orders", "prediction_outcomes", "monitor_evaluations", "alembic_version")
FUNCTIONS = (
    "prediction_features_json(text, real[])",
    "prediction_event_times_json(text, timestamptz[])",
    "clinops_create_prediction_partitions(integer, date)",
    "clinops_drop_expired_prediction_partitions(interval)",
)

GRANTS = (
    f"REVOKE ALL ON {', '.join(TABLES)}, prediction_audit FROM PUBLIC",
    f"GRANT USAGE, CREATE ON SCHEMA public TO {OWNER}",  # new partitions, later migrations
    f"GRANT USAGE ON SCHEMA public TO {SCORER}, {MONITOR}",
    f"GRANT SELECT ON alembic_version TO {SCORER}, {MONITOR}",
    # the scorer: insert-only on the audit trail; feature orders are written once (ON CONFLICT DO NOTHING)
    f"GRANT INSERT ON predictions TO {SCORER}",
    # ON CONFLICT (id, predicted_at) DO NOTHING (an idempotent replay) needs SELECT on the key's columns
    f"GRANT SELECT (id, predicted_at) ON predictions TO {SCORER}",
    f"GRANT SELECT, INSERT ON feature_orders TO {SCORER}",
    # the monitor: reads predictions, writes its labels and evaluations (never changes either)
    f"GRANT SELECT ON predictions, feature_orders, prediction_audit TO {MONITOR}",
    f"GRANT SELECT, INSERT ON prediction_outcomes, monitor_evaluations TO {MONITOR}",
    "REVOKE EXECUTE ON FUNCTION clinops_create_prediction_partitions(integer, date) FROM PUBLIC",
    "REVOKE EXECUTE ON FUNCTION clinops_drop_expired_prediction_partitions(interval) FROM PUBLIC",
)


def upgrade() -> None:
    for role in ROLES:
        op.execute(CREATE_ROLE.format(role=role))
    op.execute(JOIN_OWNER)

    # predictions -> a partitioned table of the same columns, constraints and indexes
    op.execute("DROP VIEW prediction_audit")
    op.execute("ALTER TABLE prediction_outcomes DROP CONSTRAINT fk_prediction_outcomes_prediction")
    op.execute("ALTER TABLE predictions RENAME TO predictions_unpartitioned")
    for ix in ("predictions_pkey", "ix_predictions_patient_time", "ix_predictions_time", "ix_predictions_model_time"):
        op.execute(f"ALTER INDEX {ix} RENAME TO {ix}_old")
    op.execute("ALTER INDEX ix_predictions_batch RENAME TO ix_predictions_batch_old")
    op.execute(
        "CREATE TABLE predictions (LIKE predictions_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS,"
        " CONSTRAINT predictions_pkey PRIMARY KEY (id, predicted_at)) PARTITION BY RANGE (predicted_at)"
    )
    op.execute(
        "ALTER TABLE predictions ADD CONSTRAINT fk_predictions_feature_order FOREIGN KEY (feature_order_id)"
        " REFERENCES feature_orders (feature_order_id)"
    )
    for ddl in PREDICTION_INDEXES:
        op.execute(ddl)
    op.execute("CREATE TABLE predictions_default PARTITION OF predictions DEFAULT")
    op.execute(CREATE_PARTITIONS)
    op.execute(DROP_EXPIRED)
    op.execute(
        "SELECT clinops_create_prediction_partitions("
        f"{MONTHS_AHEAD}, (SELECT min(predicted_at) AT TIME ZONE 'UTC' FROM predictions_unpartitioned)::date)"
    )
    op.execute("INSERT INTO predictions SELECT * FROM predictions_unpartitioned")
    op.execute("DROP TABLE predictions_unpartitioned")

    # the labels reference (id, predicted_at), the partitioned table's key
    op.execute("ALTER TABLE prediction_outcomes ADD COLUMN predicted_at timestamptz")
    op.execute(
        "UPDATE prediction_outcomes o SET predicted_at = p.predicted_at FROM predictions p WHERE p.id = o.prediction_id"
    )
    op.execute("ALTER TABLE prediction_outcomes ALTER COLUMN predicted_at SET NOT NULL")
    op.execute(
        "ALTER TABLE prediction_outcomes ADD CONSTRAINT fk_prediction_outcomes_prediction"
        " FOREIGN KEY (prediction_id, predicted_at) REFERENCES predictions (id, predicted_at)"
    )
    op.execute("CREATE INDEX ix_prediction_outcomes_predicted_at ON prediction_outcomes (predicted_at)")
    op.execute(AUDIT_VIEW)

    for obj in TABLES:
        op.execute(f"ALTER TABLE {obj} OWNER TO {OWNER}")
    op.execute(f"ALTER VIEW prediction_audit OWNER TO {OWNER}")
    op.execute(
        f"DO $$ DECLARE r record; BEGIN FOR r IN SELECT c.relname FROM pg_inherits i JOIN pg_class c"
        f" ON c.oid = i.inhrelid WHERE i.inhparent = 'predictions'::regclass LOOP"
        f" EXECUTE format('ALTER TABLE %I OWNER TO {OWNER}', r.relname); END LOOP; END $$"
    )
    for fn in FUNCTIONS:
        op.execute(f"ALTER FUNCTION {fn} OWNER TO {OWNER}")
    for grant in GRANTS:
        op.execute(grant)


def downgrade() -> None:
    """Back to one unpartitioned table (every row kept); the roles stay (they are cluster-wide and may
    hold privileges in other databases) but lose theirs here."""
    for role in (SCORER, MONITOR):
        op.execute(f"REVOKE ALL ON {', '.join(TABLES)}, prediction_audit FROM {role}")
        op.execute(f"REVOKE USAGE ON SCHEMA public FROM {role}")
    op.execute(f"REVOKE SELECT (id, predicted_at) ON predictions FROM {SCORER}")
    op.execute("DROP VIEW prediction_audit")
    op.execute("DROP INDEX ix_prediction_outcomes_predicted_at")
    op.execute("ALTER TABLE prediction_outcomes DROP CONSTRAINT fk_prediction_outcomes_prediction")
    op.execute("ALTER TABLE prediction_outcomes DROP COLUMN predicted_at")
    op.execute("DROP FUNCTION clinops_drop_expired_prediction_partitions(interval)")
    op.execute("DROP FUNCTION clinops_create_prediction_partitions(integer, date)")
    op.execute("ALTER TABLE predictions RENAME TO predictions_partitioned")
    for ix in ("predictions_pkey", "ix_predictions_patient_time", "ix_predictions_time", "ix_predictions_model_time"):
        op.execute(f"ALTER INDEX {ix} RENAME TO {ix}_part")
    op.execute("ALTER INDEX ix_predictions_batch RENAME TO ix_predictions_batch_part")
    op.execute(
        "CREATE TABLE predictions (LIKE predictions_partitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS,"
        " CONSTRAINT predictions_pkey PRIMARY KEY (id))"
    )
    op.execute("INSERT INTO predictions SELECT * FROM predictions_partitioned")
    op.execute("DROP TABLE predictions_partitioned")
    op.execute(
        "ALTER TABLE predictions ADD CONSTRAINT fk_predictions_feature_order FOREIGN KEY (feature_order_id)"
        " REFERENCES feature_orders (feature_order_id)"
    )
    for ddl in PREDICTION_INDEXES:
        op.execute(ddl)
    op.execute(
        "ALTER TABLE prediction_outcomes ADD CONSTRAINT fk_prediction_outcomes_prediction"
        " FOREIGN KEY (prediction_id) REFERENCES predictions (id) ON DELETE CASCADE"
    )
    op.execute(AUDIT_VIEW)
