ALTER TABLE `api_keys` ADD `source` text DEFAULT 'api' NOT NULL;--> statement-breakpoint
ALTER TABLE `tenants` ADD `config` text;--> statement-breakpoint
ALTER TABLE `tenants` ADD `config_version` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `tenants` ADD `config_digest` text;--> statement-breakpoint
ALTER TABLE `tenants` ADD `config_applied_at` integer;