-- Custom (drizzle cannot declare INCLUDE columns): the primary key carries what a folder's listing
-- reads (IMAP SELECT, POP3 login), so listing a big folder is an index-only scan instead of a
-- visit to every message's wide row.
ALTER TABLE "messages" DROP CONSTRAINT "messages_account_id_folder_id_uid_pk";--> statement-breakpoint
ALTER TABLE "messages" ADD CONSTRAINT "messages_account_id_folder_id_uid_pk" PRIMARY KEY ("account_id","folder_id","uid") INCLUDE ("message_key","modseq","flags","internal_date","size","crlf_size","pop3_hidden");
