#!/bin/sh
# helm-upgrade.sh: a dobrobot exec hook that deploys DOBROBOT_VERSION of one
# Helm release to the namespace of DOBROBOT_ENV (docs/hooks-cookbook.md).
#
#   start   helm upgrade --install, with image.tag set to the version, and
#           waits until the release is ready (--wait, --timeout).
#   finish  does nothing: the start hook already waited for the rollout.
#   cancel  rolls the release back to its previous revision, but only when
#           the release's current image.tag is this version; otherwise the
#           start hook never changed the release and there is nothing to undo.
#
# Options (in the hook's argv, one word each):
#   --release=NAME            the Helm release (required)
#   --chart=CHART             a chart path or reference (required)
#   --namespace-prefix=PREFIX the namespace is PREFIX + DOBROBOT_ENV (default "")
#   --timeout=DURATION        helm's --timeout, like 10m (default 10m)
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

release='' chart='' prefix='' timeout=10m
for arg in "$@"; do
	case $arg in
	--release=*) release=${arg#*=} ;;
	--chart=*) chart=${arg#*=} ;;
	--namespace-prefix=*) prefix=${arg#*=} ;;
	--timeout=*) timeout=${arg#*=} ;;
	*) die "unknown argument (options: --release=NAME --chart=CHART [--namespace-prefix=PREFIX] [--timeout=10m])" ;;
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
namespace=$prefix$env
dns_label "the namespace (--namespace-prefix + DOBROBOT_ENV)" "$namespace"

case $phase in
start)
	echo "$me: deploying $version of $release to namespace $namespace for $ticket"
	helm upgrade --install --namespace "$namespace" --wait --timeout "$timeout" \
		--set-string "image.tag=$version" --description "dobrobot $ticket $version" \
		-- "$release" "$chart"
	;;
finish)
	echo "$me: nothing to do at finish: the start hook waited until $release was ready"
	;;
cancel)
	# helm prints the values as compact JSON, e.g. {"image":{"tag":"1.4.2"}}.
	values=$(helm get values --namespace "$namespace" --output json -- "$release") ||
		die "could not read the values of $release in $namespace: check by hand whether to roll back"
	case $values in
	*"\"tag\":\"$version\""*)
		echo "$me: rolling $release in $namespace back to its previous revision"
		helm rollback --namespace "$namespace" --wait --timeout "$timeout" -- "$release"
		;;
	*)
		echo "$me: $release in $namespace does not run $version: nothing to roll back"
		;;
	esac
	;;
esac
