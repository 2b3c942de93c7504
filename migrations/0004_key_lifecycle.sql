ALTER TABLE `api_keys` ADD `previous_key_hash` text;--> statement-breakpoint
ALTER TABLE `api_keys` ADD `previous_expires_at` integer;--> statement-breakpoint
ALTER TABLE `api_keys` ADD `last_used_at` integer;--> statement-breakpoint
ALTER TABLE `api_keys` ADD `ip_filter` text;--> statement-breakpoint
CREATE UNIQUE INDEX `api_keys_previous_key_hash` ON `api_keys` (`previous_key_hash`);