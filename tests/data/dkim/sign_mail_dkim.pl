#!/usr/bin/perl
# sign_mail_dkim.pl KEYFILE DOMAIN SELECTOR METHOD TIMESTAMP < message
# Prints the DKIM-Signature field Mail::DKIM (libmail-dkim-perl) makes for the
# message on stdin (CRLF lines): rsa-sha256, the fields make_fixtures.py signs.
use strict;
use warnings;
use Mail::DKIM::Signer;

my ($keyfile, $domain, $selector, $method, $when) = @ARGV;
my $dkim = Mail::DKIM::Signer->new(
    Algorithm => 'rsa-sha256',
    Method    => $method,
    Domain    => $domain,
    Selector  => $selector,
    KeyFile   => $keyfile,
    Timestamp => $when,
    Headers   => 'from:to:subject:date:message-id:mime-version:content-type',
);
binmode STDIN;
local $/;
$dkim->PRINT(<STDIN>);
$dkim->CLOSE;
print $dkim->signature->as_string, "\r\n";
