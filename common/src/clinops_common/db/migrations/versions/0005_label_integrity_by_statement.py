"""labels: the foreign key of ``prediction_outcomes`` becomes two set-based checks.

A foreign key checks every inserted label on its own (one query and one ``FOR KEY SHARE`` lock of
the referenced prediction per row): writing the 1,000,000 labels of one evaluation spent more time in
those checks than in the insert itself. The same guarantee, once per statement:

- every label names a prediction: an ``AFTER INSERT ... FOR EACH STATEMENT`` trigger reads the
  statement's new labels (a transition table) and refuses the statement (SQLSTATE 23503, as the
  foreign key did) when any of them has no prediction with its ``(prediction_id, predicted_at)``.
  The check is one anti-join restricted to the new labels' time range (so it reads only the
  partitions of those months);
- a labelled prediction cannot be deleted (the foreign key's ``NO ACTION``): a ``BEFORE DELETE`` row
  trigger on ``predictions`` refuses it while a label names it. Nobody but the owner may delete a
  prediction at all (revision 0004); retention drops whole months after deleting their labels, and
  partition maintenance sets a month's labels aside before it moves that month's rows.

``prediction_outcomes.prediction_id`` stays the primary key (a prediction has at most one label;
``predictions.id`` is unique), roles and grants are unchanged.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

OWNER = "clinops_owner"

CHECK_LABELS = """
CREATE FUNCTION clinops_check_labels_name_predictions() RETURNS trigger
LANGUAGE plpgsql SET search_path = public AS $$
DECLARE
    lo timestamptz;
    hi timestamptz;
    orphans bigint;
    example uuid;
BEGIN
    SELECT min(predicted_at), max(predicted_at) INTO lo, hi FROM new_labels;
    IF lo IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT count(*), min(n.prediction_id::text)::uuid INTO orphans, example
    FROM new_labels n
    WHERE NOT EXISTS (
        SELECT 1 FROM predictions p
        WHERE p.id = n.prediction_id AND p.predicted_at = n.predicted_at
          AND p.predicted_at >= lo AND p.predicted_at <= hi
    );
    IF orphans > 0 THEN
        RAISE EXCEPTION 'insert on table "prediction_outcomes" violates the label integrity check'
            USING ERRCODE = 'foreign_key_violation',
                  DETAIL = format('%s label(s) name no prediction, e.g. prediction_id %s', orphans, example);
    END IF;
    RETURN NULL;
END $$
"""

KEEP_LABELLED = """
CREATE FUNCTION clinops_refuse_deleting_labelled_predictions() RETURNS trigger
LANGUAGE plpgsql SET search_path = public AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM prediction_outcomes o
               WHERE o.prediction_id = OLD.id AND o.predicted_at = OLD.predicted_at) THEN
        RAISE EXCEPTION 'delete on table "predictions" would leave the label of prediction % without it', OLD.id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN OLD;
END $$
"""

FUNCTIONS = ("clinops_check_labels_name_predictions()", "clinops_refuse_deleting_labelled_predictions()")


def upgrade() -> None:
    op.execute("ALTER TABLE prediction_outcomes DROP CONSTRAINT fk_prediction_outcomes_prediction")
    op.execute(CHECK_LABELS)
    op.execute(KEEP_LABELLED)
    op.execute(
        "CREATE TRIGGER prediction_outcomes_name_predictions AFTER INSERT ON prediction_outcomes"
        " REFERENCING NEW TABLE AS new_labels FOR EACH STATEMENT"
        " EXECUTE FUNCTION clinops_check_labels_name_predictions()"
    )
    op.execute(
        "CREATE TRIGGER predictions_keep_labelled BEFORE DELETE ON predictions"
        " FOR EACH ROW EXECUTE FUNCTION clinops_refuse_deleting_labelled_predictions()"
    )
    for fn in FUNCTIONS:
        op.execute(f"ALTER FUNCTION {fn} OWNER TO {OWNER}")


def downgrade() -> None:
    op.execute("DROP TRIGGER predictions_keep_labelled ON predictions")
    op.execute("DROP TRIGGER prediction_outcomes_name_predictions ON prediction_outcomes")
    for fn in FUNCTIONS:
        op.execute(f"DROP FUNCTION {fn}")
    op.execute(
        "ALTER TABLE prediction_outcomes ADD CONSTRAINT fk_prediction_outcomes_prediction"
        " FOREIGN KEY (prediction_id, predicted_at) REFERENCES predictions (id, predicted_at)"
    )
