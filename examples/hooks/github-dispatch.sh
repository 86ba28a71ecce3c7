#!/bin/sh
# github-dispatch.sh: a dobrobot exec hook that starts a GitHub Actions
# workflow with a workflow_dispatch event, passing the environment, version,
# ticket, phase and attempt as inputs (docs/hooks-cookbook.md). GitHub answers
# 204 once the run is queued: the hook succeeds then, and the workflow does
# the deploy; say `dep finish` when it is done.
#
#   start   dispatches the workflow with phase=start.
#   finish  does nothing.
#   cancel  dispatches the workflow with phase=cancel: the workflow decides
#           what a cancel undoes (e.g. deploys the previous version again).
#
# The token comes from GITHUB_TOKEN, passed to the hook with
# hooks.env: [GITHUB_TOKEN]: a fine-grained token with "Actions: write" on the
# repository. It goes to curl on its standard input, never on a command line,
# and is never printed.
#
# Options (in the hook's argv, one word each):
#   --repo=OWNER/REPO     the repository (required)
#   --workflow=FILE       the workflow file name, like deploy.yml, or its ID (required)
#   --ref=REF             the branch or tag whose workflow runs (default main)
#   --api=URL             the API root (default https://api.github.com;
#                         GitHub Enterprise: https://HOST/api/v3)
set -eu
export LC_ALL=C

me=${0##*/}
die() {
	printf '%s: %s\n' "$me" "$*" >&2
	exit 2
}

# check_release checks the variables every cookbook hook reads and sets
# ticket, phase, env and version. It prints only names and rules, never the
# rejected values.
check_release() {
	[ "${DOBROBOT_TICKET+set}" = set ] || die "DOBROBOT_TICKET is not set: run this script as a dobrobot hook"
	[ "${DOBROBOT_PHASE+set}" = set ] || die "DOBROBOT_PHASE is not set: run this script as a dobrobot hook"
	[ "${DOBROBOT_ENV+set}" = set ] || die "DOBROBOT_ENV is not set: this dobrobot does not pass environments to hooks (see docs/hooks-cookbook.md)"
	[ "${DOBROBOT_VERSION+set}" = set ] || die "DOBROBOT_VERSION is not set: this dobrobot does not pass versions to hooks (see docs/hooks-cookbook.md)"
	ticket=$DOBROBOT_TICKET phase=$DOBROBOT_PHASE env=$DOBROBOT_ENV version=$DOBROBOT_VERSION
	case $ticket in
	*-*-* | -* | *- | *[!A-Z0-9-]* | [!A-Z]* | ?-*) die "DOBROBOT_TICKET is not a ticket key like PAY-123" ;;
	*-*) case ${ticket#*-} in *[!0-9]*) die "DOBROBOT_TICKET is not a ticket key like PAY-123" ;; esac ;;
	*) die "DOBROBOT_TICKET is not a ticket key like PAY-123" ;;
	esac
	case $phase in
	start | finish | cancel) ;;
	*) die "DOBROBOT_PHASE is not start, finish or cancel" ;;
	esac
	case $env in
	'' | -* | *- | *[!a-z0-9-]*) die "DOBROBOT_ENV is not a DNS label: lowercase letters, digits and '-', starting and ending with a letter or digit" ;;
	esac
	[ "${#env}" -le 63 ] || die "DOBROBOT_ENV is longer than 63 characters, the limit of a DNS label"
	case $version in
	'') die "DOBROBOT_VERSION is empty: this release has no version; ask for one with: dobro $ticket to $env version V" ;;
	[!A-Za-z0-9_]* | *[!A-Za-z0-9_.-]*) die "DOBROBOT_VERSION is not a safe version: letters, digits, '_', '.' and '-', starting with a letter, digit or '_'" ;;
	esac
	[ "${#version}" -le 128 ] || die "DOBROBOT_VERSION is longer than 128 characters"
}

repo='' workflow='' ref=main api=https://api.github.com
for arg in "$@"; do
	case $arg in
	--repo=*) repo=${arg#*=} ;;
	--workflow=*) workflow=${arg#*=} ;;
	--ref=*) ref=${arg#*=} ;;
	--api=*) api=${arg#*=} ;;
	*) die "unknown argument (options: --repo=OWNER/REPO --workflow=FILE [--ref=main] [--api=https://api.github.com])" ;;
	esac
done
case $repo in
*/*/* | /* | */ | *[!A-Za-z0-9/._-]* | .* | */.*) die "--repo must be OWNER/REPO" ;;
*/*) ;;
*) die "--repo must be OWNER/REPO" ;;
esac
case $workflow in
'' | .* | *[!A-Za-z0-9._-]*) die "--workflow must be a workflow file name like deploy.yml, or its ID" ;;
esac
case $ref in
'' | -* | /* | */ | *..* | *[!A-Za-z0-9/._-]*) die "--ref must be a branch or tag name" ;;
esac
# http:// only to this machine, for a local test server.
case $api in
*[!A-Za-z0-9:/._-]* | */) die "--api must be an https:// URL without a trailing '/'" ;;
https://?* | http://127.0.0.1:*) ;;
*) die "--api must be an https:// URL without a trailing '/'" ;;
esac

check_release
attempt=${DOBROBOT_ATTEMPT-}
case $attempt in
'' | [!A-Za-z0-9]* | *[!A-Za-z0-9._-]*) die "DOBROBOT_ATTEMPT is not set or not an attempt ID: run this script as a dobrobot hook" ;;
esac
[ "${GITHUB_TOKEN+set}" = set ] || die "GITHUB_TOKEN is not set: pass it to the hook with hooks.env: [GITHUB_TOKEN]"
case $GITHUB_TOKEN in
'' | *[!A-Za-z0-9_]*) die "GITHUB_TOKEN is empty or not a GitHub token (letters, digits and '_')" ;;
esac

case $phase in
finish)
	echo "$me: nothing to do at finish"
	exit 0
	;;
esac

# Every value below was checked above: none can hold a quote or a backslash.
body=$(printf '{"ref":"%s","inputs":{"environment":"%s","version":"%s","ticket":"%s","phase":"%s","attempt":"%s"}}' \
	"$ref" "$env" "$version" "$ticket" "$phase" "$attempt")
url="$api/repos/$repo/actions/workflows/$workflow/dispatches"
echo "$me: dispatching $workflow on $repo@$ref: $phase $version to $env for $ticket"
# printf is a shell builtin: the token is in no process's arguments.
printf 'header = "Authorization: Bearer %s"\n' "$GITHUB_TOKEN" |
	curl --silent --show-error --fail-with-body --max-time 30 --request POST \
		--header "Accept: application/vnd.github+json" \
		--header "X-GitHub-Api-Version: 2022-11-28" \
		--header "Content-Type: application/json" \
		--config - --data "$body" --url "$url"
