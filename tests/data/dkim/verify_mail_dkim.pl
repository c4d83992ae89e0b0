#!/usr/bin/perl
# verify_mail_dkim.pl FILE... - each message checked by Mail::DKIM (libmail-dkim-perl),
# keys from keys.txt beside this script instead of DNS. Prints "FILE: RESULT DETAIL"
# (pass, fail, invalid, none). Used by tests/unit/mail/test_dkim_sign.c to check
# mxgate's signer against Mail::DKIM (rsa-sha256 only: this version has no ed25519).
use strict;
use warnings;
use File::Basename qw(dirname);
use Mail::DKIM::Verifier;
use Net::DNS;

my %keys;
open my $k, '<', dirname(__FILE__) . '/keys.txt' or die "keys.txt: $!\n";
while (<$k>) {
    chomp;
    my ($name, $value) = split / /, $_, 2;
    $keys{$name} = $value;
}
close $k;

{
    no warnings 'redefine';
    # the key records from keys.txt, as TXT records of strings of 250 octets
    *Mail::DKIM::DNS::query = sub {
        my ($domain, $type) = @_;
        my $v = $keys{lc $domain} or return ();
        my @parts = ($v =~ /(.{1,250})/g);
        return (Net::DNS::RR->new(name => $domain, type => 'TXT', txtdata => \@parts));
    };
}

for my $file (@ARGV) {
    open my $fh, '<', $file or die "$file: $!\n";
    binmode $fh;
    local $/;
    my $m = <$fh>;
    close $fh;
    my $d = Mail::DKIM::Verifier->new;
    $d->PRINT($m);
    $d->CLOSE;
    print "$file: ", $d->result_detail, "\n";
}
