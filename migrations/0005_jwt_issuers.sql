CREATE TABLE `jwt_issuers` (
	`issuer` text NOT NULL,
	`audience` text NOT NULL,
	`tenant_id` text NOT NULL,
	PRIMARY KEY(`issuer`, `audience`),
	FOREIGN KEY (`tenant_id`) REFERENCES `tenants`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `jwt_issuers_tenant` ON `jwt_issuers` (`tenant_id`);