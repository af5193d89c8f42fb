#!/bin/sh
# Builds the QuickFIX peer acceptor and writes its settings.
#
#   benches/peers/quickfix/build.sh [OUT_DIR]   (default: target/ of the repository)
#
# Produces OUT_DIR/quickfix-acceptor and OUT_DIR/quickfix-acceptor.cfg. Needs g++ and Debian's
# libquickfix-dev (`apt-get install -y libquickfix-dev g++`); QuickFIX itself is never vendored.
# Exits 3, saying so, when the headers are absent, so callers can skip rather than fail.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
out=${1:-$repo/target}
if [ ! -f /usr/include/quickfix/SocketAcceptor.h ]; then
    echo "libquickfix-dev is not installed (apt-get install -y libquickfix-dev g++)" >&2
    exit 3
fi
mkdir -p "$out"
# QuickFIX 1.15 headers use dynamic exception specifications (gone in C++17) and, as the Debian
# library was built, std::auto_ptr: hence C++14 and no HAVE_STD_UNIQUE_PTR.
g++ -O2 -std=c++14 -Wno-deprecated -o "$out/quickfix-acceptor" "$here/acceptor.cpp" -lquickfix -lpthread
# One session per account the harness may log on as (it sends SenderCompID = account,
# TargetCompID = EXCHANGE). Debian's package ships no FIX44.xml, so there is no DataDictionary:
# QuickFIX checks the header, sequence numbers and checksum, not each body field.
# The harness overrides SocketAcceptPort with a port it picked.
{
    cat <<CFG
[DEFAULT]
ConnectionType=acceptor
BeginString=FIX.4.4
SenderCompID=EXCHANGE
SocketAcceptPort=0
SocketNodelay=Y
SocketReuseAddress=Y
StartTime=00:00:00
EndTime=00:00:00
HeartBtInt=30
ResetOnLogon=Y
ResetOnDisconnect=Y
UseDataDictionary=N
CFG
    for account in alice bob carol dave; do
        printf '\n[SESSION]\nTargetCompID=%s\n' "$account"
    done
} > "$out/quickfix-acceptor.cfg"
echo "built $out/quickfix-acceptor and $out/quickfix-acceptor.cfg"
