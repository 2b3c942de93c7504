CREATE TABLE `stripe_meter_events` (
	`identifier` text PRIMARY KEY NOT NULL,
	`tenant_id` text NOT NULL,
	`event` text NOT NULL,
	`created_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL,
	`sent_at` integer
);
--> statement-breakpoint
CREATE TABLE `usage_cursor` (
	`tenant_id` text PRIMARY KEY NOT NULL,
	`seq` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `usage_hourly` (
	`tenant_id` text NOT NULL,
	`hour` integer NOT NULL,
	`consumer` text NOT NULL,
	`server` text NOT NULL,
	`tool` text NOT NULL,
	`calls` integer DEFAULT 0 NOT NULL,
	`ok` integer DEFAULT 0 NOT NULL,
	`errors` integer DEFAULT 0 NOT NULL,
	`denied` integer DEFAULT 0 NOT NULL,
	`limited` integer DEFAULT 0 NOT NULL,
	`unknown` integer DEFAULT 0 NOT NULL,
	`unauthenticated` integer DEFAULT 0 NOT NULL,
	`latency_sum_ms` integer DEFAULT 0 NOT NULL,
	`request_bytes` integer DEFAULT 0 NOT NULL,
	`response_bytes` integer DEFAULT 0 NOT NULL,
	`latency_bucket_0` integer DEFAULT 0 NOT NULL,
	`latency_bucket_1` integer DEFAULT 0 NOT NULL,
	`latency_bucket_2` integer DEFAULT 0 NOT NULL,
	`latency_bucket_3` integer DEFAULT 0 NOT NULL,
	`latency_bucket_4` integer DEFAULT 0 NOT NULL,
	`latency_bucket_5` integer DEFAULT 0 NOT NULL,
	`latency_bucket_6` integer DEFAULT 0 NOT NULL,
	`latency_bucket_7` integer DEFAULT 0 NOT NULL,
	`latency_bucket_8` integer DEFAULT 0 NOT NULL,
	`latency_bucket_9` integer DEFAULT 0 NOT NULL,
	`latency_bucket_10` integer DEFAULT 0 NOT NULL,
	`latency_bucket_11` integer DEFAULT 0 NOT NULL,
	`latency_bucket_12` integer DEFAULT 0 NOT NULL,
	PRIMARY KEY(`tenant_id`, `hour`, `consumer`, `server`, `tool`)
);
--> statement-breakpoint
CREATE INDEX `usage_hourly_consumer` ON `usage_hourly` (`tenant_id`,`consumer`,`hour`);--> statement-breakpoint
ALTER TABLE `audit_entries` ADD `request_bytes` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `audit_entries` ADD `response_bytes` integer DEFAULT 0 NOT NULL;