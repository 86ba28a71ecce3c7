#!/bin/sh
# docker-compose.sh: a dobrobot exec hook that runs DOBROBOT_VERSION of a
# Docker Compose project on a host, locally or over ssh
# (docs/hooks-cookbook.md). The compose file names its images with
# ${IMAGE_TAG}, e.g. image: registry.example.com/shop/backend:${IMAGE_TAG};
# the project is NAME-DOBROBOT_ENV, so one host can run several environments.
#
#   start   docker compose pull, then up --detach --wait (waits until every
#           service is running or healthy).
#   finish  does nothing: the start hook already waited.
#   cancel  does nothing: Compose keeps no previous version to go back to.
#           Deploy the previous version again (rollback COMPONENT in ENV, or
#           dobro TICKET to ENV version OLD) and say so in the thread.
#
# Options (in the hook's argv, one word each):
#   --project=NAME  the project name before "-ENV" (required)
#   --file=FILE     the compose file on the host, an absolute path (required)
#   --ssh=DEST      run on DEST (user@host) over ssh instead of locally; the
#                   bot's ssh key and known_hosts come from HOME or
#                   hooks.env (e.g. SSH_AUTH_SOCK)
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

project='' file='' dest=''
for arg in "$@"; do
	case $arg in
	--project=*) project=${arg#*=} ;;
	--file=*) file=${arg#*=} ;;
	--ssh=*) dest=${arg#*=} ;;
	*) die "unknown argument (options: --project=NAME --file=FILE [--ssh=USER@HOST])" ;;
	esac
done
case $project in
'' | [!a-z0-9]* | *[!a-z0-9_-]*) die "--project must be lowercase letters, digits, '_' and '-', starting with a letter or digit" ;;
esac
# The file name ends up in a command line run by the remote shell: only
# plain path characters.
case $file in
/*[!A-Za-z0-9/._-]* | /*..*) die "--file must be an absolute path of letters, digits, '/', '.', '_' and '-'" ;;
/*) ;;
*) die "--file must be an absolute path of letters, digits, '/', '.', '_' and '-'" ;;
esac
case $dest in
-* | *[!A-Za-z0-9@._-]*) die "--ssh must be a destination like deploy@host.example.com" ;;
esac

check_release
name=$project-$env

case $phase in
start)
	echo "$me: deploying $version as project $name${dest:+ on $dest} for $ticket"
	if [ -n "$dest" ]; then
		# The remote shell reads this string: every part is checked above,
		# and single-quoted besides.
		ssh -o BatchMode=yes -- "$dest" \
			"IMAGE_TAG='$version' docker compose --file '$file' --project-name '$name' pull && IMAGE_TAG='$version' docker compose --file '$file' --project-name '$name' up --detach --wait"
	else
		IMAGE_TAG=$version
		export IMAGE_TAG
		docker compose --file "$file" --project-name "$name" pull
		docker compose --file "$file" --project-name "$name" up --detach --wait
	fi
	;;
finish)
	echo "$me: nothing to do at finish: the start hook waited for the services"
	;;
cancel)
	echo "$me: nothing rolled back: Compose keeps no previous version; deploy the previous version of $name again (rollback COMPONENT in $env)"
	;;
esac
