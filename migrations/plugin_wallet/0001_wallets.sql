-- My Wallet: wallets a user connected and the transactions seen on them.

CREATE TABLE plugin_wallet."WalletConnection" (
    "id"          text PRIMARY KEY DEFAULT gen_random_uuid()::text,
    "userId"      text NOT NULL REFERENCES public."User" ("id") ON DELETE CASCADE,
    "address"     text NOT NULL,
    "chainId"     integer NOT NULL,
    "provider"    text NOT NULL,
    "label"       text,
    "connectedAt" timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "lastSeenAt"  timestamp(3)
);
CREATE UNIQUE INDEX "WalletConnection_userId_address_chainId_key"
    ON plugin_wallet."WalletConnection" ("userId", "address", "chainId");

CREATE TABLE plugin_wallet."WalletTransaction" (
    "id"           text PRIMARY KEY DEFAULT gen_random_uuid()::text,
    "connectionId" text NOT NULL REFERENCES plugin_wallet."WalletConnection" ("id") ON DELETE CASCADE,
    "txHash"       text NOT NULL,
    "type"         text NOT NULL,
    -- Token amounts in base units: up to 2^256, beyond bigint.
    "amount"       numeric(78, 0) NOT NULL,
    "token"        text NOT NULL,
    "status"       text NOT NULL DEFAULT 'pending' CHECK ("status" IN ('pending', 'confirmed', 'failed')),
    "createdAt"    timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE UNIQUE INDEX "WalletTransaction_txHash_key" ON plugin_wallet."WalletTransaction" ("txHash");
CREATE INDEX "WalletTransaction_connectionId_idx" ON plugin_wallet."WalletTransaction" ("connectionId");
