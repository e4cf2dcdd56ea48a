-- Gateway Manager: gateways, their orchestrator connections and metrics.
-- Metrics are high-volume, so they take a bigserial key (a sequence the
-- plugin's role uses through the access layer's default privileges).

CREATE TABLE plugin_gateway."Gateway" (
    "id"        text PRIMARY KEY DEFAULT gen_random_uuid()::text,
    "ownerId"   text NOT NULL REFERENCES public."User" ("id") ON DELETE RESTRICT,
    "name"      text NOT NULL,
    "address"   text NOT NULL,
    "region"    text NOT NULL,
    "status"    text NOT NULL DEFAULT 'offline' CHECK ("status" IN ('online', 'offline', 'degraded')),
    "createdAt" timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE UNIQUE INDEX "Gateway_address_key" ON plugin_gateway."Gateway" ("address");

CREATE TABLE plugin_gateway."GatewayConnection" (
    "id"                  text PRIMARY KEY DEFAULT gen_random_uuid()::text,
    "gatewayId"           text NOT NULL REFERENCES plugin_gateway."Gateway" ("id") ON DELETE CASCADE,
    "orchestratorAddress" text NOT NULL,
    "connectedAt"         timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "disconnectedAt"      timestamp(3)
);
CREATE INDEX "GatewayConnection_gatewayId_idx" ON plugin_gateway."GatewayConnection" ("gatewayId");

CREATE TABLE plugin_gateway."GatewayMetric" (
    "id"          bigserial PRIMARY KEY,
    "gatewayId"   text NOT NULL REFERENCES plugin_gateway."Gateway" ("id") ON DELETE CASCADE,
    "recordedAt"  timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "latencyMs"   integer NOT NULL CHECK ("latencyMs" >= 0),
    "successRate" numeric(5, 4) NOT NULL CHECK ("successRate" BETWEEN 0 AND 1),
    "streams"     integer NOT NULL DEFAULT 0
);
CREATE INDEX "GatewayMetric_gatewayId_recordedAt_idx"
    ON plugin_gateway."GatewayMetric" ("gatewayId", "recordedAt" DESC);
