#!/bin/sh
# helm-branch-namespace.sh: a dobrobot exec hook that deploys DOBROBOT_VERSION
# into a namespace of its own per branch, that is per ticket: the namespace is
# PREFIX + DOBROBOT_TICKET, lowercased and cut to a DNS-1123 label (PAY-123 in
# qa becomes qa-pay-123). For review environments, not for production
# (docs/hooks-cookbook.md).
#
#   start   helm upgrade --install --create-namespace into the ticket's
#           namespace, with image.tag set to the version, and waits.
#   finish  does nothing: the review deploy stays up for people to try.
#   cancel  removes the review deploy: helm uninstall, then deletes the
#           ticket's namespace (both do nothing when it is already gone).
#
# Options (in the hook's argv, one word each):
#   --release=NAME   the Helm release in each namespace (required)
#   --chart=CHART    a chart path or reference (required)
#   --prefix=PREFIX  the namespace prefix (default: DOBROBOT_ENV and "-");
#                    sanitised like the ticket
#   --timeout=DURATION  helm's --timeout, like 10m (default 10m)
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

# dns_label checks that the value of option $1 ($2) is a DNS label.
dns_label() {
	case $2 in
	'' | -* | *- | *[!a-z0-9-]*) die "$1 must be a DNS label: lowercase letters, digits and '-', starting and ending with a letter or digit" ;;
	esac
	[ "${#2}" -le 63 ] || die "$1 is longer than 63 characters"
}

# sanitise prints $1 as a DNS-1123 label: lowercase, every run of characters
# other than letters and digits becomes one '-', no '-' at either end, at most
# 63 characters.
sanitise() {
	printf '%s' "$1" | tr '[:upper:]' '[:lower:]' | tr -c 'a-z0-9' '-' | tr -s '-' |
		sed -e 's/^-*//' | cut -c 1-63 | sed -e 's/-*$//'
}

release='' chart='' prefix='' prefix_set='' timeout=10m
for arg in "$@"; do
	case $arg in
	--release=*) release=${arg#*=} ;;
	--chart=*) chart=${arg#*=} ;;
	--prefix=*) prefix=${arg#*=} prefix_set=1 ;;
	--timeout=*) timeout=${arg#*=} ;;
	*) die "unknown argument (options: --release=NAME --chart=CHART [--prefix=PREFIX] [--timeout=10m])" ;;
	esac
done
dns_label --release "$release"
case $chart in
'' | -*) die "--chart must name a chart (a path or a reference), not be empty or start with '-'" ;;
esac
case $timeout in
'' | [!0-9]* | *[!0-9hms]*) die "--timeout must be a duration like 10m or 1h30m" ;;
esac

check_release
[ -n "$prefix_set" ] || prefix="$env-"
namespace=$(sanitise "$prefix$ticket")
dns_label "the namespace derived from --prefix and DOBROBOT_TICKET" "$namespace"
# A long prefix would cut the ticket off, and two tickets would share one
# namespace: refuse it.
case $namespace in
*"$(sanitise "$ticket")") ;;
*) die "--prefix is too long: the namespace must end with the whole ticket and have at most 63 characters" ;;
esac

case $phase in
start)
	echo "$me: deploying $version of $release for $ticket to namespace $namespace"
	helm upgrade --install --namespace "$namespace" --create-namespace --wait --timeout "$timeout" \
		--set-string "image.tag=$version" --description "dobrobot $ticket $version" \
		-- "$release" "$chart"
	;;
finish)
	echo "$me: nothing to do at finish: $ticket stays up in namespace $namespace"
	;;
cancel)
	echo "$me: removing $release and namespace $namespace of $ticket"
	helm uninstall --namespace "$namespace" --ignore-not-found --wait --timeout "$timeout" -- "$release"
	kubectl delete namespace --ignore-not-found --wait --timeout "$timeout" -- "$namespace"
	;;
esac
