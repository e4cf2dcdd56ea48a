-- Developer API: the AI models offered, gateways' offers for them, and the
-- API keys developers call with (only a hash of each key is stored).

CREATE TABLE plugin_developer_api."AIModel" (
    "id"          text PRIMARY KEY DEFAULT gen_random_uuid()::text,
    "name"        text NOT NULL,
    "provider"    text NOT NULL,
    "description" text,
    "pipeline"    text NOT NULL,
    "createdAt"   timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE UNIQUE INDEX "AIModel_name_key" ON plugin_developer_api."AIModel" ("name");

CREATE TABLE plugin_developer_api."GatewayOffer" (
    "id"             text PRIMARY KEY DEFAULT gen_random_uuid()::text,
    "modelId"        text NOT NULL REFERENCES plugin_developer_api."AIModel" ("id") ON DELETE CASCADE,
    -- The gateway lives in plugin_gateway, which this plugin does not read:
    -- referenced by address, not by a foreign key.
    "gatewayAddress" text NOT NULL,
    "pricePerUnit"   numeric(20, 10) NOT NULL CHECK ("pricePerUnit" >= 0),
    "unit"           text NOT NULL,
    "active"         boolean NOT NULL DEFAULT true,
    "updatedAt"      timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE UNIQUE INDEX "GatewayOffer_modelId_gatewayAddress_key"
    ON plugin_developer_api."GatewayOffer" ("modelId", "gatewayAddress");

CREATE TABLE plugin_developer_api."ApiKey" (
    "id"         text PRIMARY KEY DEFAULT gen_random_uuid()::text,
    "userId"     text NOT NULL REFERENCES public."User" ("id") ON DELETE CASCADE,
    "name"       text NOT NULL,
    "keyHash"    text NOT NULL,
    "prefix"     text NOT NULL,
    "createdAt"  timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "lastUsedAt" timestamp(3),
    "revokedAt"  timestamp(3)
);
CREATE UNIQUE INDEX "ApiKey_keyHash_key" ON plugin_developer_api."ApiKey" ("keyHash");
CREATE INDEX "ApiKey_userId_idx" ON plugin_developer_api."ApiKey" ("userId");
