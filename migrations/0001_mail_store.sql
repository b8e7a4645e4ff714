CREATE SEQUENCE "public"."folder_uid_validity_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 4294967295 START WITH 1 CACHE 1;--> statement-breakpoint
CREATE TABLE "gateways" (
	"id" uuid PRIMARY KEY NOT NULL,
	"started_at" timestamp with time zone DEFAULT now() NOT NULL,
	"seen_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "mail_sessions" (
	"account_id" bigint NOT NULL,
	"id" uuid DEFAULT gen_random_uuid() NOT NULL,
	"gateway_id" uuid NOT NULL,
	"protocol" text NOT NULL,
	"remote_ip" text NOT NULL,
	"tls" boolean NOT NULL,
	"started_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "mail_sessions_account_id_id_pk" PRIMARY KEY("account_id","id")
);
--> statement-breakpoint
ALTER TABLE "folders" ALTER COLUMN "uid_validity" SET DEFAULT nextval('folder_uid_validity_seq');--> statement-breakpoint
ALTER TABLE "domains" ADD COLUMN "suspended_delivery" text DEFAULT 'receive' NOT NULL;--> statement-breakpoint
ALTER TABLE "messages" ADD COLUMN "crlf_size" bigint NOT NULL;--> statement-breakpoint
ALTER TABLE "mail_sessions" ADD CONSTRAINT "mail_sessions_gateway_id_gateways_id_fk" FOREIGN KEY ("gateway_id") REFERENCES "public"."gateways"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "mail_sessions" ADD CONSTRAINT "mail_sessions_account_id_accounts_id_fk" FOREIGN KEY ("account_id") REFERENCES "public"."accounts"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "mail_sessions_gateway_idx" ON "mail_sessions" USING btree ("gateway_id");--> statement-breakpoint
ALTER TABLE "domains" ADD CONSTRAINT "domains_suspended_delivery_check" CHECK ("domains"."suspended_delivery" in ('receive', 'reject'));