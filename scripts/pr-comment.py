#!/usr/bin/env python3
"""Posts a file as a pull request comment, or edits the one this script
posted before under the same key, so each push updates one comment per key
instead of adding another. Standard library only (runs before any install).

Only a comment written by the workflow's own bot account is ever edited
(`COMMENT_AUTHOR`, default `github-actions[bot]`, the author of comments made
with the job's `github.token`): anyone can write a comment starting with the
hidden marker, and the script must not rewrite theirs (or let theirs stand
as the access diff).

    GITHUB_TOKEN=... GITHUB_REPOSITORY=owner/repo PR_NUMBER=12 \\
        python scripts/pr-comment.py --key access-diff-dev --body-file access-diff.md

The token comes from the environment only, never argv, and is never printed.
`GITHUB_API_URL` (set on every Actions runner) names the API; the job replay
test points it at a local stand-in. Exit 0 posted or edited, 2 bad input or
an API error (one line).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

PER_PAGE = 100
# Who writes the comments: the account behind the job's github.token.
DEFAULT_AUTHOR = "github-actions[bot]"
# GitHub refuses a comment body over 65,536 characters; keep room for the note.
MAX_BODY = 60_000


class ApiError(RuntimeError):
    """The API answered with an error, or could not be reached."""


def marker(key: str) -> str:
    """The hidden first line that finds this key's comment again."""
    return f"<!-- naap-db:{key} -->"


def request(method: str, url: str, token: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Authorization", f"Bearer {token}")
    req.add_header("Accept", "application/vnd.github+json")
    req.add_header("X-GitHub-Api-Version", "2022-11-28")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        raise ApiError(f"{method} {url}: HTTP {error.code} {error.reason}") from None
    except urllib.error.URLError as error:
        raise ApiError(f"{method} {url}: {error.reason}") from None


def written_by(comment: dict[str, Any], author: str) -> bool:
    """Whether the bot account `author` wrote the comment."""
    user = comment.get("user") or {}
    return user.get("login") == author and user.get("type") == "Bot"


def find_comment(
    api: str, repo: str, number: str, token: str, key: str, author: str = DEFAULT_AUTHOR
) -> int | None:
    """The id of `author`'s comment that starts with `key`'s marker, if any."""
    page = 1
    while True:
        url = f"{api}/repos/{repo}/issues/{number}/comments?per_page={PER_PAGE}&page={page}"
        comments = request("GET", url, token)
        for comment in comments:
            if written_by(comment, author) and str(comment.get("body", "")).startswith(marker(key)):
                return int(comment["id"])
        if len(comments) < PER_PAGE:
            return None
        page += 1


def shortened(text: str) -> str:
    """The text, cut at a line end under GitHub's limit, saying where the rest is."""
    if len(text) <= MAX_BODY:
        return text
    cut = text.rfind("\n", 0, MAX_BODY) + 1 or MAX_BODY
    return text[:cut] + (
        f"\n*Cut at {cut:,} of {len(text):,} characters: the whole text is in the "
        "workflow run's job summary.*\n"
    )


def post_or_edit(
    api: str, repo: str, number: str, token: str, key: str, text: str, author: str = DEFAULT_AUTHOR
) -> str:
    """Post or edit; returns what was done ("posted" or "edited")."""
    body = {"body": f"{marker(key)}\n{shortened(text)}"}
    existing = find_comment(api, repo, number, token, key, author)
    if existing is None:
        request("POST", f"{api}/repos/{repo}/issues/{number}/comments", token, body)
        return "posted"
    request("PATCH", f"{api}/repos/{repo}/issues/comments/{existing}", token, body)
    return "edited"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--key", required=True, help="one comment per key, e.g. access-diff-dev")
    parser.add_argument("--body-file", required=True, type=Path)
    args = parser.parse_args(argv)
    missing = [
        v for v in ("GITHUB_TOKEN", "GITHUB_REPOSITORY", "PR_NUMBER") if not os.environ.get(v)
    ]
    if missing:
        print(f"error: {', '.join(missing)}: not set in the environment", file=sys.stderr)
        return 2
    try:
        text = args.body_file.read_text()
    except OSError as error:
        print(f"error: {args.body_file}: {error.strerror}", file=sys.stderr)
        return 2
    api = os.environ.get("GITHUB_API_URL", "https://api.github.com").rstrip("/")
    try:
        done = post_or_edit(
            api,
            os.environ["GITHUB_REPOSITORY"],
            os.environ["PR_NUMBER"],
            os.environ["GITHUB_TOKEN"],
            args.key,
            text,
            os.environ.get("COMMENT_AUTHOR") or DEFAULT_AUTHOR,
        )
    except ApiError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{done} the {args.key} comment on pull request #{os.environ['PR_NUMBER']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
