#!/bin/sh
# kubectl-set-image.sh: a dobrobot exec hook that sets the image of one
# Deployment per component to REGISTRY/COMPONENT:DOBROBOT_VERSION in the
# namespace of DOBROBOT_ENV, then waits for each rollout
# (docs/hooks-cookbook.md). Each component of DOBROBOT_COMPONENTS names a
# Deployment and its container: backend is deployment/backend, container
# backend, image REGISTRY/backend:VERSION.
#
#   start   kubectl set image for every component, then kubectl rollout
#           status --timeout for each; a rollout that does not finish in time
#           fails the hook.
#   finish  does nothing: the start hook already waited for the rollouts.
#   cancel  for each component whose container runs this version:
#           kubectl rollout undo, then rollout status. A component that does
#           not run it (the start hook failed before changing it) is left alone.
#
# Options (in the hook's argv, one word each):
#   --registry=REGISTRY       the image repository prefix, like
#                             registry.example.com/shop (required)
#   --namespace-prefix=PREFIX the namespace is PREFIX + DOBROBOT_ENV (default "")
#   --timeout=DURATION        how long each rollout may take (default 5m)
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

registry='' prefix='' timeout=5m
for arg in "$@"; do
	case $arg in
	--registry=*) registry=${arg#*=} ;;
	--namespace-prefix=*) prefix=${arg#*=} ;;
	--timeout=*) timeout=${arg#*=} ;;
	*) die "unknown argument (options: --registry=REGISTRY [--namespace-prefix=PREFIX] [--timeout=5m])" ;;
	esac
done
case $registry in
'' | [!a-z0-9]* | */ | *[!a-z0-9./:_-]*) die "--registry must be an image repository like registry.example.com/shop" ;;
esac
case $timeout in
'' | [!0-9]* | *[!0-9hms]*) die "--timeout must be a duration like 5m or 1h30m" ;;
esac

check_release
namespace=$prefix$env
dns_label "the namespace (--namespace-prefix + DOBROBOT_ENV)" "$namespace"
components=${DOBROBOT_COMPONENTS-}
[ -n "$components" ] || die "$ticket has no components: name the Deployments with: dobro $ticket to $env version $version on backend,..."
# Every component must be a DNS label, as Deployment and container names are.
# Split on commas only, with globbing off.
old_ifs=$IFS
IFS=,
set -f
for c in $components; do
	dns_label "component $c" "$c"
done
set +f
IFS=$old_ifs

# each calls the function $1 once per component, in order.
each() {
	IFS=,
	set -f
	for c in $components; do
		IFS=$old_ifs
		"$1" "$c"
		IFS=,
	done
	set +f
	IFS=$old_ifs
}

set_image() {
	kubectl --namespace "$namespace" set image "deployment/$1" "$1=$registry/$1:$version"
}
wait_rollout() {
	kubectl --namespace "$namespace" rollout status "deployment/$1" --timeout "$timeout"
}
undo_if_ours() {
	image=$(kubectl --namespace "$namespace" get "deployment/$1" \
		--output "jsonpath={.spec.template.spec.containers[?(@.name==\"$1\")].image}") ||
		die "could not read the image of deployment/$1 in $namespace: check by hand whether to roll back"
	if [ "$image" = "$registry/$1:$version" ]; then
		echo "$me: rolling deployment/$1 in $namespace back"
		kubectl --namespace "$namespace" rollout undo "deployment/$1"
		wait_rollout "$1"
	else
		echo "$me: deployment/$1 in $namespace does not run $version: nothing to roll back"
	fi
}

case $phase in
start)
	echo "$me: deploying $version of $components to namespace $namespace for $ticket"
	each set_image
	each wait_rollout
	;;
finish)
	echo "$me: nothing to do at finish: the start hook waited for the rollouts"
	;;
cancel)
	each undo_if_ours
	;;
esac
