-- Capacity Planner: requests for GPU capacity and users' soft commitments
-- to them.

CREATE TABLE plugin_capacity."CapacityRequest" (
    "id"          text PRIMARY KEY DEFAULT gen_random_uuid()::text,
    "requesterId" text NOT NULL REFERENCES public."User" ("id") ON DELETE CASCADE,
    "gpuModel"    text NOT NULL,
    "gpuCount"    integer NOT NULL CHECK ("gpuCount" > 0),
    "region"      text NOT NULL,
    "startsAt"    timestamp(3) NOT NULL,
    "endsAt"      timestamp(3) NOT NULL,
    "status"      text NOT NULL DEFAULT 'open' CHECK ("status" IN ('open', 'filled', 'closed')),
    "createdAt"   timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CHECK ("endsAt" > "startsAt")
);
CREATE INDEX "CapacityRequest_status_idx" ON plugin_capacity."CapacityRequest" ("status");

CREATE TABLE plugin_capacity."SoftCommit" (
    "id"        text PRIMARY KEY DEFAULT gen_random_uuid()::text,
    "requestId" text NOT NULL REFERENCES plugin_capacity."CapacityRequest" ("id") ON DELETE CASCADE,
    "userId"    text NOT NULL REFERENCES public."User" ("id") ON DELETE CASCADE,
    "gpuCount"  integer NOT NULL CHECK ("gpuCount" > 0),
    "createdAt" timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE UNIQUE INDEX "SoftCommit_requestId_userId_key"
    ON plugin_capacity."SoftCommit" ("requestId", "userId");
