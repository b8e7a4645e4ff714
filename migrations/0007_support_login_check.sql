CREATE TABLE "failed_logins" (
	"account_id" bigint NOT NULL,
	"id" bigint GENERATED ALWAYS AS IDENTITY (sequence name "failed_logins_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"at" timestamp with time zone DEFAULT now() NOT NULL,
	"protocol" text NOT NULL,
	"ip" text NOT NULL,
	"reason" text NOT NULL,
	CONSTRAINT "failed_logins_account_id_id_pk" PRIMARY KEY("account_id","id")
);
--> statement-breakpoint
ALTER TABLE "accounts" ADD COLUMN "imap_last_login_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "accounts" ADD COLUMN "imap_last_login_ip" text;--> statement-breakpoint
ALTER TABLE "accounts" ADD COLUMN "pop3_last_login_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "accounts" ADD COLUMN "pop3_last_login_ip" text;--> statement-breakpoint
ALTER TABLE "accounts" ADD COLUMN "imap_reason" text;--> statement-breakpoint
ALTER TABLE "accounts" ADD COLUMN "imap_until" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "accounts" ADD COLUMN "imap_changed_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "accounts" ADD COLUMN "pop3_reason" text;--> statement-breakpoint
ALTER TABLE "accounts" ADD COLUMN "pop3_until" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "accounts" ADD COLUMN "pop3_changed_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "failed_logins" ADD CONSTRAINT "failed_logins_account_id_accounts_id_fk" FOREIGN KEY ("account_id") REFERENCES "public"."accounts"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "accounts_imap_until_idx" ON "accounts" USING btree ("imap_until") WHERE "accounts"."imap_until" is not null;--> statement-breakpoint
CREATE INDEX "accounts_pop3_until_idx" ON "accounts" USING btree ("pop3_until") WHERE "accounts"."pop3_until" is not null;--> statement-breakpoint
UPDATE "accounts" SET "imap_last_login_at" = "last_login_at", "imap_last_login_ip" = "last_login_ip" WHERE "last_login_protocol" = 'imap';--> statement-breakpoint
UPDATE "accounts" SET "pop3_last_login_at" = "last_login_at", "pop3_last_login_ip" = "last_login_ip" WHERE "last_login_protocol" = 'pop3';
