CREATE TABLE "subscriptions" (
	"account_id" bigint NOT NULL,
	"name" text NOT NULL,
	CONSTRAINT "subscriptions_account_id_name_pk" PRIMARY KEY("account_id","name")
);
--> statement-breakpoint
ALTER TABLE "subscriptions" ADD CONSTRAINT "subscriptions_account_id_accounts_id_fk" FOREIGN KEY ("account_id") REFERENCES "public"."accounts"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
-- Hand-written: the subscriptions kept on the folders until now move to the new table.
INSERT INTO "subscriptions" ("account_id", "name") SELECT "account_id", "name" FROM "folders" WHERE "subscribed";--> statement-breakpoint
ALTER TABLE "folders" DROP COLUMN "subscribed";