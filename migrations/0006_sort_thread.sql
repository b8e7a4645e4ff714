ALTER TABLE "messages" ADD COLUMN "sort_date" timestamp with time zone GENERATED ALWAYS AS (coalesce(sent_date, internal_date)) STORED NOT NULL;--> statement-breakpoint
ALTER TABLE "messages" ADD COLUMN "sort_subject" text DEFAULT '' NOT NULL;--> statement-breakpoint
ALTER TABLE "messages" ADD COLUMN "sort_from" text DEFAULT '' NOT NULL;--> statement-breakpoint
ALTER TABLE "messages" ADD COLUMN "sort_to" text DEFAULT '' NOT NULL;--> statement-breakpoint
ALTER TABLE "messages" ADD COLUMN "sort_cc" text DEFAULT '' NOT NULL;--> statement-breakpoint
ALTER TABLE "messages" ADD COLUMN "reply_or_forward" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "messages" ADD COLUMN "message_id" text;--> statement-breakpoint
ALTER TABLE "messages" ADD COLUMN "reference_ids" text[] DEFAULT '{}'::text[] NOT NULL;--> statement-breakpoint
-- Written by hand from here to the indexes: messages stored before this migration get their sort
-- keys from what was indexed then, as src/core/mime/sort-keys.ts computes them at delivery; the
-- indexes come after, so the backfill does not update them row by row.
CREATE FUNCTION pg_temp.mailroom_base_subject(subject text, OUT base text, OUT reply boolean) AS $$
DECLARE
  before text;
  blob text;
BEGIN
  base := regexp_replace(coalesce(subject, ''), '[ \t]+', ' ', 'g');
  reply := false;
  LOOP
    before := base;
    base := regexp_replace(base, '( |\(fwd\))+$', '', 'i');
    IF position('(fwd)' IN lower(substr(before, length(base) + 1))) > 0 THEN
      reply := true;
    END IF;
    LOOP
      before := base;
      base := regexp_replace(base, '^( |(\[[^][]*\] *)*(re|fwd?) *(\[[^][]*\] *)?:)+', '', 'i');
      IF trim(substr(before, 1, length(before) - length(base))) <> '' THEN
        reply := true;
      END IF;
      blob := substring(base FROM '^\[[^][]*\] *');
      IF blob IS NOT NULL AND length(blob) < length(base) THEN
        base := substr(base, length(blob) + 1);
      END IF;
      EXIT WHEN base = before;
    END LOOP;
    EXIT WHEN NOT (base ~* '^\[fwd:' AND base ~ '\]$');
    base := substr(base, 6, length(base) - 6);
    reply := true;
  END LOOP;
  base := normalize(upper(base), NFKD);
END
$$ LANGUAGE plpgsql;
--> statement-breakpoint
CREATE FUNCTION pg_temp.mailroom_first_mailbox(list jsonb) RETURNS text AS $$
  SELECT coalesce((
    SELECT normalize(upper(a ->> 'mailbox'), NFKD)
    FROM jsonb_array_elements(CASE WHEN jsonb_typeof(list) = 'array' THEN list ELSE '[]' END) WITH ORDINALITY AS e(a, n)
    WHERE a ->> 'host' IS NOT NULL AND a ->> 'mailbox' IS NOT NULL
    ORDER BY n LIMIT 1), '')
$$ LANGUAGE sql;
--> statement-breakpoint
CREATE FUNCTION pg_temp.mailroom_message_ids(value text) RETURNS text[] AS $$
  SELECT coalesce(array_agg(r.m[1] ORDER BY r.n), '{}')
  FROM regexp_matches(coalesce(value, ''), '<([^<>@[:space:]]+@[^<>[:space:]]+)>', 'g') WITH ORDINALITY AS r(m, n)
$$ LANGUAGE sql;
--> statement-breakpoint
CREATE FUNCTION pg_temp.mailroom_references(refs text[], in_reply_to text[]) RETURNS text[] AS $$
  SELECT CASE WHEN cardinality(refs) > 0 THEN refs[greatest(1, cardinality(refs) - 99):] ELSE in_reply_to[1:1] END
$$ LANGUAGE sql;
--> statement-breakpoint
UPDATE "messages" SET
  ("sort_subject", "reply_or_forward") = (SELECT base, reply FROM pg_temp.mailroom_base_subject("subject")),
  "sort_from" = pg_temp.mailroom_first_mailbox("envelope" -> 'from'),
  "sort_to" = pg_temp.mailroom_first_mailbox("envelope" -> 'to'),
  "sort_cc" = pg_temp.mailroom_first_mailbox("envelope" -> 'cc'),
  "message_id" = (pg_temp.mailroom_message_ids("envelope" ->> 'messageId'))[1],
  "reference_ids" = pg_temp.mailroom_references(
    pg_temp.mailroom_message_ids("header_fields" -> 'references' ->> 0),
    pg_temp.mailroom_message_ids("envelope" ->> 'inReplyTo'));
--> statement-breakpoint
DROP FUNCTION pg_temp.mailroom_base_subject(text);
--> statement-breakpoint
DROP FUNCTION pg_temp.mailroom_first_mailbox(jsonb);
--> statement-breakpoint
DROP FUNCTION pg_temp.mailroom_message_ids(text);
--> statement-breakpoint
DROP FUNCTION pg_temp.mailroom_references(text[], text[]);--> statement-breakpoint
CREATE INDEX "messages_sort_arrival_idx" ON "messages" USING btree ("account_id","folder_id","internal_date","uid","modseq");--> statement-breakpoint
CREATE INDEX "messages_sort_date_idx" ON "messages" USING btree ("account_id","folder_id","sort_date","uid","modseq");--> statement-breakpoint
CREATE INDEX "messages_sort_subject_idx" ON "messages" USING btree ("account_id","folder_id","sort_subject" collate "C","uid","modseq");
