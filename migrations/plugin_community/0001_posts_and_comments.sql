-- Community Hub: posts and threaded comments. Authors are platform users:
-- the foreign keys to public."User" are checked by PostgreSQL as the tables'
-- owner (naap_owner), so the plugin's role needs no rights on public for them.

CREATE TABLE plugin_community."CommunityPost" (
    "id"        text PRIMARY KEY DEFAULT gen_random_uuid()::text,
    "authorId"  text NOT NULL REFERENCES public."User" ("id") ON DELETE CASCADE,
    "title"     text NOT NULL CHECK (length("title") BETWEEN 1 AND 300),
    "body"      text NOT NULL,
    "tags"      text[] NOT NULL DEFAULT '{}',
    "pinned"    boolean NOT NULL DEFAULT false,
    "createdAt" timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX "CommunityPost_authorId_idx" ON plugin_community."CommunityPost" ("authorId");
CREATE INDEX "CommunityPost_createdAt_idx" ON plugin_community."CommunityPost" ("createdAt" DESC);

CREATE TABLE plugin_community."CommunityComment" (
    "id"        text PRIMARY KEY DEFAULT gen_random_uuid()::text,
    "postId"    text NOT NULL REFERENCES plugin_community."CommunityPost" ("id") ON DELETE CASCADE,
    "authorId"  text NOT NULL REFERENCES public."User" ("id") ON DELETE CASCADE,
    "parentId"  text REFERENCES plugin_community."CommunityComment" ("id") ON DELETE CASCADE,
    "body"      text NOT NULL,
    "createdAt" timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX "CommunityComment_postId_idx" ON plugin_community."CommunityComment" ("postId");
