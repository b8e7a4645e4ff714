ALTER TABLE "folders" ADD COLUMN "recent_uid" bigint DEFAULT 1 NOT NULL;--> statement-breakpoint
-- Mail stored before sessions claimed \Recent has been seen: it is not new to the next SELECT.
UPDATE "folders" SET "recent_uid" = "uid_next";
