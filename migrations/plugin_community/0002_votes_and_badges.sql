-- Votes on posts (one per user and post) and badges awarded to users, with
-- a function the plugin calls to score a post.

CREATE TABLE plugin_community."CommunityVote" (
    "postId"    text NOT NULL REFERENCES plugin_community."CommunityPost" ("id") ON DELETE CASCADE,
    "userId"    text NOT NULL REFERENCES public."User" ("id") ON DELETE CASCADE,
    "value"     smallint NOT NULL CHECK ("value" IN (-1, 1)),
    "createdAt" timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY ("postId", "userId")
);

CREATE TABLE plugin_community."CommunityBadge" (
    "id"          text PRIMARY KEY DEFAULT gen_random_uuid()::text,
    "name"        text NOT NULL,
    "description" text NOT NULL,
    "icon"        text
);
CREATE UNIQUE INDEX "CommunityBadge_name_key" ON plugin_community."CommunityBadge" ("name");

CREATE TABLE plugin_community."CommunityUserBadge" (
    "userId"    text NOT NULL REFERENCES public."User" ("id") ON DELETE CASCADE,
    "badgeId"   text NOT NULL REFERENCES plugin_community."CommunityBadge" ("id") ON DELETE CASCADE,
    "awardedAt" timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY ("userId", "badgeId")
);

CREATE FUNCTION plugin_community.post_score(post_id text) RETURNS bigint
    LANGUAGE sql STABLE
    RETURN (SELECT coalesce(sum("value"), 0) FROM plugin_community."CommunityVote" WHERE "postId" = post_id);
