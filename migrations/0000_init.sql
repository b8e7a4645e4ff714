CREATE TABLE "accounts" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "accounts_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"domain_id" bigint NOT NULL,
	"address" text NOT NULL,
	"display_name" text,
	"password_hash" text NOT NULL,
	"password_version" integer DEFAULT 1 NOT NULL,
	"password_changed_at" timestamp with time zone DEFAULT now() NOT NULL,
	"status" text DEFAULT 'active' NOT NULL,
	"imap_enabled" boolean NOT NULL,
	"pop3_enabled" boolean NOT NULL,
	"pop3_delete_mode" text NOT NULL,
	"quota_bytes" bigint,
	"quota_messages" integer,
	"used_bytes" bigint DEFAULT 0 NOT NULL,
	"used_messages" integer DEFAULT 0 NOT NULL,
	"last_login_at" timestamp with time zone,
	"last_login_protocol" text,
	"last_login_ip" text,
	"version" integer DEFAULT 1 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "accounts_address_unique" UNIQUE("address"),
	CONSTRAINT "accounts_status_check" CHECK ("accounts"."status" in ('active', 'suspended')),
	CONSTRAINT "accounts_pop3_delete_mode_check" CHECK ("accounts"."pop3_delete_mode" in ('remove', 'hide', 'trash')),
	CONSTRAINT "accounts_usage_check" CHECK ("accounts"."used_bytes" >= 0 and "accounts"."used_messages" >= 0)
);
--> statement-breakpoint
CREATE TABLE "api_keys" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"name" text NOT NULL,
	"role" text NOT NULL,
	"domains" text[],
	"token_hash" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"last_used_at" timestamp with time zone,
	"revoked_at" timestamp with time zone,
	CONSTRAINT "api_keys_token_hash_unique" UNIQUE("token_hash")
);
--> statement-breakpoint
CREATE TABLE "audit_events" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "audit_events_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"at" timestamp with time zone DEFAULT now() NOT NULL,
	"actor_id" text NOT NULL,
	"actor_name" text NOT NULL,
	"action" text NOT NULL,
	"target_type" text NOT NULL,
	"target" text NOT NULL,
	"domain" text,
	"before" jsonb,
	"after" jsonb,
	"request_id" text,
	"ip" text
);
--> statement-breakpoint
CREATE TABLE "idempotency_keys" (
	"actor_id" text NOT NULL,
	"key" text NOT NULL,
	"request_hash" text NOT NULL,
	"status_code" integer,
	"response_headers" jsonb,
	"response_body" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "idempotency_keys_actor_id_key_pk" PRIMARY KEY("actor_id","key")
);
--> statement-breakpoint
CREATE TABLE "domains" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "domains_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"name" text NOT NULL,
	"status" text DEFAULT 'active' NOT NULL,
	"default_quota_bytes" bigint,
	"default_quota_messages" integer,
	"default_imap" boolean DEFAULT true NOT NULL,
	"default_pop3" boolean DEFAULT true NOT NULL,
	"default_pop3_delete_mode" text DEFAULT 'remove' NOT NULL,
	"max_mailboxes" integer,
	"max_quota_bytes" bigint,
	"max_quota_messages" integer,
	"version" integer DEFAULT 1 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "domains_name_unique" UNIQUE("name"),
	CONSTRAINT "domains_status_check" CHECK ("domains"."status" in ('active', 'suspended'))
);
--> statement-breakpoint
CREATE TABLE "blobs" (
	"hash" text PRIMARY KEY NOT NULL,
	"size" bigint NOT NULL,
	"data" "bytea" NOT NULL,
	"ref_count" integer DEFAULT 0 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "expunged" (
	"account_id" bigint NOT NULL,
	"folder_id" bigint NOT NULL,
	"uid" bigint NOT NULL,
	"modseq" bigint NOT NULL,
	CONSTRAINT "expunged_account_id_folder_id_uid_pk" PRIMARY KEY("account_id","folder_id","uid")
);
--> statement-breakpoint
CREATE TABLE "folders" (
	"account_id" bigint NOT NULL,
	"id" bigint GENERATED ALWAYS AS IDENTITY (sequence name "folders_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"name" text NOT NULL,
	"special_use" text,
	"subscribed" boolean DEFAULT true NOT NULL,
	"uid_validity" bigint NOT NULL,
	"uid_next" bigint DEFAULT 1 NOT NULL,
	"highest_modseq" bigint DEFAULT 1 NOT NULL,
	"message_count" integer DEFAULT 0 NOT NULL,
	"storage_bytes" bigint DEFAULT 0 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "folders_account_id_id_pk" PRIMARY KEY("account_id","id"),
	CONSTRAINT "folders_account_name_key" UNIQUE("account_id","name")
);
--> statement-breakpoint
CREATE TABLE "messages" (
	"account_id" bigint NOT NULL,
	"folder_id" bigint NOT NULL,
	"uid" bigint NOT NULL,
	"message_key" bigint GENERATED ALWAYS AS IDENTITY (sequence name "messages_message_key_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"modseq" bigint NOT NULL,
	"flags" text[] DEFAULT '{}'::text[] NOT NULL,
	"internal_date" timestamp with time zone NOT NULL,
	"size" bigint NOT NULL,
	"blob_hash" text NOT NULL,
	"pop3_hidden" boolean DEFAULT false NOT NULL,
	"envelope" jsonb,
	"body_structure" jsonb,
	"header_fields" jsonb,
	"subject" text,
	"from_address" text,
	"to_address" text,
	"sent_date" timestamp with time zone,
	CONSTRAINT "messages_account_id_folder_id_uid_pk" PRIMARY KEY("account_id","folder_id","uid"),
	CONSTRAINT "messages_account_key_key" UNIQUE("account_id","message_key")
);
--> statement-breakpoint
ALTER TABLE "accounts" ADD CONSTRAINT "accounts_domain_id_domains_id_fk" FOREIGN KEY ("domain_id") REFERENCES "public"."domains"("id") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "expunged" ADD CONSTRAINT "expunged_account_id_folder_id_folders_account_id_id_fk" FOREIGN KEY ("account_id","folder_id") REFERENCES "public"."folders"("account_id","id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "folders" ADD CONSTRAINT "folders_account_id_accounts_id_fk" FOREIGN KEY ("account_id") REFERENCES "public"."accounts"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "messages" ADD CONSTRAINT "messages_blob_hash_blobs_hash_fk" FOREIGN KEY ("blob_hash") REFERENCES "public"."blobs"("hash") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "messages" ADD CONSTRAINT "messages_account_id_folder_id_folders_account_id_id_fk" FOREIGN KEY ("account_id","folder_id") REFERENCES "public"."folders"("account_id","id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "accounts_domain_address_idx" ON "accounts" USING btree ("domain_id","address");--> statement-breakpoint
CREATE INDEX "accounts_address_prefix_idx" ON "accounts" USING btree ("address" text_pattern_ops);--> statement-breakpoint
CREATE INDEX "audit_events_target_idx" ON "audit_events" USING btree ("target","id");--> statement-breakpoint
CREATE INDEX "audit_events_actor_idx" ON "audit_events" USING btree ("actor_id","id");--> statement-breakpoint
CREATE INDEX "audit_events_action_idx" ON "audit_events" USING btree ("action","id");--> statement-breakpoint
CREATE INDEX "audit_events_domain_idx" ON "audit_events" USING btree ("domain","id");--> statement-breakpoint
CREATE INDEX "audit_events_at_idx" ON "audit_events" USING btree ("at");--> statement-breakpoint
CREATE INDEX "idempotency_keys_created_idx" ON "idempotency_keys" USING btree ("created_at");--> statement-breakpoint
CREATE INDEX "domains_name_prefix_idx" ON "domains" USING btree ("name" text_pattern_ops);--> statement-breakpoint
CREATE INDEX "expunged_folder_modseq_idx" ON "expunged" USING btree ("account_id","folder_id","modseq");--> statement-breakpoint
CREATE INDEX "messages_folder_modseq_idx" ON "messages" USING btree ("account_id","folder_id","modseq");--> statement-breakpoint
CREATE INDEX "messages_blob_idx" ON "messages" USING btree ("blob_hash");