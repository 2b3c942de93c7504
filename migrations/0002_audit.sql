CREATE TABLE `audit_checkpoints` (
	`tenant_id` text NOT NULL,
	`seq` integer NOT NULL,
	`hash` text NOT NULL,
	`time` integer NOT NULL,
	`key_id` text NOT NULL,
	`signature` text NOT NULL,
	PRIMARY KEY(`tenant_id`, `seq`, `key_id`)
);
--> statement-breakpoint
CREATE TABLE `audit_entries` (
	`tenant_id` text NOT NULL,
	`seq` integer NOT NULL,
	`timestamp` integer NOT NULL,
	`consumer` text,
	`key_id` text,
	`client_ip` text,
	`request_id` text NOT NULL,
	`session_id` text,
	`server` text,
	`method` text NOT NULL,
	`tool` text,
	`arguments` text NOT NULL,
	`result` text NOT NULL,
	`result_digest` text,
	`status` text NOT NULL,
	`error_code` integer,
	`error_message` text,
	`latency_ms` integer NOT NULL,
	`rule_id` text,
	`prev_hash` text NOT NULL,
	`hash` text NOT NULL,
	PRIMARY KEY(`tenant_id`, `seq`)
);
--> statement-breakpoint
CREATE INDEX `audit_entries_time` ON `audit_entries` (`tenant_id`,`timestamp`);--> statement-breakpoint
CREATE INDEX `audit_entries_consumer` ON `audit_entries` (`tenant_id`,`consumer`,`timestamp`);--> statement-breakpoint
CREATE INDEX `audit_entries_tool` ON `audit_entries` (`tenant_id`,`server`,`tool`,`timestamp`);--> statement-breakpoint
CREATE INDEX `audit_entries_status` ON `audit_entries` (`tenant_id`,`status`,`timestamp`);