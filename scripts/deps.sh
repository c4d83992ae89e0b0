#!/bin/sh
# deps.sh - install the Debian packages mxgate needs, by purpose:
#
#   scripts/deps.sh build     compile mxgated and mxgatectl
#   scripts/deps.sh run       run them as `make run` does (and talk to them)
#   scripts/deps.sh package   build the Debian package (`make deb`)
#   scripts/deps.sh test      everything `make check` uses (unit, integration,
#                             fuzz, the package test) on top of build and run
#   scripts/deps.sh all       all of the above (the default)
#
# Several purposes may be named at once (`make run` asks for "build run").
# Idempotent: installs only what is missing. Needs root (or sudo) for apt-get.
set -eu

# libpsl-dev builds against libpsl, libpsl5 runs it; publicsuffix is
# the Public Suffix List file that the dmarc check reads at start and on SIGHUP.
BUILD="build-essential cmake pkg-config
libevent-dev libssl-dev libc-ares-dev liblmdb-dev libhiredis-dev libpcre2-dev
libcrypt-dev libpsl-dev libconfuse-dev zlib1g-dev libidn2-dev libsystemd-dev"
# libhiredis0.14 runs the Redis store (store { uri = "redis://..." }), built
# against libhiredis-dev above; redis-server is the private one of the tests.
RUN="openssl libpsl5 publicsuffix swaks libnet-ssleay-perl libhiredis0.14"
PACKAGE="debhelper dpkg-dev libhiredis-dev"
TEST="clang clang-format libclang-rt-14-dev libcmocka-dev libyaml-dev
python3 python3-pytest python3-aiosmtpd python3-dnspython python3-dkim python3-nacl libmail-dkim-perl
postfix nsd knot bind9-dnsutils systemd haproxy dnsdist
prometheus chromium python3-websocket
clamav-daemon clamav-milter
whois dovecot-core
redis-server
rspamd opendkim opendkim-tools clamav-daemon clamav-milter libmilter-dev"  # mkpasswd and a private Dovecot for the submission tests; a private Redis; real milters (test_milter_real.py)

[ $# -gt 0 ] || set -- all
PKGS=""
for what in "$@"; do
    case $what in
    build) PKGS="$PKGS $BUILD" ;;
    run) PKGS="$PKGS $RUN" ;;
    package) PKGS="$PKGS $PACKAGE" ;;
    test) PKGS="$PKGS $BUILD $RUN $PACKAGE $TEST" ;;
    all) PKGS="$PKGS $BUILD $RUN $PACKAGE $TEST" ;;
    *)
        echo "usage: $0 [build|run|package|test|all]..." >&2
        exit 2
        ;;
    esac
done

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        case " $missing " in *" $p "*) ;; *) missing="$missing $p" ;; esac
    fi
done
[ -z "$missing" ] && exit 0

echo "deps: installing:$missing"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
# Postfix is wanted for its load tools (smtp-source, smtp-sink) and for private
# instances the tests start (the policy service): no configuration questions,
# and it must not start a mail server here.
echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
export DEBIAN_FRONTEND=noninteractive
# Servers we install for tests (nsd, postfix, haproxy, dnsdist) must not start as system
# services: policy-rc.d answering 101 forbids it during the install.
cleanup=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod 755 /usr/sbin/policy-rc.d
    cleanup=yes
fi
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends $missing
[ -n "$cleanup" ] && $SUDO rm -f /usr/sbin/policy-rc.d
exit 0
