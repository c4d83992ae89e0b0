#!/bin/sh
# run.sh - first-run setup for the example configuration, then mxgated in the foreground.
set -eu
cd "$(dirname "$0")/.."
mkdir -p var/tls var/mail var/spool var/state
# The Maildir route delivers only to mailboxes that exist (unknown ones are
# refused at RCPT): the Quick start's user@example.test has one.
mkdir -p var/mail/user var/mail/postmaster
if [ ! -f var/tls/key.pem ] || [ ! -f var/tls/cert.pem ]; then
    echo "run: generating a self-signed certificate in var/tls/ for STARTTLS"
    openssl req -x509 -newkey rsa:2048 -nodes -days 825 -subj "/CN=mx.example.test" \
        -keyout var/tls/key.pem -out var/tls/cert.pem 2>/dev/null
    chmod 600 var/tls/key.pem
fi
exec build/mxgated -f -c conf/mxgate.conf
