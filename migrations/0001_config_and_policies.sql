ALTER TABLE `api_keys` ADD `source` text DEFAULT 'api' NOT NULL;--> statement-breakpoint
ALTER TABLE `api_keys` ADD `revoked_at` integer;--> statement-breakpoint
ALTER TABLE `tenants` ADD `config` text;--> statement-breakpoint
ALTER TABLE `tenants` ADD `config_version` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `tenants` ADD `config_digest` text;--> statement-breakpoint
ALTER TABLE `tenants` ADD `config_applied_at` integer;--> statement-breakpoint
-- Every key that exists before this migration was written from gateway.yaml (npm start, npm run provision): the
-- file stays their source of truth, so an apply that no longer lists one deletes it.
UPDATE `api_keys` SET `source` = 'config';
