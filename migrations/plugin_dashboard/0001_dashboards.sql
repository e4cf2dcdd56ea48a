-- My Dashboard: a user's dashboards and display preferences.

CREATE TABLE plugin_dashboard."Dashboard" (
    "id"        text PRIMARY KEY DEFAULT gen_random_uuid()::text,
    "userId"    text NOT NULL REFERENCES public."User" ("id") ON DELETE CASCADE,
    "name"      text NOT NULL,
    "layout"    jsonb NOT NULL DEFAULT '[]'::jsonb,
    "isDefault" boolean NOT NULL DEFAULT false,
    "createdAt" timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX "Dashboard_userId_idx" ON plugin_dashboard."Dashboard" ("userId");
-- At most one default dashboard per user.
CREATE UNIQUE INDEX "Dashboard_userId_default_key"
    ON plugin_dashboard."Dashboard" ("userId") WHERE "isDefault";

CREATE TABLE plugin_dashboard."DashboardPreference" (
    "userId"    text PRIMARY KEY REFERENCES public."User" ("id") ON DELETE CASCADE,
    "theme"     text NOT NULL DEFAULT 'system' CHECK ("theme" IN ('light', 'dark', 'system')),
    "timezone"  text NOT NULL DEFAULT 'UTC',
    "settings"  jsonb NOT NULL DEFAULT '{}'::jsonb,
    "updatedAt" timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP
);
