-- Daydream Video: per-user generation settings and streaming sessions.

CREATE TABLE plugin_daydream."DaydreamSettings" (
    "userId"       text PRIMARY KEY REFERENCES public."User" ("id") ON DELETE CASCADE,
    "defaultModel" text NOT NULL,
    "resolution"   text NOT NULL DEFAULT '512x512',
    "prompt"       text,
    "settings"     jsonb NOT NULL DEFAULT '{}'::jsonb,
    "updatedAt"    timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE plugin_daydream."DaydreamSession" (
    "id"        text PRIMARY KEY DEFAULT gen_random_uuid()::text,
    "userId"    text NOT NULL REFERENCES public."User" ("id") ON DELETE CASCADE,
    "streamId"  text NOT NULL,
    "model"     text NOT NULL,
    "status"    text NOT NULL DEFAULT 'starting'
                CHECK ("status" IN ('starting', 'live', 'ended', 'failed')),
    "startedAt" timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "endedAt"   timestamp(3),
    CHECK ("endedAt" IS NULL OR "endedAt" >= "startedAt")
);
CREATE UNIQUE INDEX "DaydreamSession_streamId_key" ON plugin_daydream."DaydreamSession" ("streamId");
CREATE INDEX "DaydreamSession_userId_idx" ON plugin_daydream."DaydreamSession" ("userId");
