#!/bin/sh
# curl worker for the network lab: two GETs on one connection, with an idle
# gap between them, in one curl process (so the second reuses the first's
# pooled connection).
#
# Usage: curl_client.sh BASE_URL [CURL_OPTION...]
#
# The gap comes from curl's own request-rate limit: --rate 7/m starts the
# transfers 60/7 = 8.6 s apart, and between them the connection idles in
# curl's connection cache. Extra options are passed to curl as they are
# (the lab passes --no-keepalive for the variant in which curl leaves
# SO_KEEPALIVE alone; by default curl turns it on itself with a 60 s idle
# time and a 60 s interval, which the shim respects).
#
# One JSON line per transfer ("event": "transfer"), written to stderr with
# curl's %{stderr} so that it is not held in stdout's buffer; curl's -v trace
# on stderr also tells the harness when the second request reuses the
# connection ("Re-using existing connection").
base=$1
shift
fmt='%{stderr}{"event": "transfer", "n": %{urlnum}, "status": %{http_code}, "local_port": %{local_port}, "num_connects": %{num_connects}, "exitcode": %{exitcode}, "errormsg": "%{errormsg}", "time_total": %{time_total}}\n'
exec curl -sS -v --rate 7/m -w "$fmt" "$@" \
    -o /dev/null "$base/" -o /dev/null "$base/"
