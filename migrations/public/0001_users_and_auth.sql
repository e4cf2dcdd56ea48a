-- Core identity: users, their sessions and one-time auth tokens (email
-- verification, password reset). Tables follow Prisma's naming (model name,
-- camelCase columns) so the platform's client maps onto them unchanged.

CREATE TABLE public."User" (
    "id"           text PRIMARY KEY DEFAULT gen_random_uuid()::text,
    "email"        text NOT NULL,
    "name"         text,
    "passwordHash" text,
    "emailVerified" timestamp(3),
    "createdAt"    timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt"    timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE UNIQUE INDEX "User_email_key" ON public."User" ("email");

CREATE TABLE public."Session" (
    "id"        text PRIMARY KEY DEFAULT gen_random_uuid()::text,
    "userId"    text NOT NULL REFERENCES public."User" ("id") ON DELETE CASCADE,
    "token"     text NOT NULL,
    "expiresAt" timestamp(3) NOT NULL,
    "userAgent" text,
    "createdAt" timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE UNIQUE INDEX "Session_token_key" ON public."Session" ("token");
CREATE INDEX "Session_userId_idx" ON public."Session" ("userId");

CREATE TABLE public."AuthToken" (
    "id"        text PRIMARY KEY DEFAULT gen_random_uuid()::text,
    "userId"    text NOT NULL REFERENCES public."User" ("id") ON DELETE CASCADE,
    "type"      text NOT NULL CHECK ("type" IN ('email_verification', 'password_reset')),
    "tokenHash" text NOT NULL,
    "expiresAt" timestamp(3) NOT NULL,
    "usedAt"    timestamp(3),
    "createdAt" timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE UNIQUE INDEX "AuthToken_tokenHash_key" ON public."AuthToken" ("tokenHash");
CREATE INDEX "AuthToken_userId_idx" ON public."AuthToken" ("userId");
