-- The plugin registry and teams of users.

CREATE TABLE public."Plugin" (
    "id"          text PRIMARY KEY DEFAULT gen_random_uuid()::text,
    "name"        text NOT NULL,
    "displayName" text NOT NULL,
    "version"     text NOT NULL,
    "enabled"     boolean NOT NULL DEFAULT true,
    "config"      jsonb NOT NULL DEFAULT '{}'::jsonb,
    "createdAt"   timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt"   timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE UNIQUE INDEX "Plugin_name_key" ON public."Plugin" ("name");

CREATE TABLE public."Team" (
    "id"        text PRIMARY KEY DEFAULT gen_random_uuid()::text,
    "name"      text NOT NULL,
    "slug"      text NOT NULL,
    "ownerId"   text NOT NULL REFERENCES public."User" ("id") ON DELETE RESTRICT,
    "createdAt" timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE UNIQUE INDEX "Team_slug_key" ON public."Team" ("slug");

CREATE TABLE public."TeamMember" (
    "teamId"   text NOT NULL REFERENCES public."Team" ("id") ON DELETE CASCADE,
    "userId"   text NOT NULL REFERENCES public."User" ("id") ON DELETE CASCADE,
    "role"     text NOT NULL DEFAULT 'member' CHECK ("role" IN ('owner', 'admin', 'member')),
    "joinedAt" timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY ("teamId", "userId")
);
CREATE INDEX "TeamMember_userId_idx" ON public."TeamMember" ("userId");
