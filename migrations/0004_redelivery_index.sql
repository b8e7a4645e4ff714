DROP INDEX "messages_blob_idx";--> statement-breakpoint
CREATE INDEX "messages_blob_idx" ON "messages" USING btree ("blob_hash","account_id");