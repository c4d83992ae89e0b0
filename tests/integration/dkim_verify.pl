#!/usr/bin/perl
# dkim_verify.pl PORT FILE - each DKIM signature of the message in FILE checked by
# Mail::DKIM (libmail-dkim-perl), its key asked of the DNS server on 127.0.0.1:PORT
# (the test NSD). One line per signature: "DOMAIN SELECTOR ALGORITHM RESULT", then
# "overall: RESULT". Used by test_dkim_sign.py.
use strict;
use warnings;
use Mail::DKIM::Verifier;
use Net::DNS;

my ($port, $file) = @ARGV;
die "usage: dkim_verify.pl PORT FILE\n" unless defined $file;
Mail::DKIM::DNS::resolver(
    Net::DNS::Resolver->new(nameservers => ['127.0.0.1'], port => $port, recurse => 0,
                            udp_timeout => 3, tcp_timeout => 3, retry => 1));
open my $fh, '<', $file or die "$file: $!\n";
binmode $fh;
local $/;
my $m = <$fh>;
close $fh;
my $d = Mail::DKIM::Verifier->new;
$d->PRINT($m);
$d->CLOSE;
for my $s ($d->signatures) {
    printf "%s %s %s %s\n", $s->domain, $s->selector, $s->algorithm, $s->result;
}
print "overall: ", $d->result, "\n";
