-- Role-based access control of the platform (application roles, not
-- database roles): roles, permissions, and who holds which role where.

CREATE TABLE public."Role" (
    "id"          text PRIMARY KEY DEFAULT gen_random_uuid()::text,
    "name"        text NOT NULL,
    "description" text,
    "createdAt"   timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE UNIQUE INDEX "Role_name_key" ON public."Role" ("name");

CREATE TABLE public."Permission" (
    "id"       text PRIMARY KEY DEFAULT gen_random_uuid()::text,
    "resource" text NOT NULL,
    "action"   text NOT NULL
);
CREATE UNIQUE INDEX "Permission_resource_action_key" ON public."Permission" ("resource", "action");

CREATE TABLE public."RolePermission" (
    "roleId"       text NOT NULL REFERENCES public."Role" ("id") ON DELETE CASCADE,
    "permissionId" text NOT NULL REFERENCES public."Permission" ("id") ON DELETE CASCADE,
    PRIMARY KEY ("roleId", "permissionId")
);

CREATE TABLE public."UserRole" (
    "id"        text PRIMARY KEY DEFAULT gen_random_uuid()::text,
    "userId"    text NOT NULL REFERENCES public."User" ("id") ON DELETE CASCADE,
    "roleId"    text NOT NULL REFERENCES public."Role" ("id") ON DELETE CASCADE,
    -- NULL: the role holds platform-wide; otherwise within one team.
    "teamId"    text REFERENCES public."Team" ("id") ON DELETE CASCADE,
    "grantedAt" timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE UNIQUE INDEX "UserRole_userId_roleId_teamId_key"
    ON public."UserRole" ("userId", "roleId", "teamId") NULLS NOT DISTINCT;
